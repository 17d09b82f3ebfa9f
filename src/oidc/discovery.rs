//! `/.well-known/openid-configuration` and JWKS.
use actix_web::{HttpResponse, web};

use crate::web::Data;
use crate::web::error::PageError;

pub const SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

pub async fn configuration(path: web::Path<String>, state: Data) -> Result<HttpResponse, PageError> {
    // The document depends only on the tenant's slug and the public URL: build it once.
    let cached = state.discovery_cache.lock().unwrap_or_else(|p| p.into_inner()).get(path.as_str()).cloned();
    let body = match cached {
        Some(b) => b,
        None => {
            let tenant = crate::web::tenant(&state, &path).await?;
            let b: std::sync::Arc<str> = document(&state, &tenant).to_string().into();
            let mut cache = state.discovery_cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert(tenant.slug.clone(), b.clone());
            b
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(body.to_string()))
}

fn document(state: &crate::app::AppState, tenant: &crate::model::Tenant) -> serde_json::Value {
    let iss = state.issuer(tenant);
    let base = format!("{}/{}", state.public_url, tenant.slug);
    serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "revocation_endpoint": format!("{base}/oauth2/v2.0/revoke"),
        "introspection_endpoint": format!("{base}/oauth2/v2.0/introspect"),
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        // The OIDC scopes, and the admin API's delegated permissions (claims::GRAPH_SCOPES).
        "scopes_supported": SCOPES.iter().chain(super::claims::GRAPH_SCOPES).collect::<Vec<_>>(),
        "claims_supported": ["iss", "aud", "exp", "iat", "nbf", "sub", "nonce", "auth_time", "sid",
            "amr", "acr", "oid", "tid", "name", "preferred_username", "email", "email_verified",
            "acct", "upn", "idp", "ver"],
        "acr_values_supported": crate::model::Acr::ALL,
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
    })
}

pub async fn jwks(path: web::Path<String>, state: Data) -> Result<HttpResponse, PageError> {
    crate::web::tenant(&state, &path).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(state.keys.jwks_json().to_string()))
}
