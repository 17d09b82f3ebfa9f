//! The sign-in pages and their state machine: identify → password (members) or the
//! home IdP / email code (guests) → consent (redemption) → done. Each handler loads the
//! transaction, checks it is at its step and bound to this browser, and advances it.
//! Here: loading and posting a step, the step page, `begin`, `cancel`. `member` (identify,
//! password) · `guest` (home IdP, federation callback, email code) · `redeem` (ticket,
//! consent) · `mfa` · `flow` (conditional access, app consent, finish, portal user).
pub mod authorize;
pub mod change_password;
pub mod device;
pub mod flow;
pub mod guest;
pub mod member;
pub mod mfa;
pub mod passkey;
pub mod passwordless;
pub mod redeem;
pub mod terms;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::model::{EMAIL_OTP_ISSUER, Purpose, SignIn, Step, Tenant, User};
use crate::oidc::error::{OAuthCode, OAuthError};
use crate::oidc::session::Reply;
use crate::secrets::{ct_eq, digest, new_token};
use crate::web::error::PageError;
use crate::web::pages::{AppConsentPage, ConsentPage, EmailOtpPage, PasswordPage, SignInContext, render};
use crate::web::params::Params;
use crate::web::{Data, csrf};

/// Sends of an email code per sign-in, and the pause between two.
pub(crate) const OTP_MAX_SENDS: u32 = 5;
pub(crate) const OTP_RESEND_PAUSE_SECS: i64 = 30;
/// Email codes per hour to one address from one client IP (what a guest needs, and all
/// that one anonymous requester can spend) ...
pub const OTP_SENDS_PER_IP: u32 = 10;
/// ... and to one address from anywhere (protects the mailbox; larger, so that one
/// requester cannot use up what the guest needs).
pub const OTP_SENDS_PER_ADDRESS: u32 = 50;
/// SSO reuses of one session at /authorize per minute.
pub const SSO_REUSES_PER_MINUTE: u32 = 60;

/// A page answered with 429 and `Retry-After`.
pub(crate) fn too_many(mut resp: HttpResponse, retry_after: i64) -> HttpResponse {
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after.max(1)));
    resp
}

/// The error page for a limit, with `Retry-After`.
pub(crate) fn too_many_page(code: &'static str, message: impl Into<String>, retry_after: i64) -> HttpResponse {
    let page = PageError::new(StatusCode::TOO_MANY_REQUESTS, code, message);
    too_many(actix_web::ResponseError::error_response(&page), retry_after)
}

/// Loads the transaction named by `tx` and checks tenant and browser binding.
pub(crate) async fn load(
    req: &HttpRequest,
    state: &AppState,
    tenant_id: &crate::model::TenantId,
    tx: Option<&str>,
) -> Result<(String, SignIn), PageError> {
    let tx = tx.ok_or_else(PageError::signin_expired)?;
    let signin = state.store.signin(&digest(tx)).await?.ok_or_else(PageError::signin_expired)?;
    let browser = csrf::issued(req, state).ok_or_else(PageError::signin_expired)?;
    if signin.tenant_id != *tenant_id || signin.expires_at <= state.now() || !ct_eq(&signin.browser, &digest(&browser))
    {
        return Err(PageError::signin_expired());
    }
    Ok((tx.to_string(), signin))
}

/// Loads a posted step: tenant, CSRF, transaction, and the step it must be at.
pub(crate) async fn posted(
    req: &HttpRequest,
    state: &AppState,
    slug: &str,
    body: &web::Bytes,
    at: fn(&Step) -> bool,
) -> Result<(Tenant, Params, String, SignIn), PageError> {
    let tenant = crate::web::tenant(state, slug).await?;
    let f = crate::web::form::body(req, body)?;
    // A spent transaction says so first: the sign-in that spent it renewed the browser
    // cookie, so the old form's CSRF token no longer matches either.
    if let Some(tx) = f.get("tx")
        && state.store.signin(&digest(tx)).await?.is_none()
    {
        return Err(PageError::signin_expired());
    }
    csrf::verify(req, state, f.get("csrf"))?;
    let (tx, signin) = load(req, state, &tenant.id, f.get("tx")).await?;
    if !at(&signin.step) {
        return Err(PageError::signin_expired());
    }
    Ok((tenant, f, tx, signin))
}

