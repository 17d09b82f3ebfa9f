//! The sign-in pages and their state machine: identify → password (members) or the
//! home IdP / email code (guests) → consent (redemption) → done. Each handler loads the
//! transaction, checks it is at its step and bound to this browser, and advances it.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::PageError;
use super::pages::{ConsentPage, EmailOtpPage, IdentifyPage, MessagePage, PasswordPage, SignInContext, render};
use super::{AppState, Data, csrf};
use crate::directory::{ExternalUserState, Identity, Tenant, User, password};
use crate::federation::{self, HomeIdentity};
use crate::mfa;
use crate::oidc::authorize::{Reply, issue_code, open_session, retire_session, session_cookie};
use crate::oidc::error::{OAuthCode, OAuthError};
use crate::oidc::model::{Authentication, Home, Purpose, SignIn, Step};
use crate::oidc::params::Params;
use crate::secrets::{ct_eq, digest, new_token};
use crate::storage::Redeemed;

const WRONG_PASSWORD: &str =
    "Your account or password is incorrect. If you don't remember your password, ask your administrator to reset it.";
const LOCKED: &str =
    "Too many failed sign-in attempts. Your account is locked for a while to protect it; try again later.";
/// Sends of an email code per sign-in, and the pause between two.
const OTP_MAX_SENDS: u32 = 5;
const OTP_RESEND_PAUSE_SECS: i64 = 30;

/// Parses the query string (each parameter once), or the human error page.
pub fn query(req: &HttpRequest) -> Result<Params, PageError> {
    Params::parse(req.query_string()).map_err(|e| PageError::bad_request("invalid_request", e.description))
}

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
pub(crate) fn load(
    req: &HttpRequest,
    state: &AppState,
    tenant_id: &uuid::Uuid,
    tx: Option<&str>,
) -> Result<(String, SignIn), PageError> {
    let tx = tx.ok_or_else(PageError::signin_expired)?;
    let signin = state.store.signin(&digest(tx))?.ok_or_else(PageError::signin_expired)?;
    let browser = csrf::issued(req, state).ok_or_else(PageError::signin_expired)?;
    if signin.tenant_id != *tenant_id || signin.expires_at <= state.now() || !ct_eq(&signin.browser, &digest(&browser))
    {
        return Err(PageError::signin_expired());
    }
    Ok((tx.to_string(), signin))
}

/// Loads a posted step: tenant, CSRF, transaction, and the step it must be at.
pub(crate) fn posted(
    req: &HttpRequest,
    state: &AppState,
    slug: &str,
    body: &web::Bytes,
    at: fn(&Step) -> bool,
) -> Result<(Tenant, Params, String, SignIn), PageError> {
    let tenant = state.tenant(slug)?;
    let f = form(req, body)?;
    // A spent transaction says so first: the sign-in that spent it renewed the browser
    // cookie, so the old form's CSRF token no longer matches either.
    if let Some(tx) = f.get("tx")
        && state.store.signin(&digest(tx))?.is_none()
    {
        return Err(PageError::signin_expired());
    }
    csrf::verify(req, state, f.get("csrf"))?;
    let (tx, signin) = load(req, state, &tenant.id, f.get("tx"))?;
    if !at(&signin.step) {
        return Err(PageError::signin_expired());
    }
    Ok((tenant, f, tx, signin))
}

pub(crate) fn context(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    signin: &SignIn,
) -> Result<SignInContext, PageError> {
    let app_name = match signin.client_id() {
        Some(c) => state.store.app(&tenant.id, c)?.map(|a| a.display_name).unwrap_or_else(|| c.to_string()),
        None => tenant.display_name.clone(),
    };
    let browser = csrf::issued(req, state).unwrap_or_default();
    Ok(SignInContext {
        tenant_name: tenant.display_name.clone(),
        tenant_slug: tenant.slug.clone(),
        app_name,
        tx: tx.to_string(),
        csrf: csrf::token(state, &browser),
    })
}

