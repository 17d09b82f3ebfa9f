//! After primary authentication: conditional access decides (finish, MFA, block), the
//! application consent, and the finish by purpose (code to the RP or a portal session).
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::model::{Acr, Amr, Authentication, Purpose, SignIn, Step, Tenant, User};
use crate::oidc::error::{OAuthCode, OAuthError};
use crate::oidc::session::{Reply, issue_code, open_session, retire_session, session_cookie};
use crate::secrets::{digest, new_token};
use crate::signin::{begin, device, posted, seat_exhausted, to_login_page, too_many_page};
use crate::web::error::PageError;
use crate::web::{Data, csrf};

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
        if let crate::storage::Reserved::No { retry_after } = state.sso_limiter.try_reserve(&key, state.now()).await? {
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
    crate::access::assignment::require(state, tenant, &user, &app_id, tx).await?;
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
    let ctx = crate::access::cross_tenant::vouch(tenant, &auth, ctx);
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
    // A guest from a sibling tenant: both tenants' cross-tenant access settings must allow it.
    if let Some(home) = &auth.home
        && let Some(blocked) = crate::access::cross_tenant::check(state, tenant, home, Some(&app_id)).await?
    {
        log(facts(auth.amr.clone()), None, Some(("cross_tenant_blocked", blocked.reason()))).await;
        state.store.delete_signin(&digest(tx)).await?;
        if let (true, Purpose::Authorize(r)) = (no_prompt, &signin.purpose) {
            let denied = OAuthError::new(OAuthCode::AccessDenied, "cross-tenant access settings block this sign-in");
            return Ok(Reply::for_request(state, tenant, r).error(&denied));
        }
        return Err(crate::signin::guest::cross_tenant_blocked(&blocked));
    }
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
            signin.persistent_browser = decision.persistent_browser;
            use crate::directory::users::{SignInKind, record_sign_in};
            record_sign_in(&state.store, &user, SignInKind::Interactive, state.now()).await;
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
        Gate::Terms(decision) => {
            let names: Vec<&str> = decision
                .results
                .iter()
                .filter(|r| {
                    r.result == crate::policy::PolicyOutcome::Failure
                        && r.enforced_grant_controls.contains(&crate::policy::Control::TermsOfUse)
                })
                .map(|r| r.display_name.as_str())
                .collect();
            let why = format!("terms of use required: policy {}", names.join(", policy "));
            log(facts(auth.amr.clone()), Some(&decision), Some(("terms_required", why))).await;
            signin.step = Step::Terms { auth, agreements: decision.terms.clone() };
            signin.user_id = Some(user.id);
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
            signin.strengths = decision.strengths.clone();
            signin.step = match crate::signin::passkey::mfa_step(state, tenant, &signin, &user, auth) {
                Ok(step) => step,
                Err(stop) => {
                    state.store.delete_signin(&digest(tx)).await?;
                    return Err(stop);
                }
            };
            signin.user_id = Some(user.id);
            crate::telemetry::mfa_prompt(&tenant.slug, &signin.step);
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
    let persist = signin.persistent_browser == Some(true);
    match signin.purpose {
        Purpose::Authorize(request) => issue_code(state, tenant, &request, auth, existing, &browser, persist).await,
        Purpose::Portal { return_to, replaces_session } => {
            let (cookie, _) = open_session(state, tenant, auth).await?;
            if let Some(old) = replaces_session {
                retire_session(state, tenant, &old).await?;
            }
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, return_to))
                .cookie(session_cookie(state, tenant, cookie, persist))
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
    let persist = signin.persistent_browser == Some(true);
    issue_code(&state, &tenant, &request, auth, existing, &signin.browser, persist).await
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
    let ctx = crate::access::cross_tenant::vouch(tenant, &session.auth, ctx);
    let collaborates = match &session.auth.home {
        Some(home) => crate::access::cross_tenant::check(state, tenant, home, Some(PORTAL_APP)).await?.is_none(),
        None => true,
    };
    if collaborates && let Gate::Allow(_) = crate::access::gate(state, tenant, &user, &ctx, false).await? {
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
        strengths: vec![],
        passwordless: None,
        persistent_browser: None,
    };
    let auth = session.auth.clone();
    let mut resp = after_primary(state, req, tenant, &new_token(), signin, auth, Some((cookie, session))).await?;
    if let Some(c) = new_cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(Err(resp))
}
