//! OAuth 2.0 / OIDC wire errors (RFC 6749 §5.2, §4.1.2.1; OIDC Core §3.1.2.6; RFC 6750 §3.1).
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedTokenType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    InteractionRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthCode::UnsupportedTokenType => "unsupported_token_type",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::AccessDenied => "access_denied",
            OAuthCode::ServerError => "server_error",
            OAuthCode::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthCode::LoginRequired => "login_required",
            OAuthCode::InteractionRequired => "interaction_required",
            OAuthCode::ConsentRequired => "consent_required",
            OAuthCode::RequestNotSupported => "request_not_supported",
            OAuthCode::RequestUriNotSupported => "request_uri_not_supported",
            OAuthCode::InvalidToken => "invalid_token",
        }
    }
}

/// An error answered as JSON by the token, revocation and introspection endpoints.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: OAuthCode,
    pub description: String,
    /// Set when the client authenticated with HTTP Basic and failed (RFC 6749 §5.2).
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        Self { code, description: description.into(), basic_challenge: false }
    }
    pub fn request(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidRequest, d)
    }
    pub fn grant(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidGrant, d)
    }
    pub fn client(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidClient, d)
    }
    pub fn server(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(OAuthCode::ServerError, "internal error")
    }
}

impl From<crate::web::params::FormError> for OAuthError {
    fn from(e: crate::web::params::FormError) -> Self {
        OAuthError::request(e.to_string())
    }
}

impl From<crate::storage::StoreError> for OAuthError {
    fn from(e: crate::storage::StoreError) -> Self {
        match e {
            crate::storage::StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "store unavailable");
                OAuthError::new(
                    OAuthCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable; try again shortly",
                )
            }
            other => OAuthError::server(other),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            OAuthCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            OAuthCode::InvalidToken => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header(("Cache-Control", "no-store"));
        if self.basic_challenge {
            resp.insert_header(("WWW-Authenticate", "Basic realm=\"gatehouse\""));
        }
        if self.code == OAuthCode::TemporarilyUnavailable {
            resp.insert_header(("Retry-After", "5"));
        }
        resp.json(serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        }))
    }
}
