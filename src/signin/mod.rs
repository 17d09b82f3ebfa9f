//! The sign-in pages and their state machine: identify → password (members) or the
//! home IdP / email code (guests) → consent (redemption) → done. Each handler loads the
//! transaction, checks it is at its step and bound to this browser, and advances it.
pub mod authorize;
pub mod device;
pub mod guest;
pub mod mfa;
pub mod redeem;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::federation;
use crate::model::{Acr, Amr, Authentication, Purpose, SignIn, Step};
use crate::model::{EMAIL_OTP_ISSUER, ExternalUserState, Tenant, User};
use crate::oidc::error::{OAuthCode, OAuthError};
use crate::oidc::session::{Reply, issue_code, open_session, retire_session, session_cookie};
use crate::secrets::{ct_eq, digest, new_token};
use crate::storage::Redeemed;
use crate::web::error::PageError;
use crate::web::pages::{
    AppConsentPage, ConsentPage, EmailOtpPage, IdentifyPage, MessagePage, PasswordPage, SignInContext, render,
};
use crate::web::params::Params;
use crate::web::{Data, csrf};

pub use crate::signin::guest::{begin_home, email_otp, email_otp_resend, federation_callback};

const WRONG_PASSWORD: &str =
    "Your account or password is incorrect. If you don't remember your password, ask your administrator to reset it.";
const LOCKED: &str =
    "Too many failed sign-in attempts. Your account is locked for a while to protect it; try again later.";
const THROTTLED: &str = "Too many sign-in attempts came from your network. Wait a few minutes, then try again.";
const BUSY: &str = "We are handling a great many sign-ins right now. Wait a few seconds, then try again.";
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
/// Seconds a shed password check asks the browser to wait.
const BUSY_RETRY_SECS: i64 = 5;

