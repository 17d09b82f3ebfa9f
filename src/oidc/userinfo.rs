//! UserInfo (OIDC Core §5.3) with bearer tokens by header, form body or query (RFC 6750).
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::claims::AccessClaims;
use super::token::tenant_of;
use super::wire::{ErrorResponse, UserInfo};
use crate::access::credential::{GrantState, Presented};
use crate::app::AppState;
use crate::keys::TokenType;
use crate::model::{Tenant, User};
use crate::web::Data;

/// Checks an access token we issued for `tenant`: signature, type, issuer, expiry,
/// and the credential gate (token, grant and user still good).
pub async fn validate_access(state: &AppState, tenant: &Tenant, token: &str) -> Result<CheckedAccess, &'static str> {
    let claims: AccessClaims = state
        .keys
        .verify(token, TokenType::Access, state.now(), true)
        .map_err(|_| "the access token is invalid or expired")?;
    check_access(state, tenant, claims).await
}

/// An access token that passed every check, with the user it was issued for (user tokens).
pub struct CheckedAccess {
    pub claims: AccessClaims,
    pub user: Option<User>,
}

/// The checks after the signature: issuer and tenant, not-before, revocation of the token,
/// then the credential gate: a user token's grant is live and its user still good
/// (exists, enabled, sessions not revoked since, guest still redeemed); an app token's
/// application is still registered. Store errors refuse the token (fail closed).
pub async fn check_access(
    state: &AppState,
    tenant: &Tenant,
    claims: AccessClaims,
) -> Result<CheckedAccess, &'static str> {
    const REVOKED: &str = "the access token was revoked";
    let now = state.now();
    if claims.iss != state.issuer(tenant) || claims.tid != tenant.id {
        return Err("the access token was issued by another tenant");
    }
    if claims.nbf > now + 60 {
        return Err("the access token is not valid yet");
    }
    let Some(oid) = claims.oid else {
        if state.store.jti_revoked(&claims.jti).await.unwrap_or(true) {
            return Err(REVOKED);
        }
        return match state.store.app(&tenant.id, &claims.client_id).await {
            Ok(Some(_)) => Ok(CheckedAccess { claims, user: None }),
            _ => Err("the application is no longer registered"),
        };
    };
    let gid = claims.gid.ok_or(REVOKED)?;
    let (revoked, grant, user) =
        state.store.access_context(&claims.jti, &gid, &tenant.id, &oid).await.map_err(|_| REVOKED)?;
    if revoked {
        return Err(REVOKED);
    }
    let grant = grant.ok_or(REVOKED)?;
    if grant.revoked || grant.expires_at <= now || grant.user_id != oid || grant.client_id != claims.client_id {
        return Err(REVOKED);
    }
    let presented = Presented { user_id: oid, epoch: grant.epoch, idp: None, grant: Some(GrantState::Live) };
    let checked = match user {
        Some(user) => Ok(crate::access::credential_user_of(user, &presented)),
        None => crate::access::credential_user(state, tenant, &presented).await,
    };
    match checked {
        Ok(Ok(user)) => Ok(CheckedAccess { claims, user: Some(user) }),
        Ok(Err(refusal)) => Err(refusal.reason()),
        Err(_) => Err(REVOKED),
    }
}

fn bearer_error(status: actix_web::http::StatusCode, code: Option<&str>, description: &str) -> HttpResponse {
    let challenge = match code {
        Some(c) => format!("Bearer realm=\"gatehouse\", error=\"{c}\", error_description=\"{description}\""),
        None => "Bearer realm=\"gatehouse\"".to_string(),
    };
    let mut b = HttpResponse::build(status);
    b.insert_header((header::WWW_AUTHENTICATE, challenge)).insert_header(("Cache-Control", "no-store"));
    match code {
        Some(c) => b.json(ErrorResponse { error: c.into(), error_description: description.into() }),
        None => b.finish(),
    }
}

pub async fn userinfo_get(req: HttpRequest, path: web::Path<String>, state: Data) -> HttpResponse {
    let Ok(query) = crate::web::form::query(&req) else {
        return bearer_error(
            actix_web::http::StatusCode::BAD_REQUEST,
            Some("invalid_request"),
            "a parameter is repeated",
        );
    };
    respond(&req, &path, &state, query.get("access_token").map(String::from)).await
}

pub async fn userinfo_post(req: HttpRequest, path: web::Path<String>, body: web::Bytes, state: Data) -> HttpResponse {
    let from_body = if crate::web::form::is_form(&req) {
        match crate::web::form::body(&req, &body) {
            Ok(p) => p.get("access_token").map(String::from),
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
    let tenant = match tenant_of(state, slug).await {
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
    let (claims, user) = match validate_access(state, &tenant, &token).await {
        Ok(CheckedAccess { claims, user: Some(user) }) => (claims, user),
        Ok(CheckedAccess { user: None, .. }) => {
            return bearer_error(
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                "the token was not issued for openid",
            );
        }
        Err(msg) => return bearer_error(StatusCode::UNAUTHORIZED, Some("invalid_token"), msg),
    };
    let scopes: Vec<&str> = claims.scp.as_deref().unwrap_or("").split(' ').collect();
    if !scopes.contains(&"openid") {
        return bearer_error(StatusCode::FORBIDDEN, Some("insufficient_scope"), "the token was not issued for openid");
    }
    let profile = scopes.contains(&"profile");
    let email = scopes.contains(&"email");
    let body = UserInfo {
        sub: claims.sub,
        name: profile.then(|| user.display_name.clone()),
        preferred_username: profile.then(|| user.user_principal_name.clone()),
        email: email.then(|| user.mail.clone()),
        email_verified: email.then_some(true),
    };
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body)
}