pub(crate) fn step_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    signin: &SignIn,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let ctx = context(state, req, tenant, tx, signin)?;
    let login = signin.login.clone().unwrap_or_default();
    match &signin.step {
        Step::Identify => render(&IdentifyPage { ctx, login, error }, vec![]),
        Step::Password => render(&PasswordPage { ctx, login, error }, vec![]),
        Step::EmailOtp { .. } => render(&EmailOtpPage { ctx, email: login, error }, vec![]),
        Step::Consent { idp, .. } => {
            let user = signin_user(state, tenant, signin)?;
            let home = if idp == "mail" { "a one-time code sent to your email".to_string() } else { idp.clone() };
            render(&ConsentPage { ctx, name: user.display_name, email: user.mail, home }, vec![])
        }
        Step::MfaEnroll { secret_b32, .. } => super::mfa::enroll_page(state, tenant, signin, ctx, secret_b32, error),
        Step::MfaEnrolled { .. } => super::mfa::enrolled_page(ctx),
        Step::MfaChallenge { .. } => super::mfa::challenge_page(ctx, error),
        Step::Federating { .. } => Err(PageError::bad_request(
            "home_signin_pending",
            "You are signing in at your home organisation in another step. Go back to the application and start again.",
        )),
    }
}

pub(crate) fn signin_user(state: &AppState, tenant: &Tenant, signin: &SignIn) -> Result<User, PageError> {
    let id = signin.user_id.ok_or_else(PageError::signin_expired)?;
    state.store.user(&tenant.id, &id)?.ok_or_else(PageError::signin_expired)
}

pub async fn show(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, PageError> {
    let tenant = state.tenant(&path)?;
    let query = query(&req)?;
    let (tx, signin) = load(&req, &state, &tenant.id, query.get("tx"))?;
    step_page(&state, &req, &tenant, &tx, &signin, None)
}

pub(crate) fn to_login_page(tenant: &Tenant, tx: &str) -> HttpResponse {
    see_other(&format!("/{}/login?tx={tx}", tenant.slug))
}

/// For members the same page and the same work follow for every login, so whether an
/// account exists is not revealed. Guests go to their home IdP (home realm discovery).
pub async fn identify(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, mut signin) = posted(&req, &state, &path, &body, |s| *s == Step::Identify)?;
    let login = f.get("login").map(str::trim).unwrap_or_default().to_string();
    if login.is_empty() || login.len() > 320 {
        return step_page(&state, &req, &tenant, &tx, &signin, Some("Enter your email address or username.".into()));
    }
    let user = state.store.user_by_login(&tenant.id, &login)?;
    signin.login = Some(login);
    if let Some(guest) = user.as_ref().filter(|u| u.is_guest()) {
        signin.user_id = Some(guest.id);
        signin.login = Some(guest.mail.clone());
        if guest.external_user_state != Some(ExternalUserState::Accepted) || guest.identities.is_empty() {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "invitation_pending",
                format!(
                    "{} has invited you, but you have not accepted the invitation yet. Open the invitation link from your email first.",
                    tenant.display_name
                ),
            ));
        }
        let home = federation::home_of_issuer(&state, &tenant, &guest.identities[0].issuer)?.ok_or_else(|| {
            PageError::bad_request(
                "home_unavailable",
                "Your home identity provider is no longer configured here. Ask the admin to reset your redemption.",
            )
        })?;
        return begin_home(&state, &tenant, &tx, signin, home).await;
    }
    let own_domain = signin
        .login
        .as_deref()
        .and_then(|l| l.rsplit_once('@'))
        .is_none_or(|(_, d)| tenant.domains.iter().any(|td| td.eq_ignore_ascii_case(d)));
    if user.is_none() && !own_domain {
        // An address outside the tenant's domains that nobody invited: say so (this
        // reveals nothing about the tenant's own accounts).
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "not_invited",
            format!("You don't have an account in {}. Ask its administrator to invite you.", tenant.display_name),
        ));
    }
    signin.user_id = user.map(|u| u.id);
    signin.step = Step::Password;
    state.store.put_signin(&digest(&tx), &signin)?;
    Ok(to_login_page(&tenant, &tx))
}