/// A page answered with 429 and `Retry-After`.
fn too_many(mut resp: HttpResponse, retry_after: i64) -> HttpResponse {
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
    tenant_id: &uuid::Uuid,
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
    Ok(SignInContext {
        tenant_name: tenant.display_name.clone(),
        tenant_slug: tenant.slug.clone(),
        app_name,
        tx: tx.to_string(),
        csrf: csrf::token(state, &browser),
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
        Step::Identify => render(&IdentifyPage { ctx, login, error }, vec![]),
        Step::Password => render(&PasswordPage { ctx, login, error }, vec![]),
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
        Step::AppConsent { .. } => {
            let Purpose::Authorize(request) = &signin.purpose else { return Err(PageError::signin_expired()) };
            let shares = request.scope.iter().map(|s| scope_words(s)).collect();
            render(&AppConsentPage { ctx, shares }, vec![])
        }
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

/// For members the same page and the same work follow for every login, so whether an
/// account exists is not revealed. Guests go to their home IdP (home realm discovery).
pub async fn identify(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
    homes: guest::Homes,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, mut signin) = posted(&req, &state, &path, &body, |s| *s == Step::Identify).await?;
    let login = f.get("login").map(str::trim).unwrap_or_default().to_string();
    if login.is_empty() || login.len() > 320 {
        return step_page(&state, &req, &tenant, &tx, &signin, Some("Enter your email address or username.".into()))
            .await;
    }
    let user = state.store.user_by_login(&tenant.id, &login).await?;
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
        let home =
            federation::home_of_issuer(&state, &tenant, &guest.identities[0].issuer).await?.ok_or_else(|| {
                PageError::bad_request(
                    "home_unavailable",
                    "Your home identity provider is no longer configured here. Ask the admin to reset your redemption.",
                )
            })?;
        return begin_home(&state, &homes, &tenant, &tx, signin, home).await;
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
    state.store.put_signin(&digest(&tx), &signin).await?;
    Ok(to_login_page(&tenant, &tx))
}

pub async fn password(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    use crate::access::PORTAL_APP;
    use crate::audit::{LogFacts, log_login_failure};
    use crate::ratelimit::Reserved;
    let (tenant, f, tx, signin) = posted(&req, &state, &path, &body, |s| *s == Step::Password).await?;
    let now = state.now();
    let login = signin.login.clone().unwrap_or_default().to_ascii_lowercase();
    // Keyed by the login as typed, known or not: an unknown name behaves like an account.
    let account_key = format!("acct:{}:{login}", tenant.id);
    let client_ip = crate::web::net::client_ip(&req, &state.config.trusted_proxies);
    let ip_key = format!("ip:{}", client_ip.map(|i| i.to_string()).unwrap_or_default());
    let user = match signin.user_id {
        Some(id) => state.store.user(&tenant.id, &id).await?,
        None => None,
    };
    let app_id = signin.client_id().unwrap_or(PORTAL_APP).to_string();
    let facts = || LogFacts {
        tenant: &tenant,
        user: user.as_ref(),
        app_id: &app_id,
        ip: client_ip,
        device: None,
        idp: None,
        amr: vec![Amr::Pwd],
        interactive: true,
    };
    // The attempt is counted before the hash is checked (and given back if it succeeds),
    // so however many arrive at once, at most the limit are ever checked.
    let before = match state.limiter.try_reserve(&account_key, now) {
        Reserved::Yes { before } => before,
        Reserved::No { .. } => {
            let reason = "too many wrong passwords: the account is locked for a while".to_string();
            // A locked account may be hammered: one entry per login and minute.
            if crate::audit::first_in_minute(&state, &format!("{}:pwd:{login}:account_locked", tenant.id)) {
                log_login_failure(&state, facts(), &login, "account_locked", reason).await;
            }
            return step_page(&state, &req, &tenant, &tx, &signin, Some(LOCKED.into())).await;
        }
    };
    // A spraying address is throttled only for logins that already have failures of their
    // own: an account with none always gets its password checked (smart lockout).
    if before > 0
        && let Some(wait) = state.ip_limiter.retry_after(&ip_key, now)
    {
        state.limiter.release(&account_key, now);
        if crate::audit::first_in_minute(&state, &format!("{}:pwd:{login}:ip_throttled", tenant.id)) {
            let reason = "too many wrong passwords from this IP address: throttled".to_string();
            log_login_failure(&state, facts(), &login, "ip_throttled", reason).await;
        }
        let page = step_page(&state, &req, &tenant, &tx, &signin, Some(THROTTLED.into())).await?;
        return Ok(too_many(page, wait));
    }
    let presented = f.get("password").unwrap_or_default().to_string();
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let Ok(ok) = state.passwords.verify(presented, stored, state.dummy_hash.clone()).await else {
        // Shed, not checked: it does not count against the account.
        state.limiter.release(&account_key, now);
        let page = step_page(&state, &req, &tenant, &tx, &signin, Some(BUSY.into())).await?;
        return Ok(too_many(page, BUSY_RETRY_SECS));
    };
    if !ok {
        state.ip_limiter.record_failure(&ip_key, now);
        log_login_failure(&state, facts(), &login, "wrong_password", "invalid username or password".into()).await;
        return step_page(&state, &req, &tenant, &tx, &signin, Some(WRONG_PASSWORD.into())).await;
    }
    let Some(user) = user else { return Err(PageError::signin_expired()) };
    state.limiter.clear(&account_key);
    if !user.account_enabled {
        return Err(PageError::bad_request("account_disabled", "Your account is disabled. Ask your administrator."));
    }
    let auth = Authentication {
        user_id: user.id,
        auth_time: now,
        amr: vec![Amr::Pwd],
        acr: Acr::SingleFactor,
        idp: None,
        epoch: user.session_epoch,
        device_id: None,
    };
    after_primary(&state, &req, &tenant, &tx, signin, auth, None).await
}

/// Redemption's last step: accept (one transaction: ticket consumed, guest Accepted,
/// invitation Completed) or decline (nothing changes).
pub async fn consent(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, signin) = posted(&req, &state, &path, &body, |s| matches!(s, Step::Consent { .. })).await?;
    let (Step::Consent { identity, amr, idp }, Purpose::Redeem { ticket }) =
        (signin.step.clone(), signin.purpose.clone())
    else {
        return Err(PageError::signin_expired());
    };
    match f.get("decision") {
        Some("accept") => {}
        Some("decline") => {
            state.store.delete_signin(&digest(&tx)).await?;
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
    let user = signin_user(&state, &tenant, &signin).await?;
    if !crate::licensing::can_take_seat(&state.store, &tenant, &user).await? {
        return Err(seat_exhausted(&tenant));
    }
    // Where the guest goes afterwards is settled before the ticket is spent: a redirect
    // that cannot be sent must leave the invitation redeemable.
    let invitation = match state.store.ticket(&ticket).await? {
        Some(t) => state.store.invitation(&tenant.id, &t.invitation_id).await?,
        None => None,
    };
    let target = match invitation {
        Some(i) => crate::directory::invite::redirect_url(&i.invite_redirect_url)
            .ok()
            .and_then(|u| header::HeaderValue::from_str(&u).ok())
            .ok_or_else(|| {
                tracing::warn!(invitation = %i.id, "stored inviteRedirectUrl cannot be sent as a redirect");
                PageError::bad_request(
                    "invite_redirect_invalid",
                    "This invitation's return address is not valid, so it was not accepted. Ask the person who invited you to send a new invitation.",
                )
            })?,
        None => header::HeaderValue::from_static("/"),
    };
    let now = state.now();
    let user = match state.store.redeem(&ticket, &identity, now, tenant.premium_seats).await? {
        Redeemed::Done(u) => *u,
        // The last seat went to a concurrent redemption since the check above.
        Redeemed::NoSeat => return Err(seat_exhausted(&tenant)),
        Redeemed::AlreadyRedeemed => {
            return Err(crate::signin::redeem::ticket_error(crate::signin::redeem::TicketProblem::Redeemed));
        }
        Redeemed::Voided => {
            return Err(crate::signin::redeem::ticket_error(crate::signin::redeem::TicketProblem::Voided));
        }
        Redeemed::Unknown => {
            return Err(crate::signin::redeem::ticket_error(crate::signin::redeem::TicketProblem::Unknown));
        }
    };
    state.store.flush().await?;
    state.store.delete_signin(&digest(&tx)).await?;
    let acr = Acr::of(&amr);
    let auth = Authentication {
        user_id: user.id,
        auth_time: now,
        amr,
        acr,
        idp: Some(idp),
        epoch: user.session_epoch,
        device_id: None,
    };
    let previous = crate::web::cookie_value(&req, crate::oidc::session::SSO_COOKIE);
    let (cookie, _) = open_session(&state, &tenant, auth).await?;
    if let Some(old) = previous {
        retire_session(&state, &tenant, &digest(&old)).await?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .cookie(session_cookie(&state, &tenant, cookie))
        .cookie(csrf::rotate(&state, &signin.browser).await?)
        .finish())
}

/// Primary authentication is done (or an SSO session is reused, with `existing`):
/// conditional access decides between finishing, MFA, or a block.
pub async fn after_primary(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    mut signin: SignIn,
    mut auth: Authentication,
    existing: Option<(String, crate::model::Session)>,
) -> Result<HttpResponse, PageError> {
    use crate::access::{Gate, PORTAL_APP};
    use crate::audit::LogFacts;
    if let Some((cookie, _)) = &existing {
        // One session may be reused at most SSO_REUSES_PER_MINUTE times a minute: a script
        // replaying a cookie can neither flood the log nor the store.
        let key = format!("sso:{}", crate::secrets::digest_hex(cookie));
        if let crate::ratelimit::Reserved::No { retry_after } = state.sso_limiter.try_reserve(&key, state.now()) {
            return Ok(too_many_page(
                "sso_rate_limited",
                "This browser opened applications too often in a short time. Wait a minute, then try again.",
                retry_after,
            ));
        }
    }
    let user = state.store.user(&tenant.id, &auth.user_id).await?;
    // The credential gate: the user may have been disabled or reset while signing in.
    if let Err(refusal) =
        crate::access::credential::check(user.as_ref(), &crate::access::credential::Presented::of(&auth, None))
    {
        state.store.delete_signin(&digest(tx)).await?;
        return Err(match refusal {
            crate::access::credential::Refusal::Disabled => {
                PageError::bad_request("account_disabled", "Your account is disabled. Ask your administrator.")
            }
            _ => PageError::signin_expired(),
        });
    }
    let user = user.ok_or_else(PageError::signin_expired)?;
    let app_id = signin.client_id().unwrap_or(PORTAL_APP).to_string();
    // SSO reuse is logged once a minute per app, user and result (like token sign-ins).
    let sso_key = existing.as_ref().map(|_| format!("sso:{app_id}:{}", user.id));
    let log = async |facts: LogFacts<'_>, decision: Option<&crate::policy::Decision>, error: Option<(&str, String)>| {
        match &sso_key {
            Some(key) => crate::audit::log_aggregated(state, key, facts, decision, error).await,
            None => crate::audit::log(state, facts, decision, error).await,
        }
    };
    let ip = crate::web::net::client_ip(req, &state.config.trusted_proxies);
    let (device, device_cookie) = device::device(req, state, tenant, &user).await?;
    // Refreshes re-check conditional access against this device's state at the time.
    auth.device_id = Some(device.id.clone());
    let age = existing.as_ref().map(|(_, s)| state.now() - s.auth.auth_time);
    let ctx = crate::access::context(&user, &app_id, ip, Some(&device), &auth, age);
    let step_up = match &signin.purpose {
        // acr_values is a preference list: the first value gatehouse supports (all it kept) is the aim.
        Purpose::Authorize(r) => r.acr_values.first() == Some(&Acr::MultiFactor),
        _ => false,
    };
    let facts = |amr: Vec<Amr>| LogFacts {
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
    let gate = crate::access::gate(state, tenant, &user, &ctx, step_up).await?;
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
            log(facts(auth.amr.clone()), Some(&decision), None).await;
            finish(state, tenant, tx, signin, auth, existing).await?
        }
        Gate::Block { decision, code, policies } => {
            let reason = format!("blocked by conditional access: {}", policies.join(", "));
            log(facts(auth.amr.clone()), Some(&decision), Some((code, reason))).await;
            state.store.delete_signin(&digest(tx)).await?;
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
            state.store.put_signin(&digest(tx), &signin).await?;
            to_login_page(tenant, tx)
        }
        Gate::Mfa(decision) => {
            if !crate::licensing::can_take_seat(&state.store, tenant, &user).await? {
                let reason = "no Premium licence left for MFA".to_string();
                log(facts(auth.amr.clone()), Some(&decision), Some(("license_exhausted", reason))).await;
                state.store.delete_signin(&digest(tx)).await?;
                return Err(seat_exhausted(tenant));
            }
            // Entra logs the MFA interruption (50074) with the policies that asked for it.
            let why = crate::access::mfa_reasons(&decision, &user, tenant, step_up);
            log(facts(auth.amr.clone()), Some(&decision), Some(("mfa_required", why))).await;
            signin.step = if user.totp_methods.is_empty() {
                let enrollment = crate::mfa::new_enrollment(&tenant.display_name, &user.user_principal_name);
                Step::MfaEnroll { auth, secret_b32: state.seal.seal(&enrollment.secret_b32) }
            } else {
                Step::MfaChallenge { auth }
            };
            signin.user_id = Some(user.id);
            state.store.put_signin(&digest(tx), &signin).await?;
            to_login_page(tenant, tx)
        }
    };
    if let Some(c) = device_cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(resp)
}

/// Everything is satisfied: finish according to what the sign-in is for.
pub async fn finish(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    signin: SignIn,
    auth: Authentication,
    existing: Option<(String, crate::model::Session)>,
) -> Result<HttpResponse, PageError> {
    if let Purpose::Authorize(request) = &signin.purpose
        && needs_consent(state, tenant, request, &auth).await?
    {
        if request.prompt.iter().any(|p| p == "none") {
            state.store.delete_signin(&digest(tx)).await?;
            let error = OAuthError::new(OAuthCode::ConsentRequired, "the application needs the user's consent");
            return Ok(Reply::for_request(state, tenant, request).error(&error));
        }
        let mut signin = signin;
        signin.step = Step::AppConsent { auth };
        state.store.put_signin(&digest(tx), &signin).await?;
        return Ok(to_login_page(tenant, tx));
    }
    state.store.delete_signin(&digest(tx)).await?;
    let browser = signin.browser;
    match signin.purpose {
        Purpose::Authorize(request) => issue_code(state, tenant, &request, auth, existing, &browser).await,
        Purpose::Portal { return_to, replaces_session } => {
            let (cookie, _) = open_session(state, tenant, auth).await?;
            if let Some(old) = replaces_session {
                retire_session(state, tenant, &old).await?;
            }
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, return_to))
                .cookie(session_cookie(state, tenant, cookie))
                .cookie(csrf::rotate(state, &browser).await?)
                .finish())
        }
        Purpose::Redeem { .. } => Err(PageError::signin_expired()),
    }
}

