//! The member's half of a sign-in: identify (home realm discovery sends guests on to
//! their home IdP) and the password, with lockout, per-IP throttling and load shedding.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::federation;
use crate::model::{Acr, Amr, Authentication, ExternalUserState, Step};
use crate::secrets::digest;
use crate::signin::flow::after_primary;
use crate::signin::guest::{self, begin_home};
use crate::signin::{posted, step_page, to_login_page, too_many};
use crate::web::Data;
use crate::web::error::PageError;

const WRONG_PASSWORD: &str =
    "Your account or password is incorrect. If you don't remember your password, ask your administrator to reset it.";
const LOCKED: &str =
    "Too many failed sign-in attempts. Your account is locked for a while to protect it; try again later.";
const THROTTLED: &str = "Too many sign-in attempts came from your network. Wait a few minutes, then try again.";
const BUSY: &str = "We are handling a great many sign-ins right now. Wait a few seconds, then try again.";
/// Seconds a shed password check asks the browser to wait.
const BUSY_RETRY_SECS: i64 = 5;

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
    use crate::storage::Reserved;
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
    let before = match state.limiter.try_reserve(&account_key, now).await? {
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
        && let Some(wait) = state.ip_limiter.retry_after(&ip_key, now).await?
    {
        state.limiter.release(&account_key, now).await?;
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
        state.limiter.release(&account_key, now).await?;
        let page = step_page(&state, &req, &tenant, &tx, &signin, Some(BUSY.into())).await?;
        return Ok(too_many(page, BUSY_RETRY_SECS));
    };
    if !ok {
        if before + 1 >= state.config.rate_limit.password_failures as usize {
            crate::telemetry::lockout(&tenant.slug, "password", user.as_ref().map(|u| &u.id));
        }
        state.ip_limiter.record_failure(&ip_key, now).await?;
        log_login_failure(&state, facts(), &login, "wrong_password", "invalid username or password".into()).await;
        return step_page(&state, &req, &tenant, &tx, &signin, Some(WRONG_PASSWORD.into())).await;
    }
    let Some(user) = user else { return Err(PageError::signin_expired()) };
    state.limiter.clear(&account_key).await?;
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
        home: None,
        mfa_time: None,
    };
    if user.force_change_password {
        return crate::signin::change_password::start(&state, &tenant, &tx, signin, auth).await;
    }
    after_primary(&state, &req, &tenant, &tx, signin, auth, None).await
}
