//! Token revocation (RFC 7009) and introspection (RFC 7662).
use actix_web::{HttpRequest, HttpResponse, web};

use super::claims::AccessClaims;
use super::error::{OAuthCode, OAuthError};
use super::token::{authenticate_client, no_store, tenant_of};
use super::userinfo::validate_access;
use super::wire::{AccessTokenInfo, ActiveToken, IntrospectionResponse, RefreshTokenInfo};
use crate::access::credential::Presented;
use crate::access::{credential_user, grant_state};
use crate::keys::TokenType;
use crate::model::ClientType;
use crate::secrets::digest;
use crate::web::Data;

pub async fn revoke(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, OAuthError> {
    let tenant = tenant_of(&state, &path).await?;
    let p = crate::web::form::body(&req, &body)?;
    let app = authenticate_client(&req, &p, &state, &tenant).await?;
    let token = p.require("token")?;
    if let Some(hint) = p.get("token_type_hint")
        && !matches!(hint, "access_token" | "refresh_token")
    {
        return Err(OAuthError::new(
            OAuthCode::UnsupportedTokenType,
            "token_type_hint must be access_token or refresh_token",
        ));
    }
    if let Some(rt) = state.store.refresh_token(&digest(token)).await? {
        if rt.tenant_id == tenant.id && rt.client_id == app.client_id {
            state.store.revoke_grant(&rt.grant_id).await?;
            state.store.flush().await?;
        }
    } else if let Ok(claims) = state.keys.verify::<AccessClaims>(token, TokenType::Access, state.now(), false)
        && claims.tid == tenant.id
        && claims.client_id == app.client_id
    {
        state.store.revoke_jti(&claims.jti, claims.exp).await?;
        state.store.flush().await?;
    }
    // RFC 7009 §2.2: unknown or foreign tokens are answered with 200 as well.
    Ok(no_store(HttpResponse::Ok()).finish())
}

pub async fn introspect(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, OAuthError> {
    let tenant = tenant_of(&state, &path).await?;
    let p = crate::web::form::body(&req, &body)?;
    let app = authenticate_client(&req, &p, &state, &tenant).await?;
    if app.client_type == ClientType::Public {
        return Err(OAuthError::client("public clients cannot introspect tokens"));
    }
    let token = p.require("token")?;
    let now = state.now();
    let inactive = || no_store(HttpResponse::Ok()).json(IntrospectionResponse::inactive());
    // Refresh tokens are base64url without dots (`secrets::new_token`); a JWT has two: an
    // access token is not looked up among the refresh tokens.
    let refresh = if token.contains('.') { None } else { state.store.refresh_token(&digest(token)).await? };
    if let Some(rt) = refresh {
        if rt.tenant_id != tenant.id || rt.client_id != app.client_id || rt.rotated || rt.expires_at <= now {
            return Ok(inactive());
        }
        let presented = Presented::of(&rt.auth, Some(grant_state(&state, &rt.grant_id).await?));
        if credential_user(&state, &tenant, &presented).await?.is_err() {
            return Ok(inactive());
        }
        let sub = super::claims::pairwise_sub(&state, &tenant, &rt.auth.user_id, &rt.client_id);
        return Ok(no_store(HttpResponse::Ok()).json(IntrospectionResponse::active(ActiveToken::Refresh(
            RefreshTokenInfo {
                client_id: rt.client_id.into(),
                scope: rt.scope.join(" "),
                sub,
                exp: rt.expires_at,
                iat: rt.issued_at,
                iss: state.issuer(&tenant),
                tid: tenant.id,
                oid: rt.auth.user_id,
            },
        ))));
    }
    match validate_access(&state, &tenant, token).await.map(|checked| checked.claims) {
        Ok(c) => {
            Ok(no_store(HttpResponse::Ok()).json(IntrospectionResponse::active(ActiveToken::Access(AccessTokenInfo {
                client_id: c.client_id,
                scope: c.scp,
                roles: c.roles,
                sub: c.sub,
                aud: c.aud,
                iss: c.iss,
                exp: c.exp,
                iat: c.iat,
                nbf: c.nbf,
                jti: c.jti,
                tid: c.tid,
                oid: c.oid,
            }))))
        }
        Err(_) => Ok(inactive()),
    }
}