pub(crate) async fn context(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    signin: &SignIn,
) -> Result<SignInContext, PageError> {
    let app_name = match signin.client_id() {
        Some(c) => state.store.app(&tenant.id, c).await?.map(|a| a.display_name).unwrap_or_else(|| c.to_string()),
        None => tenant.display_name.clone(),
    };
    let browser = csrf::issued(req, state).unwrap_or_default();
    let strength_note = match &signin.step {
        Step::MfaEnroll { auth, .. }
        | Step::MfaChoose { auth }
        | Step::PasskeyEnroll { auth, .. }
        | Step::MfaChallengeChoose { auth }
        | Step::PasskeyChallenge { auth, .. }
        | Step::MfaChallenge { auth } => {
            let offer = passkey::offer(state, tenant, signin, auth);
            let note = passkey::strength_note(tenant, &app_name, signin, offer);
            // Asked for a method that falls short: it proves the account before a passkey is added.
            let first = match &signin.step {
                Step::MfaChallenge { .. } => !offer.totp,
                Step::PasskeyChallenge { .. } => !offer.passkey,
                _ => false,
            };
            note.map(|n| {
                if first {
                    format!("{n} First confirm it is you with a method you have; then you create a passkey.")
                } else {
                    n
                }
            })
        }
        _ => None,
    };
    Ok(SignInContext {
        tenant_name: tenant.display_name.clone(),
        tenant_slug: tenant.slug.clone(),
        app_name,
        tx: tx.to_string(),
        csrf: csrf::token(state, &browser),
        strength_note,
    })
}

pub(crate) async fn step_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    signin: &SignIn,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let ctx = context(state, req, tenant, tx, signin).await?;
    let login = signin.login.clone().unwrap_or_default();
    match &signin.step {
        Step::Identify => passwordless::identify_page(state, tenant, tx, signin, ctx, login, error).await,
        Step::Password => render(&PasswordPage { ctx, login, error }, vec![]),
        Step::ChangePassword { .. } => change_password::page(ctx, login, error),
        Step::EmailOtp { sends, .. } => render(&EmailOtpPage { ctx, email: login, sent: *sends > 0, error }, vec![]),
        Step::Consent { idp, .. } => {
            let user = signin_user(state, tenant, signin).await?;
            let home =
                if idp == EMAIL_OTP_ISSUER { "a one-time code sent to your email".to_string() } else { idp.clone() };
            render(&ConsentPage { ctx, name: user.display_name, email: user.mail, home }, vec![])
        }
        Step::MfaEnroll { secret_b32, .. } => {
            crate::signin::mfa::enroll_page(state, tenant, signin, ctx, secret_b32, error)
        }
        Step::MfaEnrolled { .. } => crate::signin::mfa::enrolled_page(ctx),
        Step::MfaChallenge { .. } => crate::signin::mfa::challenge_page(ctx, error),
        Step::MfaChoose { .. }
        | Step::MfaChallengeChoose { .. }
        | Step::PasskeyEnroll { .. }
        | Step::PasskeyChallenge { .. } => crate::signin::passkey::step_page(state, tenant, signin, ctx, error)
            .unwrap_or_else(|| Err(PageError::signin_expired())),
        Step::AppConsent { .. } => {
            let Purpose::Authorize(request) = &signin.purpose else { return Err(PageError::signin_expired()) };
            let shares = request.scope.iter().map(|s| scope_words(s)).collect();
            render(&AppConsentPage { ctx, shares }, vec![])
        }
        Step::Terms { agreements, .. } => terms::page(tenant, ctx, agreements),
        Step::Federating { .. } => Err(PageError::bad_request(
            "home_signin_pending",
            "You are signing in at your home organisation in another step. Go back to the application and start again.",
        )),
    }
}