pub async fn password(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, signin) = posted(&req, &state, &path, &body, |s| *s == Step::Password)?;
    let now = state.now();
    let login = signin.login.clone().unwrap_or_default().to_ascii_lowercase();
    let account_key = format!("acct:{}:{login}", tenant.id);
    let ip = super::net::client_ip(&req, &state.config.trusted_proxies).map(|i| i.to_string()).unwrap_or_default();
    let ip_key = format!("ip:{ip}");
    if state.limiter.is_limited(&account_key, now) || state.ip_limiter.is_limited(&ip_key, now) {
        return step_page(&state, &req, &tenant, &tx, &signin, Some(LOCKED.into()));
    }
    let user = match signin.user_id {
        Some(id) => state.store.user(&tenant.id, &id)?,
        None => None,
    };
    let presented = f.get("password").unwrap_or_default().to_string();
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = password::verify_blocking(presented, stored, state.dummy_hash.clone()).await;
    let Some(user) = user.filter(|_| ok) else {
        state.limiter.record_failure(&account_key, now);
        state.ip_limiter.record_failure(&ip_key, now);
        return step_page(&state, &req, &tenant, &tx, &signin, Some(WRONG_PASSWORD.into()));
    };
    state.limiter.clear(&account_key);
    if !user.account_enabled {
        return Err(PageError::bad_request("account_disabled", "Your account is disabled. Ask your administrator."));
    }
    let auth = Authentication {
        user_id: user.id,
        auth_time: now,
        amr: vec!["pwd".into()],
        acr: "1".into(),
        idp: None,
        epoch: user.session_epoch,
        device_id: None,
    };
    after_primary(&state, &req, &tenant, &tx, signin, auth, None)
}

/// Sends the guest to their home IdP, or emails a one-time code.
pub async fn begin_home(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    mut signin: SignIn,
    home: Home,
) -> Result<HttpResponse, PageError> {
    let email = signin.login.clone().unwrap_or_default();
    if home == Home::EmailOtp {
        let now = state.now();
        let code = mfa::new_email_otp();
        send_email_code(state, tenant, &email, &code)?;
        signin.step = Step::EmailOtp {
            code_hash: mfa::hash_code(&code),
            expires_at: now + mfa::EMAIL_OTP_TTL_SECS,
            attempts: 0,
            sends: 1,
            last_sent: now,
        };
        // The code lives 30 minutes; the sign-in must outlive it.
        signin.expires_at = signin.expires_at.max(now + mfa::EMAIL_OTP_TTL_SECS + 60);
        state.store.put_signin(&digest(tx), &signin)?;
        return Ok(to_login_page(tenant, tx));
    }
    let started = federation::start(state, tenant, &home, &email).await.map_err(|e| {
        tracing::warn!(error = %e, "home IdP unreachable");
        PageError::new(
            StatusCode::BAD_GATEWAY,
            "home_unreachable",
            "We could not reach your home identity provider. Try again later.",
        )
    })?;
    signin.step =
        Step::Federating { home, state: started.state.clone(), nonce: started.nonce, verifier: started.verifier };
    state.store.put_signin(&digest(tx), &signin)?;
    state.store.put_fed_state(&started.state, tx)?;
    Ok(HttpResponse::Found().insert_header((header::LOCATION, started.url)).finish())
}

fn send_email_code(state: &AppState, tenant: &Tenant, email: &str, code: &str) -> Result<(), PageError> {
    let key = format!("otp:{}", email.to_ascii_lowercase());
    let now = state.now();
    if state.otp_send_limiter.is_limited(&key, now) {
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "otp_rate_limited",
            "Too many codes were sent to this address recently. Wait an hour and try again.",
        ));
    }
    state.otp_send_limiter.record_failure(&key, now);
    let body = format!(
        "Your {} verification code is {code}.\n\nIt is valid for 30 minutes and works once. If you did not try to sign in, ignore this email.",
        tenant.display_name
    );
    super::mail::send(
        state,
        Some(tenant.id),
        email,
        &format!("{} verification code", tenant.display_name),
        &body,
        None,
        Some(code),
    )
    .map_err(PageError::internal)
}

