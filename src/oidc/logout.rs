//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): ends the SSO session
//! and returns only to a registered post_logout_redirect_uri.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::claims::{IdTokenClaims, pairwise_sub};
use super::session::{SSO_COOKIE, current_session};
use crate::app::AppState;
use crate::keys::TokenType;
use crate::secrets::{ct_eq, digest};
use crate::web::HttpState;
use crate::web::error::PageError;
use crate::web::pages::{LogoutPage, SignedOutPage, render};
use crate::web::params::Params;
use crate::web::{Data, csrf};

pub async fn end_session_get(
    req: HttpRequest,
    path: web::Path<String>,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let p = crate::web::form::query(&req)?;
    end_session(&req, &path, p, &state, false).await
}

pub async fn end_session_post(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let p = crate::web::form::body(&req, &body)?;
    let confirmed = p.contains("csrf");
    if confirmed {
        csrf::verify(&req, &state, p.get("csrf"))?;
    }
    end_session(&req, &path, p, &state, confirmed).await
}

async fn end_session(
    req: &HttpRequest,
    slug: &str,
    p: Params,
    state: &AppState,
    confirmed: bool,
) -> Result<HttpResponse, PageError> {
    let tenant = crate::web::tenant(state, slug).await?;
    let hint = match p.get("id_token_hint") {
        Some(t) => Some(
            state
                .keys
                .verify::<IdTokenClaims>(t, TokenType::Id, state.now(), false)
                .ok()
                .filter(|c| c.iss == state.issuer(&tenant))
                .ok_or_else(|| {
                    PageError::bad_request("invalid_request", "The id_token_hint is not a token we issued.")
                })?,
        ),
        None => None,
    };
    let client_id = match (p.get("client_id"), &hint) {
        (Some(c), Some(h)) if c != h.aud => {
            return Err(PageError::bad_request("invalid_request", "client_id does not match the id_token_hint."));
        }
        (Some(c), _) => Some(c.to_string()),
        (None, Some(h)) => Some(h.aud.clone()),
        (None, None) => None,
    };
    let redirect = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let app = match &client_id {
                Some(c) => state.store.app(&tenant.id, c).await?,
                None => None,
            };
            match app {
                Some(app) if app.post_logout_uri_registered(uri) => Some(uri.to_string()),
                _ => {
                    return Err(PageError::bad_request(
                        "invalid_post_logout_redirect_uri",
                        "The address to return to after signing out is not registered for this application.",
                    ));
                }
            }
        }
    };
    // Anyone can send a browser here, with any ID token they hold: sign out without asking
    // only when an unexpired hint names this browser's own session (its sid and subject).
    let current = current_session(req, state, &tenant).await?;
    let hint_is_this_session = match (&hint, &current) {
        (Some(h), Some((_, s))) => {
            h.exp > state.now()
                && ct_eq(h.sid.as_bytes(), s.sid.as_bytes())
                && h.sub == pairwise_sub(state, &tenant, &s.auth.user_id, &h.aud)
        }
        _ => false,
    };
    if !confirmed && current.is_some() && !hint_is_this_session {
        let (browser, new_cookie) = csrf::browser(req, state);
        let mut fields = Vec::new();
        if let Some(c) = &client_id {
            fields.push(("client_id".to_string(), c.clone()));
        }
        for name in ["post_logout_redirect_uri", "state"] {
            if let Some(v) = p.get(name) {
                fields.push((name.to_string(), v.to_string()));
            }
        }
        let page = LogoutPage {
            tenant_name: tenant.display_name.clone(),
            action: format!("/{}/oauth2/v2.0/logout", tenant.slug),
            csrf: csrf::token(state, &browser),
            fields,
        };
        let mut resp = render(&page, new_cookie.into_iter().collect())?;
        // The confirmation posts here and is then redirected to the relying party.
        let mut form_action = "'self'".to_string();
        if let Some(src) = redirect.as_deref().and_then(crate::web::csp::form_action_source) {
            form_action = format!("{form_action} {src}");
        }
        let csp = crate::web::csp::content_security_policy(Some(&form_action));
        if let Ok(v) = header::HeaderValue::from_str(&csp) {
            resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
        }
        return Ok(resp);
    }
    if let Some((cookie, _)) = current {
        state.store.delete_session(&digest(&cookie)).await?;
    }
    let removal = state.removal_cookie(SSO_COOKIE, format!("/{}", tenant.slug));
    match redirect {
        Some(uri) => {
            let mut u = url::Url::parse(&uri).map_err(PageError::internal)?;
            if let Some(s) = p.get("state") {
                u.query_pairs_mut().append_pair("state", s);
            }
            Ok(HttpResponse::Found().insert_header((header::LOCATION, u.to_string())).cookie(removal).finish())
        }
        None => render(&SignedOutPage { tenant_name: tenant.display_name.clone() }, vec![removal]),
    }
}
