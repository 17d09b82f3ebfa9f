//! The guest's half of a sign-in: home realm discovery sends the guest to their home IdP
//! (federation, RFC 9207 `iss` and freshness checked on the way back) or mails a one-time
//! code; a proven home identity goes on to consent (redemption) or conditional access.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::federation::{self, HomeIdentity};

/// The home IdPs' metadata cache, registered beside the shared state.
pub type Homes = actix_web::web::Data<federation::MetadataCache>;
use crate::mfa;
use crate::model::FedState;
use crate::model::{Acr, Amr, Authentication, Home, Purpose, SignIn, Step};
use crate::model::{EMAIL_OTP_ISSUER, Identity, Tenant};
use crate::secrets::{ct_eq, digest};
use crate::signin::flow::after_primary;
use crate::signin::{
    OTP_MAX_SENDS, OTP_RESEND_PAUSE_SECS, load, posted, signin_user, step_page, to_login_page, too_many_page,
};
use crate::web::Data;
use crate::web::error::PageError;

/// Sends the guest to their home IdP, or emails a one-time code.
pub async fn begin_home(
    state: &AppState,
    homes: &federation::MetadataCache,
    tenant: &Tenant,
    tx: &str,
    mut signin: SignIn,
    home: Home,
) -> Result<HttpResponse, PageError> {
    let email = signin.login.clone().unwrap_or_default();
    if home == Home::EmailOtp {
        // Nothing is mailed yet: identifying as someone must not spend their codes. The
        // page offers "Send code"; only that post sends one (email_otp_send).
        signin.step = Step::EmailOtp { code_hash: String::new(), expires_at: 0, attempts: 0, sends: 0, last_sent: 0 };
        state.store.put_signin(&digest(tx), &signin).await?;
        return Ok(to_login_page(tenant, tx));
    }
    let fresh = home_freshness(state, tenant, &signin).await?;
    let started = federation::start(state, homes, tenant, &home, &email, fresh).await.map_err(|e| {
        tracing::warn!(error = %e, "home IdP unreachable");
        PageError::new(
            StatusCode::BAD_GATEWAY,
            "home_unreachable",
            "We could not reach your home identity provider. Try again later.",
        )
    })?;
    let now = state.now();
    signin.step = Step::Federating {
        home,
        state: started.state.clone(),
        nonce: started.nonce,
        verifier: started.verifier,
        issuer: started.issuer.clone(),
        iss_required: started.iss_required,
        started_at: now,
        prompt_login: fresh.prompt_login,
        max_age: fresh.max_age,
    };
    state.store.put_signin(&digest(tx), &signin).await?;
    let record = FedState { tx: tx.to_string(), issuer: started.issuer, expires_at: signin.expires_at };
    state.store.put_fed_state(&started.state, &record).await?;
    Ok(HttpResponse::Found().insert_header((header::LOCATION, started.url)).finish())
}

/// What the home must prove about freshness: the RP's `prompt=login` and `max_age`, and the
/// shortest sign-in frequency of the enforced policies for this guest and app (a guest's
/// authentication is the home's, so its age is the home's).
async fn home_freshness(
    state: &AppState,
    tenant: &Tenant,
    signin: &SignIn,
) -> Result<federation::Freshness, PageError> {
    let (app_id, prompt_login, mut max_age) = match &signin.purpose {
        Purpose::Authorize(r) => (r.client_id.as_str(), r.prompt.iter().any(|p| p == "login"), r.max_age),
        Purpose::Portal { .. } => (crate::access::PORTAL_APP, false, None),
        // Redemption proves the identity once; no application's policies apply yet.
        Purpose::Redeem { .. } => return Ok(federation::Freshness::default()),
    };
    let user = match signin.user_id {
        Some(id) => state.store.user(&tenant.id, &id).await?,
        None => None,
    };
    if let Some(user) = user {
        // IP and device are not known here: conditions on them are judged without them.
        let probe = Authentication {
            user_id: user.id,
            auth_time: 0,
            amr: vec![],
            acr: Acr::SingleFactor,
            idp: None,
            epoch: user.session_epoch,
            device_id: None,
            home: None,
            mfa_time: None,
        };
        let ctx = crate::access::context(&user, app_id, None, None, &probe, None);
        let policies = state.store.policies(&tenant.id).await?;
        let decision = crate::policy::evaluate(
            &ctx,
            &policies,
            &state.store.named_locations(&tenant.id).await?,
            &tenant.authentication_strengths,
        );
        let frequencies = decision
            .results
            .iter()
            .filter(|r| r.enforced_session_controls.iter().any(|c| c == "signInFrequency"))
            .filter_map(|r| policies.iter().find(|p| p.id == r.id))
            .filter(|p| p.state == crate::policy::PolicyState::Enabled)
            .filter_map(|p| p.session_controls.as_ref()?.sign_in_frequency.as_ref().filter(|f| f.is_enabled))
            .map(|f| f.max_age_secs());
        max_age = max_age.into_iter().chain(frequencies).min();
    }
    Ok(federation::Freshness { prompt_login, max_age })
}