/// What a scope value lets the application have, in words for the consent page.
fn scope_words(scope: &str) -> String {
    match scope {
        "openid" => "sign you in and know who you are".into(),
        "profile" => "your name and user name".into(),
        "email" => "your email address".into(),
        "offline_access" => "stay signed in: keep access when you are not using it".into(),
        other => format!("use the directory for you ({other})"),
    }
}

pub(crate) async fn signin_user(state: &AppState, tenant: &Tenant, signin: &SignIn) -> Result<User, PageError> {
    let id = signin.user_id.ok_or_else(PageError::signin_expired)?;
    state.store.user(&tenant.id, &id).await?.ok_or_else(PageError::signin_expired)
}

pub async fn show(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, PageError> {
    let tenant = crate::web::tenant(&state, &path).await?;
    let query = crate::web::form::query(&req)?;
    let (tx, signin) = load(&req, &state, &tenant.id, query.get("tx")).await?;
    step_page(&state, &req, &tenant, &tx, &signin, None).await
}

pub(crate) fn to_login_page(tenant: &Tenant, tx: &str) -> HttpResponse {
    see_other(&format!("/{}/login?tx={tx}", tenant.slug))
}

/// The person gave up: back to the application with access_denied.
pub async fn cancel(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, _, tx, signin) = posted(&req, &state, &path, &body, |_| true).await?;
    state.store.delete_signin(&digest(&tx)).await?;
    match &signin.purpose {
        Purpose::Authorize(request) => {
            let reply = Reply::for_request(&state, &tenant, request);
            Ok(reply.error(&OAuthError::new(OAuthCode::AccessDenied, "the user cancelled the sign-in")))
        }
        _ => Ok(see_other("/")),
    }
}

/// Stores a new sign-in bound to this browser and sends the browser to its first page.
/// Anonymous requests open these, so they are bounded per browser (the oldest is evicted)
/// and on the instance (then 503 with a page saying so, and nothing is stored).
pub async fn begin(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
    purpose: Purpose,
    login: Option<String>,
) -> Result<HttpResponse, PageError> {
    let (browser, new_cookie) = csrf::browser(req, state);
    let tx = new_token();
    let now = state.now();
    let signin = SignIn {
        tenant_id: tenant.id,
        browser: digest(&browser),
        purpose,
        step: Step::Identify,
        login,
        user_id: None,
        expires_at: now + state.config.tokens.signin_secs,
        strengths: vec![],
        passwordless: None,
        persistent_browser: None,
    };
    let limits = &state.config.signins;
    match state.store.open_signin(&digest(&tx), &signin, limits.per_browser, limits.total, now).await? {
        crate::storage::SignInAdmission::Stored => {}
        crate::storage::SignInAdmission::Full => {
            tracing::warn!(limit = limits.total, "sign-in transactions at their limit: refusing new sign-ins");
            return Err(PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_signins",
                "Too many sign-ins are in progress on this service right now. Wait a few minutes and try again.",
            ));
        }
    }
    let mut resp = HttpResponse::Found();
    resp.insert_header((header::LOCATION, format!("/{}/login?tx={tx}", tenant.slug)));
    if let Some(c) = new_cookie {
        resp.cookie(c);
    }
    Ok(resp.finish())
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_string())).finish()
}

/// The page when a tenant has no Premium seat left for this user.
pub(crate) fn seat_exhausted(tenant: &Tenant) -> PageError {
    PageError::new(
        actix_web::http::StatusCode::FORBIDDEN,
        "license_exhausted",
        format!("{} has no Premium licence left for you. Ask its admin to add licences.", tenant.display_name),
    )
}
