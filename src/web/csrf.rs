//! CSRF: every form carries `csrf` = HMAC(instance secret, browser cookie). The browser
//! cookie is random, HttpOnly and SameSite=Lax, so another site can neither read nor forge it.
use actix_web::HttpRequest;
use actix_web::cookie::Cookie;

use super::AppState;
use super::error::PageError;
use crate::secrets::{b64url, ct_eq, mac, new_token};

pub const BROWSER_COOKIE: &str = "gh_b";

/// The browser id of this request, and a cookie to set when it is new.
pub fn browser(req: &HttpRequest, state: &AppState) -> (String, Option<Cookie<'static>>) {
    match super::cookie_value(req, BROWSER_COOKIE) {
        Some(id) if id.len() >= 32 => (id, None),
        _ => {
            let id = new_token();
            let c = state.cookie(BROWSER_COOKIE, id.clone(), "/".into(), Some(400 * 86400));
            (id, Some(c))
        }
    }
}

pub fn token(state: &AppState, browser_id: &str) -> String {
    b64url(&mac(&state.instance_secret, &[b"csrf", browser_id.as_bytes()]))
}

/// Checks the form's `csrf` field against this browser; returns the browser id.
pub fn verify(req: &HttpRequest, state: &AppState, presented: Option<&str>) -> Result<String, PageError> {
    let browser = super::cookie_value(req, BROWSER_COOKIE).ok_or_else(PageError::csrf)?;
    let expected = token(state, &browser);
    match presented {
        Some(p) if ct_eq(p.as_bytes(), expected.as_bytes()) => Ok(browser),
        _ => Err(PageError::csrf()),
    }
}