/// OIDC Core §11: the user is asked what an application may have when it asks with
/// `prompt=consent`, or when it is not first-party by configuration and asks for more than the
/// user consented to before.
async fn needs_consent(
    state: &AppState,
    tenant: &Tenant,
    request: &crate::model::AuthRequest,
    auth: &Authentication,
) -> Result<bool, PageError> {
    if request.prompt.iter().any(|p| p == "consent") {
        return Ok(true);
    }
    let first_party = state.store.app(&tenant.id, &request.client_id).await?.is_some_and(|a| a.first_party);
    if first_party {
        return Ok(false);
    }
    let given = state.store.consent(&tenant.id, &auth.user_id, &request.client_id).await?;
    Ok(!request.scope.iter().all(|s| given.as_ref().is_some_and(|c| c.scopes.contains(s))))
}

/// The consent page's answer: accept records what was shared and finishes the sign-in;
/// decline goes back to the application with `access_denied` and records nothing.
pub async fn app_consent(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, signin) = posted(&req, &state, &path, &body, |s| matches!(s, Step::AppConsent { .. })).await?;
    let (Step::AppConsent { auth }, Purpose::Authorize(request)) = (signin.step.clone(), signin.purpose.clone()) else {
        return Err(PageError::signin_expired());
    };
    match f.get("decision") {
        Some("accept") => {}
        Some("decline") => {
            state.store.delete_signin(&digest(&tx)).await?;
            let error = OAuthError::new(OAuthCode::AccessDenied, "the user did not consent");
            return Ok(Reply::for_request(&state, &tenant, &request).error(&error));
        }
        _ => return Err(PageError::bad_request("invalid_request", "Choose Accept or Decline.")),
    }
    let mut scopes =
        state.store.consent(&tenant.id, &auth.user_id, &request.client_id).await?.map(|c| c.scopes).unwrap_or_default();
    for s in &request.scope {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    let consent = crate::model::Consent { scopes, granted_at: state.now() };
    state.store.put_consent(&tenant.id, &auth.user_id, &request.client_id, &consent).await?;
    state.store.flush().await?;
    state.store.delete_signin(&digest(&tx)).await?;
    // The browser's SSO session, when it is the one this sign-in reused, stays as it is.
    let existing = crate::oidc::session::current_session(&req, &state, &tenant)
        .await?
        .filter(|(_, s)| s.auth.user_id == auth.user_id && s.auth.auth_time == auth.auth_time);
    issue_code(&state, &tenant, &request, auth, existing, &signin.browser).await
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

/// Starts a sign-in for gatehouse's own pages (e.g. the invite page).
pub async fn start_portal(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
    return_to: &str,
) -> Result<HttpResponse, PageError> {
    // Whatever session this browser holds at the tenant (good or not) is retired by the sign-in.
    let replaces_session = crate::web::cookie_value(req, crate::oidc::session::SSO_COOKIE).map(|c| digest(&c));
    begin(req, state, tenant, Purpose::Portal { return_to: return_to.to_string(), replaces_session }, None).await
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

/// The signed-in user of gatehouse's own pages (admin console, invite page): their SSO
/// session passes the credential gate (in `current_session`) and conditional access for
/// the portal, like entering any app through SSO. Otherwise the answer is the sign-in
/// (none yet), the MFA step-up or the block page, through the same sign-in machinery.
pub async fn portal_user(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
    return_to: &str,
) -> Result<Result<User, HttpResponse>, PageError> {
    use crate::access::{Gate, PORTAL_APP};
    let Some((cookie, session)) = crate::oidc::session::current_session(req, state, tenant).await? else {
        return Ok(Err(start_portal(req, state, tenant, return_to).await?));
    };
    let user = state.store.user(&tenant.id, &session.auth.user_id).await?.ok_or_else(PageError::signin_expired)?;
    let ip = crate::web::net::client_ip(req, &state.config.trusted_proxies);
    let device = device::known_device(req, state, tenant, &user).await?;
    let age = state.now() - session.auth.auth_time;
    let ctx = crate::access::context(&user, PORTAL_APP, ip, device.as_ref(), &session.auth, Some(age));
    if let Gate::Allow(_) = crate::access::gate(state, tenant, &user, &ctx, false).await? {
        return Ok(Ok(user));
    }
    let (browser, new_cookie) = csrf::browser(req, state);
    let signin = SignIn {
        tenant_id: tenant.id,
        browser: digest(&browser),
        purpose: Purpose::Portal { return_to: return_to.to_string(), replaces_session: Some(digest(&cookie)) },
        step: Step::Identify,
        login: Some(user.mail.clone()),
        user_id: Some(user.id),
        expires_at: state.now() + state.config.tokens.signin_secs,
    };
    let auth = session.auth.clone();
    let mut resp = after_primary(state, req, tenant, &new_token(), signin, auth, Some((cookie, session))).await?;
    if let Some(c) = new_cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(Err(resp))
}

/// The page when a tenant has no Premium seat left for this user.
fn seat_exhausted(tenant: &Tenant) -> PageError {
    PageError::new(
        actix_web::http::StatusCode::FORBIDDEN,
        "license_exhausted",
        format!("{} has no Premium licence left for you. Ask its admin to add licences.", tenant.display_name),
    )
}
