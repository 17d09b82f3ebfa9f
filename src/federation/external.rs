//! Checking a partner's OpenID Connect provider before it is configured (DESIGN §16): its
//! discovery document and JWKS are fetched once, through the request forgery guard, with
//! the capped client every home request uses.
use openidconnect::HttpRequest;
use serde_json::Value;

use super::ssrf::{self, Refused};
use super::{HOME_BODY_LIMIT, HOME_TIMEOUT, HomeMetadata, capped_call};
use crate::app::AppState;

pub const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// Why a provider cannot be configured; each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("metadataUrl must be an http(s) URL ending in {WELL_KNOWN}")]
    NotWellKnown,
    #[error("{0}")]
    Refused(#[from] Refused),
    #[error("the discovery document at {url} is unreachable: {why}")]
    Unreachable { url: String, why: String },
    #[error("the discovery document at {0} is not JSON")]
    NotJson(String),
    #[error("the document at {url} is not an OpenID Connect discovery document: {why}")]
    NotOidc { url: String, why: String },
    #[error("the discovery document's issuer {found} differs from the metadataUrl's base {expected}")]
    IssuerMismatch { found: String, expected: String },
    #[error("the provider's JWKS at {url} is unreachable or not a key set: {why}")]
    JwksUnreachable { url: String, why: String },
    #[error("the provider's JWKS at {0} holds no keys")]
    JwksEmpty(String),
}

/// What a checked provider's discovery document said.
#[derive(Debug, Clone)]
pub struct Checked {
    pub issuer: String,
}

fn get(url: &url::Url) -> Result<HttpRequest, String> {
    openidconnect::http::Request::builder()
        .uri(url.as_str())
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| e.to_string())
}

/// One capped GET: the body of a 200 answer, or why there is none.
async fn fetch(state: &AppState, url: &url::Url) -> Result<Vec<u8>, String> {
    let response =
        capped_call(&state.http, get(url)?, HOME_BODY_LIMIT, HOME_TIMEOUT).await.map_err(|e| e.to_string())?;
    if response.status() != openidconnect::http::StatusCode::OK {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    Ok(response.into_body())
}

/// The metadata URL's base: where the issuer must be (OpenID Connect Discovery §4.3).
pub fn base_of(metadata_url: &str) -> Result<&str, ProviderError> {
    let base = metadata_url.strip_suffix(WELL_KNOWN).ok_or(ProviderError::NotWellKnown)?;
    let parsed = url::Url::parse(metadata_url).map_err(|_| ProviderError::NotWellKnown)?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ProviderError::NotWellKnown);
    }
    Ok(base)
}

/// Fetches and validates the discovery document at `metadata_url` and the JWKS it names.
pub async fn check(state: &AppState, metadata_url: &str) -> Result<Checked, ProviderError> {
    let allow = &state.config.federation.allow_insecure_hosts;
    let expected = base_of(metadata_url)?.trim_end_matches('/').to_string();
    let url = ssrf::check(metadata_url, allow).await?;
    let body = fetch(state, &url).await.map_err(|why| ProviderError::Unreachable { url: metadata_url.into(), why })?;
    let doc: Value = serde_json::from_slice(&body).map_err(|_| ProviderError::NotJson(metadata_url.into()))?;
    let not_oidc = |why: String| ProviderError::NotOidc { url: metadata_url.into(), why };
    for field in ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"] {
        if !doc.get(field).is_some_and(Value::is_string) {
            return Err(not_oidc(format!("{field} is missing")));
        }
    }
    let metadata: HomeMetadata = serde_json::from_value(doc.clone()).map_err(|e| not_oidc(e.to_string()))?;
    let found = metadata.issuer().to_string();
    if found.trim_end_matches('/') != expected {
        return Err(ProviderError::IssuerMismatch { found, expected });
    }
    // Every endpoint gatehouse (or the browser it sends) will use passes the guard too.
    let mut endpoints = vec![
        metadata.authorization_endpoint().to_string(),
        metadata.token_endpoint().map(|t| t.to_string()).unwrap_or_default(),
        metadata.jwks_uri().to_string(),
    ];
    endpoints.extend(metadata.userinfo_endpoint().map(|u| u.to_string()));
    for e in endpoints.iter().filter(|e| !e.is_empty()) {
        ssrf::check(e, allow).await?;
    }
    let jwks = metadata.jwks_uri().to_string();
    let jwks_url = url::Url::parse(&jwks).map_err(|e| not_oidc(format!("jwks_uri: {e}")))?;
    let body =
        fetch(state, &jwks_url).await.map_err(|why| ProviderError::JwksUnreachable { url: jwks.clone(), why })?;
    let set: Value = serde_json::from_slice(&body)
        .map_err(|_| ProviderError::JwksUnreachable { url: jwks.clone(), why: "not JSON".into() })?;
    match set.get("keys").and_then(Value::as_array) {
        None => Err(ProviderError::JwksUnreachable { url: jwks, why: "no keys array".into() }),
        Some(keys) if keys.is_empty() => Err(ProviderError::JwksEmpty(jwks)),
        Some(_) => Ok(Checked { issuer: found }),
    }
}