/// `/federation/callback`: the home IdP answers; the sign-in that sent the guest continues.
pub async fn federation_callback(req: HttpRequest, state: Data) -> Result<HttpResponse, PageError> {
    let query = query(&req)?;
    let st = query.get("state").ok_or_else(PageError::signin_expired)?;
    let tx = state.store.take_fed_state(st)?.ok_or_else(PageError::signin_expired)?;
    let pending = state.store.signin(&digest(&tx))?.ok_or_else(PageError::signin_expired)?;
    let tenant = state.store.tenant(&pending.tenant_id)?.ok_or_else(PageError::signin_expired)?;
    let (tx, signin) = load(&req, &state, &tenant.id, Some(&tx))?;
    let Step::Federating { home, state: expected, nonce, verifier } = signin.step.clone() else {
        return Err(PageError::signin_expired());
    };
    if !ct_eq(expected.as_bytes(), st.as_bytes()) {
        return Err(PageError::signin_expired());
    }
    if let Some(err) = query.get("error") {
        return Err(PageError::bad_request(
            "home_signin_failed",
            format!(
                "Your home identity provider did not sign you in ({err}). Go back to the application and try again."
            ),
        ));
    }
    let code = query.get("code").ok_or_else(|| PageError::bad_request("home_signin_failed", "No code came back."))?;
    let proven = federation::finish(&state, &tenant, &home, code, &nonce, &verifier).await.map_err(|e| {
        tracing::warn!(error = %e, "home sign-in failed");
        PageError::bad_request(
            "home_signin_failed",
            "Your home identity provider's answer could not be verified. Try again.",
        )
    })?;
    home_proven(&state, &req, &tenant, &tx, signin, proven, vec!["fed".into()])
}

/// The home identity is proven: redemption goes on to consent, a sign-in completes.
fn home_proven(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    mut signin: SignIn,
    proven: HomeIdentity,
    mut amr: Vec<String>,
) -> Result<HttpResponse, PageError> {
    let user = signin_user(state, tenant, &signin)?;
    // Home MFA counts only where this tenant's inbound trust accepts that partner's MFA.
    let mut acr = "1".to_string();
    if proven.amr.iter().any(|a| a == "mfa") && trusts_home_mfa(state, tenant, &proven.issuer)? {
        amr.push("mfa".into());
        acr = "2".into();
    }
    let identity = Identity {
        sign_in_type: if proven.issuer == "mail" { "emailAddress".into() } else { "federated".into() },
        issuer: proven.issuer.clone(),
        issuer_assigned_id: proven.subject.clone(),
    };
    match &signin.purpose {
        Purpose::Redeem { .. } => {
            let email = proven.email.clone().unwrap_or_default();
            if !proven.email_verified || !email.eq_ignore_ascii_case(&user.mail) {
                return Err(wrong_account(&email, &user.mail));
            }
            signin.step = Step::Consent { identity, amr, idp: proven.issuer };
            state.store.put_signin(&digest(tx), &signin)?;
            Ok(to_login_page(tenant, tx))
        }
        Purpose::Authorize(_) | Purpose::Portal { .. } => {
            let known = user
                .identities
                .iter()
                .any(|i| i.issuer == identity.issuer && i.issuer_assigned_id == identity.issuer_assigned_id);
            if !known {
                return Err(wrong_account(proven.email.as_deref().unwrap_or("another account"), &user.mail));
            }
            let auth = Authentication {
                user_id: user.id,
                auth_time: state.now(),
                amr,
                acr,
                idp: Some(proven.issuer),
                epoch: user.session_epoch,
                device_id: None,
            };
            after_primary(state, req, tenant, tx, signin, auth, None)
        }
    }
}

/// Whether `tenant` accepts MFA done at the home tenant behind `issuer` (inbound trust).
fn trusts_home_mfa(state: &AppState, tenant: &Tenant, issuer: &str) -> Result<bool, PageError> {
    let Some(slug) = issuer.strip_prefix(&format!("{}/", state.public_url)).and_then(|r| r.strip_suffix("/v2.0"))
    else {
        return Ok(false);
    };
    let Some(home) = state.store.tenant_by_slug(slug)? else { return Ok(false) };
    Ok(tenant.inbound_trust.iter().any(|t| t.tenant_id == home.id && t.is_mfa_accepted))
}

fn wrong_account(signed_in_as: &str, invited: &str) -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "wrong_account",
        format!(
            "You signed in as a different account ({signed_in_as}) than the one this is for ({invited}). Sign out of your home account, then open the link again and use {invited}."
        ),
    )
}