/// Mails `code`, within two quotas per hour: per address and client IP (one requester,
/// `OTP_SENDS_PER_IP`) and per address from anywhere (`OTP_SENDS_PER_ADDRESS`, larger).
/// `Ok(Some(seconds))`: a quota is used up, nothing was sent.
async fn send_email_code(
    state: &AppState,
    tenant: &Tenant,
    email: &str,
    code: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<Option<i64>, PageError> {
    use crate::storage::Reserved;
    let address = email.to_ascii_lowercase();
    let ip_key = format!("otp:{address}:{}", ip.map(|i| i.to_string()).unwrap_or_default());
    let address_key = format!("otp:{address}");
    let now = state.now();
    if let Reserved::No { retry_after } = state.otp_send_limiter.try_reserve(&ip_key, now).await? {
        return Ok(Some(retry_after));
    }
    if let Reserved::No { retry_after } = state.otp_address_limiter.try_reserve(&address_key, now).await? {
        state.otp_send_limiter.release(&ip_key, now).await?;
        return Ok(Some(retry_after));
    }
    crate::mail::send(state, crate::mail::compose::one_time_code(tenant, email, code))
        .await
        .map_err(PageError::internal)?;
    Ok(None)
}

/// `/federation/callback`: the home IdP answers; the sign-in that sent the guest continues.
/// Everything about the answer is checked (binding, step, `iss`) before its state is spent
/// or its code is sent anywhere.
pub async fn federation_callback(req: HttpRequest, state: Data, homes: Homes) -> Result<HttpResponse, PageError> {
    let query = crate::web::form::query(&req)?;
    let st = query.get("state").ok_or_else(PageError::signin_expired)?;
    let bound = state
        .store
        .fed_state(st)
        .await?
        .filter(|f| f.expires_at > state.now())
        .ok_or_else(PageError::signin_expired)?;
    let pending = state.store.signin(&digest(&bound.tx)).await?.ok_or_else(PageError::signin_expired)?;
    let tenant = state.store.tenant(&pending.tenant_id).await?.ok_or_else(PageError::signin_expired)?;
    let (tx, signin) = load(&req, &state, &tenant.id, Some(&bound.tx)).await?;
    let Step::Federating {
        home,
        state: expected,
        nonce,
        verifier,
        issuer,
        iss_required,
        started_at,
        prompt_login,
        max_age,
    } = signin.step.clone()
    else {
        return Err(PageError::signin_expired());
    };
    if !ct_eq(expected.as_bytes(), st.as_bytes()) || issuer != bound.issuer {
        return Err(PageError::signin_expired());
    }
    // RFC 9207: an answer naming another issuer (or none, where the home promises one) may be
    // a mix-up; its code must not reach this home's token endpoint.
    if !federation::iss_acceptable(query.get("iss"), &issuer, iss_required) {
        tracing::warn!(expected = %issuer, presented = ?query.get("iss"), "home answer with a wrong or missing iss");
        return Err(PageError::bad_request(
            "home_issuer_mismatch",
            "The answer did not come from your home identity provider. Go back to the application and start again.",
        ));
    }
    if state.store.take_fed_state(st).await?.is_none() {
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
    let (proven, auth_time) =
        federation::finish(&state, &homes, &tenant, &home, code, &nonce, &verifier).await.map_err(|e| {
            tracing::warn!(error = %e, "home sign-in failed");
            PageError::bad_request(
                "home_signin_failed",
                "Your home identity provider's answer could not be verified. Try again.",
            )
        })?;
    let now = state.now();
    let fresh = federation::Freshness { prompt_login, max_age };
    if !federation::auth_time_acceptable(auth_time, started_at, now, fresh) {
        tracing::warn!(?auth_time, ?fresh, "the home did not authenticate as freshly as asked");
        return Err(PageError::bad_request(
            "home_signin_not_fresh",
            "Your home identity provider did not sign you in again as this application requires. Try again.",
        ));
    }
    let auth_time = auth_time.map_or(now, |t| t.min(now));
    home_proven_at(&state, &req, &tenant, &tx, signin, proven, vec![Amr::Fed], auth_time).await
}

/// The home identity is proven just now (email code): redemption goes on to consent, a sign-in completes.
async fn home_proven(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    signin: SignIn,
    proven: HomeIdentity,
    amr: Vec<Amr>,
) -> Result<HttpResponse, PageError> {
    home_proven_at(state, req, tenant, tx, signin, proven, amr, state.now()).await
}

/// The home identity is proven, by an authentication at `auth_time` (the home's).
#[allow(clippy::too_many_arguments)]
async fn home_proven_at(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    mut signin: SignIn,
    proven: HomeIdentity,
    mut amr: Vec<Amr>,
    auth_time: i64,
) -> Result<HttpResponse, PageError> {
    let user = signin_user(state, tenant, &signin).await?;
    let home = sibling_home(state, &proven).await?;
    // Home MFA counts only where this tenant's inbound trust accepts that partner's MFA.
    let mut acr = Acr::SingleFactor;
    let trust = home.as_ref().map(|(t, _)| tenant.cross_tenant.trust_for(t.id.0)).unwrap_or_default();
    if proven.amr.contains(&Amr::Mfa) && trust.is_mfa_accepted {
        amr.push(Amr::Mfa);
        acr = Acr::MultiFactor;
    }
    let home = home.map(|(_, h)| h);
    let identity = Identity {
        sign_in_type: if proven.issuer == EMAIL_OTP_ISSUER { "emailAddress".into() } else { "federated".into() },
        issuer: proven.issuer.clone(),
        issuer_assigned_id: proven.subject.clone(),
    };
    match &signin.purpose {
        Purpose::Redeem { .. } => {
            let email = proven.email.clone().unwrap_or_default();
            if !proven.email_verified || !email.eq_ignore_ascii_case(&user.mail) {
                return Err(wrong_account(&email, &user.mail));
            }
            if let Some(h) = &home {
                refuse_if_blocked(state, req, tenant, tx, &user, h, &amr, &proven.issuer).await?;
            }
            signin.step = Step::Consent { identity, amr, idp: proven.issuer, home };
            state.store.put_signin(&digest(tx), &signin).await?;
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
                auth_time,
                amr,
                acr,
                idp: Some(proven.issuer),
                epoch: user.session_epoch,
                device_id: None,
                home,
                mfa_time: None,
            };
            after_primary(state, req, tenant, tx, signin, auth, None).await
        }
    }
}

/// The home tenant on this instance behind the proven issuer, with what its ID token said
/// (`tid`, `oid`, `xms_dev`), when the token's `tid` is that tenant. Any other home: `None`.
async fn sibling_home(
    state: &AppState,
    proven: &HomeIdentity,
) -> Result<Option<(Tenant, crate::model::HomeSignIn)>, PageError> {
    let Some(claimed) = &proven.sibling else { return Ok(None) };
    let issuer = &proven.issuer;
    let Some(slug) = issuer.strip_prefix(&format!("{}/", state.public_url)).and_then(|r| r.strip_suffix("/v2.0"))
    else {
        return Ok(None);
    };
    let Some(home) = state.store.tenant_by_slug(slug).await? else { return Ok(None) };
    Ok((home.id == claimed.tenant_id).then(|| (home, claimed.clone())))
}

/// Redemption: the cross-tenant access settings of both tenants must allow the guest before
/// the invitation is accepted; a refusal ends the sign-in, is logged, and changes nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn refuse_if_blocked(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    user: &crate::model::User,
    home: &crate::model::HomeSignIn,
    amr: &[Amr],
    idp: &str,
) -> Result<(), PageError> {
    let Some(blocked) = crate::access::cross_tenant::check(state, tenant, home, None).await? else {
        return Ok(());
    };
    let facts = crate::audit::LogFacts {
        tenant,
        user: Some(user),
        app_id: crate::access::PORTAL_APP,
        ip: crate::web::net::client_ip(req, &state.config.trusted_proxies),
        device: None,
        idp: Some(idp.to_string()),
        amr: amr.to_vec(),
        interactive: true,
    };
    crate::audit::log(state, facts, None, Some(("cross_tenant_blocked", blocked.reason()))).await;
    state.store.delete_signin(&digest(tx)).await?;
    Err(cross_tenant_blocked(&blocked))
}

