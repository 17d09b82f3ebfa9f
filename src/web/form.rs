//! The one parser of request parameters for every handler: a query string or an
//! urlencoded form body, each name at most once (see [`Params`]).
use actix_web::http::header;
use actix_web::{HttpRequest, web};

pub use super::params::{FormError, Params};

/// The query string's parameters.
pub fn query(req: &HttpRequest) -> Result<Params, FormError> {
    Params::parse(req.query_string())
}

/// A posted `application/x-www-form-urlencoded` body's parameters.
pub fn body(req: &HttpRequest, body: &web::Bytes) -> Result<Params, FormError> {
    if !is_form(req) {
        return Err(FormError::NotForm);
    }
    Params::parse(std::str::from_utf8(body).map_err(|_| FormError::NotUtf8)?)
}

/// True when the request says its body is an urlencoded form.
pub fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}