pub async fn email_otp(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, mut signin) = posted(&req, &state, &path, &body, |s| matches!(s, Step::EmailOtp { .. }))?;
    let Step::EmailOtp { code_hash, expires_at, attempts, sends, last_sent } = signin.step.clone() else {
        return Err(PageError::signin_expired());
    };
    let now = state.now();
    if expires_at <= now {
        return step_page(&state, &req, &tenant, &tx, &signin, Some("This code has expired. Send a new code.".into()));
    }
    if attempts >= mfa::EMAIL_OTP_MAX_ATTEMPTS {
        return step_page(&state, &req, &tenant, &tx, &signin, Some("Too many wrong codes. Send a new code.".into()));
    }
    let presented = f.get("code").unwrap_or_default();
    if !mfa::code_matches(presented, &code_hash) {
        signin.step = Step::EmailOtp { code_hash, expires_at, attempts: attempts + 1, sends, last_sent };
        state.store.put_signin(&digest(&tx), &signin)?;
        let msg = if attempts + 1 >= mfa::EMAIL_OTP_MAX_ATTEMPTS {
            "That code is not right, and that was the last try. Send a new code."
        } else {
            "That code is not right. Check the latest email and try again."
        };
        return step_page(&state, &req, &tenant, &tx, &signin, Some(msg.into()));
    }
    let email = signin.login.clone().unwrap_or_default();
    let proven = HomeIdentity {
        issuer: "mail".into(),
        subject: email.clone(),
        email: Some(email),
        email_verified: true,
        amr: vec!["otp".into()],
    };
    home_proven(&state, &req, &tenant, &tx, signin, proven, vec!["otp".into()])
}

pub async fn email_otp_resend(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, _, tx, mut signin) = posted(&req, &state, &path, &body, |s| matches!(s, Step::EmailOtp { .. }))?;
    let Step::EmailOtp { sends, last_sent, .. } = signin.step.clone() else {
        return Err(PageError::signin_expired());
    };
    let now = state.now();
    if sends >= OTP_MAX_SENDS || now - last_sent < OTP_RESEND_PAUSE_SECS {
        return step_page(
            &state,
            &req,
            &tenant,
            &tx,
            &signin,
            Some("A code was sent just now. Wait a little before asking for another.".into()),
        );
    }
    let code = mfa::new_email_otp();
    send_email_code(&state, &tenant, signin.login.as_deref().unwrap_or_default(), &code)?;
    signin.step = Step::EmailOtp {
        code_hash: mfa::hash_code(&code),
        expires_at: now + mfa::EMAIL_OTP_TTL_SECS,
        attempts: 0,
        sends: sends + 1,
        last_sent: now,
    };
    signin.expires_at = signin.expires_at.max(now + mfa::EMAIL_OTP_TTL_SECS + 60);
    state.store.put_signin(&digest(&tx), &signin)?;
    Ok(to_login_page(&tenant, &tx))
}