/// The page for a collaboration the cross-tenant access settings refuse (`cross_tenant_blocked`).
pub(crate) fn cross_tenant_blocked(blocked: &crate::access::cross_tenant::Blocked) -> PageError {
    PageError::new(StatusCode::FORBIDDEN, "cross_tenant_blocked", blocked.message())
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

/// What one posted email code did to the sign-in (decided in one compare-and-swap).
enum OtpAnswer {
    NotSent,
    Expired,
    Exhausted,
    Wrong { last: bool },
    Right,
}

pub async fn email_otp(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, _) = posted(&req, &state, &path, &body, |s| matches!(s, Step::EmailOtp { .. })).await?;
    let now = state.now();
    let presented = f.get("code").unwrap_or_default().to_string();
    // Checked and counted in one compare-and-swap of the sign-in: N concurrent wrong codes
    // count N, at most the limit are compared, and a right code is spent by one winner.
    let updated = crate::storage::modify_signin(&state.store, &digest(&tx), |s| {
        let Step::EmailOtp { code_hash, expires_at, attempts, sends, .. } = &mut s.step else { return None };
        Some(if *sends == 0 {
            OtpAnswer::NotSent
        } else if *expires_at <= now {
            OtpAnswer::Expired
        } else if *attempts >= mfa::EMAIL_OTP_MAX_ATTEMPTS {
            OtpAnswer::Exhausted
        } else if mfa::code_matches(&presented, code_hash) {
            code_hash.clear();
            *attempts = mfa::EMAIL_OTP_MAX_ATTEMPTS;
            OtpAnswer::Right
        } else {
            *attempts += 1;
            OtpAnswer::Wrong { last: *attempts >= mfa::EMAIL_OTP_MAX_ATTEMPTS }
        })
    })
    .await?;
    let Some((signin, Some(answer))) = updated else { return Err(PageError::signin_expired()) };
    let msg = match answer {
        OtpAnswer::Right => {
            let email = signin.login.clone().unwrap_or_default();
            let proven = HomeIdentity {
                issuer: EMAIL_OTP_ISSUER.into(),
                subject: email.clone(),
                email: Some(email),
                email_verified: true,
                amr: vec![Amr::Otp],
                sibling: None,
            };
            return home_proven(&state, &req, &tenant, &tx, signin, proven, vec![Amr::Otp]).await;
        }
        OtpAnswer::NotSent => "No code was sent yet. Send a code first.",
        OtpAnswer::Expired => "This code has expired. Send a new code.",
        OtpAnswer::Exhausted => "Too many wrong codes. Send a new code.",
        OtpAnswer::Wrong { last: true } => "That code is not right, and that was the last try. Send a new code.",
        OtpAnswer::Wrong { last: false } => "That code is not right. Check the latest email and try again.",
    };
    step_page(&state, &req, &tenant, &tx, &signin, Some(msg.into())).await
}

