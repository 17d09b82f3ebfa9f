//! UserInfo (OIDC Core §5.3) with bearer tokens by header, form body or query (RFC 6750).
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::claims::AccessClaims;
use super::error::OAuthError;
use super::keys::TokenType;
use super::params::Params;
use super::token::tenant_of;
use crate::directory::Tenant;
use crate::web::{AppState, Data};

/// Checks an access token we issued for `tenant`: signature, type, issuer, expiry,
/// and that neither it nor its grant was revoked.
pub fn validate_access(state: &AppState, tenant: &Tenant, token: &str) -> Result<AccessClaims, &'static str> {
    let claims: AccessClaims = state
        .keys
        .verify(token, TokenType::Access, state.now(), true)
        .map_err(|_| "the access token is invalid or expired")?;
    check_access(state, tenant, claims)
}

/// The checks after the signature: issuer and tenant, not-before, and revocation of the
/// token or its grant.
pub fn check_access(state: &AppState, tenant: &Tenant, claims: AccessClaims) -> Result<AccessClaims, &'static str> {
    let now = state.now();
    if claims.iss != state.issuer(tenant) || claims.tid != tenant.id {
        return Err("the access token was issued by another tenant");
    }
    if claims.nbf > now + 60 {
        return Err("the access token is not valid yet");
    }
    if state.store.jti_revoked(&claims.jti).unwrap_or(true) {
        return Err("the access token was revoked");
    }
    if let Some(gid) = claims.gid
        && !super::token::grant_is_live(state, &gid)
    {
        return Err("the access token was revoked");
    }
    Ok(claims)
}

fn bearer_error(status: actix_web::http::StatusCode, code: Option<&str>, description: &str) -> HttpResponse {
    let challenge = match code {
        Some(c) => format!("Bearer realm=\"gatehouse\", error=\"{c}\", error_description=\"{description}\""),
        None => "Bearer realm=\"gatehouse\"".to_string(),
    };
    let mut b = HttpResponse::build(status);
    b.insert_header((header::WWW_AUTHENTICATE, challenge)).insert_header(("Cache-Control", "no-store"));
    match code {
        Some(c) => b.json(serde_json::json!({"error": c, "error_description": description})),
        None => b.finish(),
    }
}

pub async fn userinfo_get(req: HttpRequest, path: web::Path<String>, state: Data) -> HttpResponse {
    let Ok(query) = Params::parse(req.query_string()) else {
        return bearer_error(
            actix_web::http::StatusCode::BAD_REQUEST,
            Some("invalid_request"),
            "a parameter is repeated",
        );
    };
    respond(&req, &path, &state, query.get("access_token").map(String::from)).await
}

pub async fn userinfo_post(req: HttpRequest, path: web::Path<String>, body: web::Bytes, state: Data) -> HttpResponse {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let from_body = if is_form {
        match std::str::from_utf8(&body).ok().map(Params::parse) {
            Some(Ok(p)) => p.get("access_token").map(String::from),
            _ => {
                return bearer_error(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    Some("invalid_request"),
                    "malformed form body",
                );
            }
        }
    } else {
        None
    };
    respond(&req, &path, &state, from_body).await
}

async fn respond(req: &HttpRequest, slug: &str, state: &AppState, other: Option<String>) -> HttpResponse {
    use actix_web::http::StatusCode;
    let tenant = match tenant_of(state, slug) {
        Ok(t) => t,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).map(str::trim).map(String::from));
    let token = match (from_header, other) {
        (Some(Some(_)), Some(_)) => {
            return bearer_error(StatusCode::BAD_REQUEST, Some("invalid_request"), "send the token one way only");
        }
        (Some(None), _) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the Authorization header is not a Bearer token",
            );
        }
        (Some(Some(t)), None) => t,
        (None, Some(t)) => t,
        (None, None) => return bearer_error(StatusCode::UNAUTHORIZED, None, ""),
    };
    let claims = match validate_access(state, &tenant, &token) {
        Ok(c) => c,
        Err(msg) => return bearer_error(StatusCode::UNAUTHORIZED, Some("invalid_token"), msg),
    };
    let scopes: Vec<&str> = claims.scp.as_deref().unwrap_or("").split(' ').collect();
    if !scopes.contains(&"openid") {
        return bearer_error(StatusCode::FORBIDDEN, Some("insufficient_scope"), "the token was not issued for openid");
    }
    let user = match claims.oid.map(|oid| state.store.user(&tenant.id, &oid)) {
        Some(Ok(Some(u))) if u.account_enabled => u,
        Some(Err(e)) => return actix_web::ResponseError::error_response(&OAuthError::from(e)),
        _ => return bearer_error(StatusCode::UNAUTHORIZED, Some("invalid_token"), "the user no longer exists"),
    };
    let mut body = serde_json::json!({ "sub": claims.sub });
    if scopes.contains(&"profile") {
        body["name"] = user.display_name.clone().into();
        body["preferred_username"] = user.user_principal_name.clone().into();
    }
    if scopes.contains(&"email") {
        body["email"] = user.mail.clone().into();
        body["email_verified"] = true.into();
    }
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body)
}