/// Redemption's last step: accept (one transaction: ticket consumed, guest Accepted,
/// invitation Completed) or decline (nothing changes).
pub async fn consent(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, signin) = posted(&req, &state, &path, &body, |s| matches!(s, Step::Consent { .. }))?;
    let (Step::Consent { identity, amr, idp }, Purpose::Redeem { ticket }) =
        (signin.step.clone(), signin.purpose.clone())
    else {
        return Err(PageError::signin_expired());
    };
    match f.get("decision") {
        Some("accept") => {}
        Some("decline") => {
            state.store.delete_signin(&digest(&tx))?;
            let page = MessagePage {
                id: "declined".into(),
                title: "Invitation declined".into(),
                message: format!("You declined the invitation from {}. Nothing was shared.", tenant.display_name),
                link: None,
            };
            return render(&page, vec![]);
        }
        _ => return Err(PageError::bad_request("invalid_request", "Choose Accept or Decline.")),
    }
    let user = signin_user(&state, &tenant, &signin)?;
    if !crate::licensing::can_take_seat(&state.store, &tenant, &user)? {
        return Err(crate::licensing::exhausted(&tenant));
    }
    let now = state.now();
    let user = match state.store.redeem(&ticket, &identity, now)? {
        Redeemed::Done(u) => *u,
        Redeemed::AlreadyRedeemed => return Err(super::redeem::ticket_error(super::redeem::TicketProblem::Redeemed)),
        Redeemed::Voided => return Err(super::redeem::ticket_error(super::redeem::TicketProblem::Voided)),
        Redeemed::Unknown => return Err(super::redeem::ticket_error(super::redeem::TicketProblem::Unknown)),
    };
    state.store.flush().await?;
    state.store.delete_signin(&digest(&tx))?;
    let invitation = match state.store.ticket(&ticket)? {
        Some(t) => state.store.invitation(&tenant.id, &t.invitation_id)?,
        None => None,
    };
    let acr = if amr.iter().any(|a| a == "mfa") { "2" } else { "1" };
    let auth = Authentication {
        user_id: user.id,
        auth_time: now,
        amr,
        acr: acr.into(),
        idp: Some(idp),
        epoch: user.session_epoch,
        device_id: None,
    };
    let previous = crate::oidc::authorize::current_session(&req, &state, &tenant)?;
    let (cookie, _) = open_session(&state, &tenant, auth)?;
    if let Some((old, _)) = previous {
        retire_session(&state, &tenant, &digest(&old))?;
    }
    let target = invitation.map(|i| i.invite_redirect_url).unwrap_or_else(|| "/".into());
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .cookie(session_cookie(&state, &tenant, cookie))
        .cookie(csrf::rotate(&state, &signin.browser)?)
        .finish())
}

/// Primary authentication is done (or an SSO session is reused, with `existing`):
/// conditional access decides between finishing, MFA, or a block.
pub fn after_primary(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    mut signin: SignIn,
    auth: Authentication,
    existing: Option<(String, crate::oidc::model::Session)>,
) -> Result<HttpResponse, PageError> {
    use super::access::{Gate, LogFacts, PORTAL_APP};
    let user = state.store.user(&tenant.id, &auth.user_id)?.ok_or_else(PageError::signin_expired)?;
    let app_id = signin.client_id().unwrap_or(PORTAL_APP).to_string();
    let ip = super::net::client_ip(req, &state.config.trusted_proxies);
    let (device, device_cookie) = super::access::device(req, state, tenant, &user)?;
    let age = existing.as_ref().map(|(_, s)| state.now() - s.auth.auth_time);
    let ctx = super::access::context(&user, &app_id, ip, Some(&device), &auth, age);
    let step_up = match &signin.purpose {
        // acr_values lists preferences; MFA is stepped up to when "2" is the first choice.
        Purpose::Authorize(r) => r.acr_values.first().is_some_and(|a| a == "2"),
        _ => false,
    };
    let facts = |amr: Vec<String>| LogFacts {
        tenant,
        user: Some(&user),
        app_id: &app_id,
        ip,
        device: Some(&device),
        idp: auth.idp.clone(),
        amr,
        interactive: true,
    };
    let no_prompt = match &signin.purpose {
        Purpose::Authorize(r) => r.prompt.iter().any(|p| p == "none"),
        _ => false,
    };
    let gate = super::access::gate(state, tenant, &user, &ctx, step_up)?;
    if no_prompt && !matches!(gate, Gate::Allow(_)) {
        // prompt=none: anything but a silent success goes back to the RP (OIDC Core §3.1.2.6).
        if let Purpose::Authorize(r) = &signin.purpose {
            let code = if matches!(gate, Gate::Block { .. }) {
                OAuthCode::AccessDenied
            } else {
                OAuthCode::InteractionRequired
            };
            return Ok(Reply::for_request(state, tenant, r).error(&OAuthError::new(code, "the sign-in needs the user")));
        }
    }
    let mut resp = match gate {
        Gate::Allow(decision) => {
            super::access::log(state, facts(auth.amr.clone()), Some(&decision), None);
            finish(state, tenant, tx, signin, auth, existing)?
        }
        Gate::Block { decision, code, policies } => {
            let reason = format!("blocked by conditional access: {}", policies.join(", "));
            super::access::log(state, facts(auth.amr.clone()), Some(&decision), Some((code, reason)));
            state.store.delete_signin(&digest(tx))?;
            // The error page still registers the device: the admin may mark it compliant.
            actix_web::ResponseError::error_response(&PageError::new(
                StatusCode::FORBIDDEN,
                code,
                format!(
                    "{} does not allow this sign-in from here (conditional access). If you think you should have access, ask its administrator; they can see why in the sign-in log.",
                    tenant.display_name
                ),
            ))
        }
        Gate::Reauthenticate(_) => {
            signin.step = Step::Identify;
            signin.login = Some(user.mail.clone());
            state.store.put_signin(&digest(tx), &signin)?;
            to_login_page(tenant, tx)
        }
        Gate::Mfa(decision) => {
            if !crate::licensing::can_take_seat(&state.store, tenant, &user)? {
                let reason = "no Premium licence left for MFA".to_string();
                super::access::log(
                    state,
                    facts(auth.amr.clone()),
                    Some(&decision),
                    Some(("license_exhausted", reason)),
                );
                state.store.delete_signin(&digest(tx))?;
                return Err(crate::licensing::exhausted(tenant));
            }
            // Entra logs the MFA interruption (50074) with the policies that asked for it.
            let why = super::access::mfa_reasons(&decision, &user, tenant, step_up);
            super::access::log(state, facts(auth.amr.clone()), Some(&decision), Some(("mfa_required", why)));
            signin.step = if user.totp_methods.is_empty() {
                let enrollment = mfa::new_enrollment(&tenant.display_name, &user.user_principal_name);
                Step::MfaEnroll { auth, secret_b32: enrollment.secret_b32 }
            } else {
                Step::MfaChallenge { auth }
            };
            signin.user_id = Some(user.id);
            state.store.put_signin(&digest(tx), &signin)?;
            to_login_page(tenant, tx)
        }
    };
    if let Some(c) = device_cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(resp)
}