/// "Send code" (the first) and "Send a new code": paced per sign-in, and within the
/// per-address quotas of `send_email_code`.
pub async fn email_otp_resend(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, _, tx, signin) = posted(&req, &state, &path, &body, |s| matches!(s, Step::EmailOtp { .. })).await?;
    let Step::EmailOtp { sends, last_sent, .. } = signin.step.clone() else {
        return Err(PageError::signin_expired());
    };
    let now = state.now();
    if sends >= OTP_MAX_SENDS || (sends > 0 && now - last_sent < OTP_RESEND_PAUSE_SECS) {
        let msg = if sends >= OTP_MAX_SENDS {
            "We have sent as many codes as we can for this sign-in. Go back to the application and start again."
        } else {
            "A code was sent just now. Wait a little before asking for another."
        };
        return step_page(&state, &req, &tenant, &tx, &signin, Some(msg.into())).await;
    }
    let code = mfa::new_email_otp();
    // Claimed in one compare-and-swap: two concurrent sends on one sign-in mail one code.
    let claimed = crate::storage::modify_signin(&state.store, &digest(&tx), |s| match &mut s.step {
        Step::EmailOtp { code_hash, expires_at, attempts, sends: n, last_sent: at } if *n == sends => {
            *code_hash = mfa::hash_code(&code);
            *expires_at = now + mfa::EMAIL_OTP_TTL_SECS;
            *attempts = 0;
            *n += 1;
            *at = now;
            // The code lives 30 minutes; the sign-in must outlive it.
            s.expires_at = s.expires_at.max(now + mfa::EMAIL_OTP_TTL_SECS + 60);
            true
        }
        _ => false,
    })
    .await?;
    match claimed {
        Some((_, true)) => {}
        Some((current, false)) => {
            let msg = "A code was sent just now. Wait a little before asking for another.";
            return step_page(&state, &req, &tenant, &tx, &current, Some(msg.into())).await;
        }
        None => return Err(PageError::signin_expired()),
    }
    let ip = crate::web::net::client_ip(&req, &state.config.trusted_proxies);
    let sent = send_email_code(&state, &tenant, signin.login.as_deref().unwrap_or_default(), &code, ip).await;
    if !matches!(sent, Ok(None)) {
        // Nothing was mailed: the sign-in goes back to what it was.
        state.store.put_signin(&digest(&tx), &signin).await?;
    }
    if let Some(wait) = sent? {
        return Ok(too_many_page(
            "otp_rate_limited",
            "Too many codes were sent to this address recently. Wait an hour and try again.",
            wait,
        ));
    }
    Ok(to_login_page(&tenant, &tx))
}
