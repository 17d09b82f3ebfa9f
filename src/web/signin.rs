//! The members' sign-in pages: identify, then password. Each handler loads the
//! transaction, checks it is at its step and bound to this browser, and advances it.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::PageError;
use super::pages::{IdentifyPage, PasswordPage, SignInContext, render};
use super::{AppState, Data, csrf};
use crate::directory::{Tenant, UserType, password};
use crate::oidc::authorize::{Reply, issue_code};
use crate::oidc::error::{OAuthCode, OAuthError};
use crate::oidc::model::{Authentication, SignIn, Step};
use crate::oidc::params::Params;
use crate::secrets::{ct_eq, digest};

const WRONG_PASSWORD: &str =
    "Your account or password is incorrect. If you don't remember your password, ask your administrator to reset it.";
const LOCKED: &str =
    "Too many failed sign-in attempts. Your account is locked for a while to protect it; try again later.";

/// Parses a posted form body (urlencoded, each field once).
pub fn form(req: &HttpRequest, body: &web::Bytes) -> Result<Params, PageError> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(PageError::bad_request("invalid_request", "This page expects a form submission."));
    }
    let raw = std::str::from_utf8(body)
        .map_err(|_| PageError::bad_request("invalid_request", "The form is not valid UTF-8."))?;
    Params::parse(raw).map_err(|e| PageError::bad_request("invalid_request", e.description))
}

/// Loads the transaction named by `tx` and checks tenant and browser binding.
fn load(req: &HttpRequest, state: &AppState, tenant: &Tenant, tx: Option<&str>) -> Result<(String, SignIn), PageError> {
    let tx = tx.ok_or_else(PageError::signin_expired)?;
    let signin = state.store.signin(&digest(tx))?.ok_or_else(PageError::signin_expired)?;
    let browser = super::cookie_value(req, csrf::BROWSER_COOKIE).ok_or_else(PageError::signin_expired)?;
    if signin.tenant_id != tenant.id || signin.expires_at <= state.now() || !ct_eq(&signin.browser, &digest(&browser)) {
        return Err(PageError::signin_expired());
    }
    Ok((tx.to_string(), signin))
}

fn context(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    signin: &SignIn,
) -> Result<SignInContext, PageError> {
    let app_name = state
        .store
        .app(&tenant.id, &signin.request.client_id)?
        .map(|a| a.display_name)
        .unwrap_or_else(|| signin.request.client_id.clone());
    let browser = super::cookie_value(req, csrf::BROWSER_COOKIE).unwrap_or_default();
    Ok(SignInContext {
        tenant_name: tenant.display_name.clone(),
        tenant_slug: tenant.slug.clone(),
        app_name,
        tx: tx.to_string(),
        csrf: csrf::token(state, &browser),
    })
}

fn step_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    signin: &SignIn,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let ctx = context(state, req, tenant, tx, signin)?;
    let login = signin.login.clone().unwrap_or_default();
    match signin.step {
        Step::Identify => render(&IdentifyPage { ctx, login, error }, vec![]),
        Step::Password => render(&PasswordPage { ctx, login, error }, vec![]),
    }
}

pub async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<std::collections::HashMap<String, String>>,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let tenant = state.tenant(&path)?;
    let (tx, signin) = load(&req, &state, &tenant, query.get("tx").map(String::as_str))?;
    step_page(&state, &req, &tenant, &tx, &signin, None)
}

/// Same page and same work for every login: whether the account exists is not revealed here.
pub async fn identify(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let tenant = state.tenant(&path)?;
    let f = form(&req, &body)?;
    csrf::verify(&req, &state, f.get("csrf"))?;
    let (tx, mut signin) = load(&req, &state, &tenant, f.get("tx"))?;
    if signin.step != Step::Identify {
        return Err(PageError::signin_expired());
    }
    let login = f.get("login").map(str::trim).unwrap_or_default().to_string();
    if login.is_empty() || login.len() > 320 {
        return step_page(&state, &req, &tenant, &tx, &signin, Some("Enter your email address or username.".into()));
    }
    let user = state.store.user_by_login(&tenant.id, &login)?;
    signin.user_id = user.filter(|u| u.user_type == UserType::Member).map(|u| u.id);
    signin.login = Some(login);
    signin.step = Step::Password;
    state.store.put_signin(&digest(&tx), &signin)?;
    Ok(see_other(&format!("/{}/login?tx={tx}", tenant.slug)))
}

pub async fn password(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let tenant = state.tenant(&path)?;
    let f = form(&req, &body)?;
    csrf::verify(&req, &state, f.get("csrf"))?;
    let (tx, signin) = load(&req, &state, &tenant, f.get("tx"))?;
    if signin.step != Step::Password {
        return Err(PageError::signin_expired());
    }
    let now = state.now();
    let login = signin.login.clone().unwrap_or_default().to_ascii_lowercase();
    let account_key = format!("acct:{}:{login}", tenant.id);
    let ip_key = format!(
        "ip:{}",
        super::net::client_ip(&req, &state.config.trusted_proxies).map(|i| i.to_string()).unwrap_or_default()
    );
    if state.limiter.is_limited(&account_key, now) || state.ip_limiter.is_limited(&ip_key, now) {
        return step_page(&state, &req, &tenant, &tx, &signin, Some(LOCKED.into()));
    }
    let user = match signin.user_id {
        Some(id) => state.store.user(&tenant.id, &id)?,
        None => None,
    };
    let presented = f.get("password").unwrap_or_default().to_string();
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = password::verify_blocking(presented, stored, state.dummy_hash.clone(), state.config.argon2.clone()).await;
    let Some(user) = user.filter(|_| ok) else {
        state.limiter.record_failure(&account_key, now);
        state.ip_limiter.record_failure(&ip_key, now);
        return step_page(&state, &req, &tenant, &tx, &signin, Some(WRONG_PASSWORD.into()));
    };
    state.limiter.clear(&account_key);
    if !user.account_enabled {
        return Err(PageError::bad_request("account_disabled", "Your account is disabled. Ask your administrator."));
    }
    state.store.delete_signin(&digest(&tx))?;
    let auth = Authentication { user_id: user.id, auth_time: now, amr: vec!["pwd".into()], acr: "1".into(), idp: None };
    issue_code(&state, &tenant, &signin.request, auth, None)
}

/// The person gave up: back to the application with access_denied.
pub async fn cancel(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let tenant = state.tenant(&path)?;
    let f = form(&req, &body)?;
    csrf::verify(&req, &state, f.get("csrf"))?;
    let (tx, signin) = load(&req, &state, &tenant, f.get("tx"))?;
    state.store.delete_signin(&digest(&tx))?;
    let reply = Reply::for_request(&state, &tenant, &signin.request);
    Ok(reply.error(&OAuthError::new(OAuthCode::AccessDenied, "the user cancelled the sign-in")))
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_string())).finish()
}
