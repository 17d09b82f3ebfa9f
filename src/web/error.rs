//! Errors shown to people: a page `<main id="error" data-error="CODE">` with a message.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

/// The human error page every `PageError` renders as.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct PageError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        )
    }
    pub fn signin_expired() -> Self {
        Self::bad_request(
            "signin_expired",
            "This sign-in has expired or was already completed. Go back to the application and sign in again.",
        )
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Something went wrong on our side. Try again.")
    }
}

impl From<super::params::FormError> for PageError {
    fn from(e: super::params::FormError) -> Self {
        use super::params::FormError;
        let message = match &e {
            FormError::NotForm => "This page expects a form submission.".to_string(),
            FormError::NotUtf8 => "The form is not valid UTF-8.".to_string(),
            other => other.to_string(),
        };
        PageError::bad_request("invalid_request", message)
    }
}

impl From<crate::storage::StoreError> for PageError {
    fn from(e: crate::storage::StoreError) -> Self {
        match e {
            crate::storage::StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "store unavailable");
                PageError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "The sign-in service cannot reach its database right now. Nothing was changed; try again in a moment.",
                )
            }
            other => PageError::internal(other),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let page = ErrorPage { code: self.code, message: &self.message };
        let body = page.render().unwrap_or_else(|_| self.message.clone());
        let mut resp = HttpResponse::build(self.status);
        resp.content_type("text/html; charset=utf-8").insert_header(("Cache-Control", "no-store"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.insert_header(("Retry-After", "5"));
        }
        resp.body(body)
    }
}
