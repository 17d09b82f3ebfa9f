//! CSRF: every form carries `csrf` = HMAC(instance secret, browser cookie). The browser
//! cookie is random, HttpOnly and SameSite=Lax, so another site can neither read nor forge it,
//! and it carries a MAC of its own: a value the server did not issue (planted) is never adopted.
use actix_web::HttpRequest;
use actix_web::cookie::Cookie;

use super::AppState;
use super::error::PageError;
use crate::secrets::{b64url, ct_eq, mac, new_token};
use crate::web::HttpState;

/// The browser cookie's name is this prefix and a tag of the instance secret: two instances on
/// one host (cookies ignore the port) would otherwise replace each other's cookie, each
/// refusing the other's MAC.
pub const BROWSER_COOKIE: &str = "gh_b";
/// The browser cookie lives 400 days (the most browsers keep a cookie).
const BROWSER_COOKIE_SECS: i64 = 400 * 86400;

fn seal(state: &AppState, id: &str) -> String {
    b64url(&mac(&state.instance_secret, &[b"browser", id.as_bytes()]))
}

/// This instance's browser cookie name (see [`BROWSER_COOKIE`]).
pub fn cookie_name(state: &AppState) -> String {
    let tag = mac(&state.instance_secret, &[b"browser-cookie-name"]);
    format!("{BROWSER_COOKIE}_{}", b64url(&tag[..6]))
}

/// The browser id in this request's cookie, only when the server issued it (MAC checked
/// in constant time).
pub fn issued(req: &HttpRequest, state: &AppState) -> Option<String> {
    let value = super::cookie_value(req, &cookie_name(state))?;
    let (id, tag) = value.split_once('.')?;
    (id.len() >= 32 && ct_eq(tag.as_bytes(), seal(state, id).as_bytes())).then_some(value)
}

/// A new server-issued browser id and its cookie.
pub fn fresh(state: &AppState) -> (String, Cookie<'static>) {
    let id = new_token();
    let value = format!("{id}.{}", seal(state, &id));
    let c = state.cookie(&cookie_name(state), value.clone(), "/".into(), Some(BROWSER_COOKIE_SECS)).into_owned();
    (value, c)
}

/// A new browser id when a sign-in completes (so a planted, even server-issued, value stops
/// there); the browser's other sign-ins in progress (e.g. the resource tenant's sign-in that
/// sent a guest to a home tenant here) follow it.
pub async fn rotate(state: &AppState, old: &[u8; 32]) -> Result<Cookie<'static>, PageError> {
    let (id, c) = fresh(state);
    state.store.rebind_signins(old, &crate::secrets::digest(&id)).await?;
    Ok(c)
}

/// The browser id of this request, and a cookie to set when it is new (or was not ours).
pub fn browser(req: &HttpRequest, state: &AppState) -> (String, Option<Cookie<'static>>) {
    match issued(req, state) {
        Some(id) => (id, None),
        None => {
            let (id, c) = fresh(state);
            (id, Some(c))
        }
    }
}

pub fn token(state: &AppState, browser_id: &str) -> String {
    b64url(&mac(&state.instance_secret, &[b"csrf", browser_id.as_bytes()]))
}

/// Checks the form's `csrf` field against this browser; returns the browser id.
pub fn verify(req: &HttpRequest, state: &AppState, presented: Option<&str>) -> Result<String, PageError> {
    let browser = issued(req, state).ok_or_else(PageError::csrf)?;
    let expected = token(state, &browser);
    match presented {
        Some(p) if ct_eq(p.as_bytes(), expected.as_bytes()) => Ok(browser),
        _ => Err(PageError::csrf()),
    }
}
