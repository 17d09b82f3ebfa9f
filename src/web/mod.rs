//! The HTTP kit: error pages, page rendering, CSRF, client addresses, the form and query
//! parser, cookies. Imports no feature; features build their handlers from it.
pub mod csp;
pub mod csrf;
pub mod error;
pub mod form;
pub mod net;
pub mod pages;
pub mod params;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, web};

use crate::app::AppState;
use crate::model::Tenant;
use error::PageError;

pub type Data = web::Data<AppState>;

/// What a handler asks of the state in HTTP terms: cookies.
pub trait HttpState {
    fn cookie<'c>(&self, name: &'c str, value: String, path: String, max_age_secs: Option<i64>) -> Cookie<'c>;
    fn removal_cookie<'c>(&self, name: &'c str, path: String) -> Cookie<'c>;
}

impl HttpState for AppState {
    fn cookie<'c>(&self, name: &'c str, value: String, path: String, max_age_secs: Option<i64>) -> Cookie<'c> {
        let mut c = Cookie::build(name, value)
            .path(path)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies())
            .finish();
        if let Some(age) = max_age_secs {
            c.set_max_age(actix_web::cookie::time::Duration::seconds(age));
        }
        c
    }

    fn removal_cookie<'c>(&self, name: &'c str, path: String) -> Cookie<'c> {
        let mut c = self.cookie(name, String::new(), path, Some(0));
        c.make_removal();
        c
    }
}

pub const RESERVED_SLUGS: &[&str] =
    &["graph", "demo", "stub", "static", "redeem", "outbox", "healthz", "common", "federation"];

/// Reads a cookie value from the request.
pub fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_string()).filter(|v| !v.is_empty())
}

/// The tenant named in the URL, or the "unknown tenant" page.
pub async fn tenant(state: &AppState, slug: &str) -> Result<Tenant, PageError> {
    state.store.tenant_by_slug(slug).await?.ok_or_else(|| {
        PageError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "unknown_tenant",
            "There is no directory with this name.",
        )
    })
}