/// Everything is satisfied: finish according to what the sign-in is for.
pub fn finish(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    signin: SignIn,
    auth: Authentication,
    existing: Option<(String, crate::oidc::model::Session)>,
) -> Result<HttpResponse, PageError> {
    state.store.delete_signin(&digest(tx))?;
    let browser = signin.browser;
    match signin.purpose {
        Purpose::Authorize(request) => issue_code(state, tenant, &request, auth, existing, &browser),
        Purpose::Portal { return_to, replaces_session } => {
            let (cookie, _) = open_session(state, tenant, auth)?;
            if let Some(old) = replaces_session {
                retire_session(state, tenant, &old)?;
            }
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, return_to))
                .cookie(session_cookie(state, tenant, cookie))
                .cookie(csrf::rotate(state, &browser)?)
                .finish())
        }
        Purpose::Redeem { .. } => Err(PageError::signin_expired()),
    }
}

/// The person gave up: back to the application with access_denied.
pub async fn cancel(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, _, tx, signin) = posted(&req, &state, &path, &body, |_| true)?;
    state.store.delete_signin(&digest(&tx))?;
    match &signin.purpose {
        Purpose::Authorize(request) => {
            let reply = Reply::for_request(&state, &tenant, request);
            Ok(reply.error(&OAuthError::new(OAuthCode::AccessDenied, "the user cancelled the sign-in")))
        }
        _ => Ok(see_other("/")),
    }
}

/// Starts a sign-in for gatehouse's own pages (e.g. the invite page).
pub fn start_portal(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
    return_to: &str,
) -> Result<HttpResponse, PageError> {
    let replaces_session = crate::oidc::authorize::current_session(req, state, tenant)?.map(|(c, _)| digest(&c));
    begin(req, state, tenant, Purpose::Portal { return_to: return_to.to_string(), replaces_session }, None)
}

/// Stores a new sign-in bound to this browser and sends the browser to its first page.
/// Anonymous requests open these, so they are bounded per browser (the oldest is evicted)
/// and on the instance (then 503 with a page saying so, and nothing is stored).
pub fn begin(
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
    };
    let limits = &state.config.signins;
    match state.store.open_signin(&digest(&tx), &signin, limits.per_browser, limits.total, now)? {
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
