//! Conditional access inside a sign-in (DESIGN §2.3, §4): after primary authentication
//! (and again when an SSO session is reused) gatehouse evaluates the tenant's policies,
//! per-user and tenant MFA, step-up and licensing, and decides: allow, MFA, or block.
pub mod credential;

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::cookie::Cookie;

use crate::app::AppState;
use crate::audit;
use crate::model::Authentication;
use crate::model::{Device, DeviceDetail, SignInLogEntry, Status};
use crate::model::{Tenant, User};
use crate::policy::{self, Decision, DeviceState, RiskLevel, Satisfied, SignInContext};
use crate::secrets::{b64url, ct_eq, mac};
use crate::web::HttpState;
use crate::web::error::PageError;
use credential::{GrantState, Presented, Refusal};

pub const DEVICE_COOKIE: &str = "gh_dev";
/// The app id conditional access sees for gatehouse's own pages.
pub const PORTAL_APP: &str = "gatehouse-portal";

pub use crate::access::credential::Gate;

/// The device cookie carries the device id and a MAC over (tenant, id, owner) keyed by the
/// instance secret: only the server can mint one, and it is good only for its owner.
fn device_seal(state: &AppState, tenant: &Tenant, id: &str, owner: &uuid::Uuid) -> String {
    b64url(&mac(&state.instance_secret, &[b"device", tenant.id.as_bytes(), id.as_bytes(), owner.as_bytes()]))
}

/// The registered device of this browser at `tenant` for `user`, registering it on first
/// sight. A cookie the server did not mint, or minted for another user (a copied cookie,
/// a shared browser), is a new, unregistered device of this user.
pub fn device(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<(Device, Option<Cookie<'static>>), PageError> {
    if let Some(d) = known_device(req, state, tenant, user)? {
        return Ok((d, None));
    }
    let agent = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("browser");
    let d = Device {
        id: uuid::Uuid::new_v4().to_string(),
        display_name: agent.chars().take(80).collect(),
        is_managed: false,
        is_compliant: false,
        trust_type: None,
        registered_owner: Some(user.id),
        created_at: state.now(),
    };
    state.store.put_device(&tenant.id, &d)?;
    let value = format!("{}.{}", d.id, device_seal(state, tenant, &d.id, &user.id));
    let cookie = state.cookie(DEVICE_COOKIE, value, format!("/{}", tenant.slug), Some(400 * 86400));
    Ok((d, Some(cookie)))
}

/// The registered device this browser presents for `user` (a cookie the server minted for
/// this user), without registering one.
pub fn known_device(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<Option<Device>, crate::storage::StoreError> {
    let Some(value) = crate::web::cookie_value(req, DEVICE_COOKIE) else { return Ok(None) };
    let Some((id, tag)) = value.split_once('.') else { return Ok(None) };
    if !ct_eq(tag.as_bytes(), device_seal(state, tenant, id, &user.id).as_bytes()) {
        return Ok(None);
    }
    Ok(state.store.device(&tenant.id, id)?.filter(|d| d.registered_owner == Some(user.id)))
}

fn risk(level: Option<&str>) -> Option<RiskLevel> {
    match level? {
        "none" => Some(RiskLevel::None),
        "low" => Some(RiskLevel::Low),
        "medium" => Some(RiskLevel::Medium),
        "high" => Some(RiskLevel::High),
        _ => None,
    }
}

pub fn has_mfa(auth: &Authentication) -> bool {
    auth.amr.iter().any(|a| a == "mfa")
}

/// The pure inputs of the policy engine for this sign-in.
pub fn context(
    user: &User,
    app_id: &str,
    ip: Option<IpAddr>,
    device: Option<&Device>,
    auth: &Authentication,
    age: Option<i64>,
) -> SignInContext {
    // Members carry the admin-set risk level; a guest's risk is evaluated at home.
    let level = if user.is_guest() { None } else { risk(user.risk_level.as_deref()) };
    SignInContext {
        user_id: user.id.to_string(),
        is_guest: user.is_guest(),
        app_id: app_id.to_string(),
        ip,
        device: device.map(|d| DeviceState {
            id: d.id.clone(),
            is_managed: d.is_managed,
            is_compliant: d.is_compliant,
            trust_type: d.trust_type.clone(),
        }),
        user_risk: level,
        sign_in_risk: level,
        satisfied: Satisfied { mfa: has_mfa(auth), ..Default::default() },
        auth_age_secs: age,
    }
}

/// Decides what this sign-in may do. `age` is `None` for a fresh authentication.
pub fn gate(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    ctx: &SignInContext,
    step_up: bool,
) -> Result<Gate, crate::storage::StoreError> {
    let ca = state.store.ca_records(&tenant.id)?;
    let decision = policy::evaluate(ctx, &ca.policies, &ca.locations);
    Ok(credential::decide(decision, user.per_user_mfa || tenant.require_mfa, step_up, ctx.satisfied.mfa))
}

/// The gate for an existing credential (`credential::check`): the user behind it, when
/// it is still good, or why not.
pub fn credential_user(
    state: &AppState,
    tenant: &Tenant,
    presented: &Presented<'_>,
) -> Result<Result<User, Refusal>, crate::storage::StoreError> {
    let user = state.store.user(&tenant.id, &presented.user_id)?;
    Ok(credential::check(user.as_ref(), presented).map(|()| user.unwrap_or_default()))
}

/// Whether the grant (refresh-token family) behind a token is live: not revoked, not past
/// its absolute lifetime.
pub fn grant_state(state: &AppState, grant: &uuid::Uuid) -> Result<GrantState, crate::storage::StoreError> {
    Ok(match state.store.grant(grant)? {
        Some(g) if !g.revoked && g.expires_at > state.now() => GrantState::Live,
        _ => GrantState::Ended,
    })
}

/// Conditional access again for a non-interactive sign-in (a refresh): today's policies
/// for this user, app, address and the device the sign-in came from, against what the
/// original authentication proved. Only a decision that needs nobody passes.
pub fn reevaluate(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    app_id: &str,
    ip: Option<IpAddr>,
    auth: &Authentication,
) -> Result<(Decision, Option<Refusal>), crate::storage::StoreError> {
    let device = match &auth.device_id {
        Some(id) => state.store.device(&tenant.id, id)?.filter(|d| d.registered_owner == Some(user.id)),
        None => None,
    };
    let age = state.now() - auth.auth_time;
    let ctx = context(user, app_id, ip, device.as_ref(), auth, Some(age));
    Ok(credential::non_interactive(gate(state, tenant, user, &ctx, false)?))
}

/// Why MFA is asked, for the sign-in log.
pub fn mfa_reasons(d: &Decision, user: &User, tenant: &Tenant, step_up: bool) -> String {
    let mut why: Vec<String> = d
        .results
        .iter()
        .filter(|r| {
            r.result == policy::PolicyOutcome::Failure && r.enforced_grant_controls.contains(&policy::Control::Mfa)
        })
        .map(|r| format!("policy {}", r.display_name))
        .collect();
    if user.per_user_mfa {
        why.push("per-user MFA".into());
    }
    if tenant.require_mfa {
        why.push("tenant MFA".into());
    }
    if step_up {
        why.push("the application asked for acr 2".into());
    }
    format!("MFA required: {}", why.join(", "))
}

pub struct LogFacts<'a> {
    pub tenant: &'a Tenant,
    pub user: Option<&'a User>,
    pub app_id: &'a str,
    pub ip: Option<IpAddr>,
    pub device: Option<&'a Device>,
    pub idp: Option<String>,
    pub amr: Vec<String>,
    pub interactive: bool,
}

/// Writes one sign-in log entry; `error` is `None` for success.
pub fn log(state: &AppState, f: LogFacts<'_>, decision: Option<&Decision>, error: Option<(&str, String)>) {
    let tenant = f.tenant.id;
    audit::record(&state.store, &tenant, entry(state, f, decision, error));
}

/// A failed password step: like `log`, and for a login that names no account the attempted
/// name as its UPN, as Entra logs it (the log is for admins; the page says the same either way).
pub fn log_login_failure(state: &AppState, f: LogFacts<'_>, login: &str, code: &str, reason: String) {
    let tenant = f.tenant.id;
    let known = f.user.is_some();
    let mut e = entry(state, f, None, Some((code, reason)));
    if !known {
        e.user_principal_name = Some(login.chars().take(320).collect());
    }
    audit::record(&state.store, &tenant, e);
}

fn entry(
    state: &AppState,
    f: LogFacts<'_>,
    decision: Option<&Decision>,
    error: Option<(&str, String)>,
) -> SignInLogEntry {
    let app_name = state.store.app(&f.tenant.id, f.app_id).ok().flatten().map(|a| a.display_name);
    let locations = match (f.ip, decision) {
        (Some(_), Some(d)) => {
            let all = state.store.ca_records(&f.tenant.id).map(|r| r.locations).unwrap_or_default();
            d.matched_locations
                .iter()
                .map(|id| {
                    all.iter().find(|l| &l.id == id).map(|l| l.display_name.clone()).unwrap_or_else(|| id.clone())
                })
                .collect()
        }
        _ => vec![],
    };
    let results = decision.map(|d| d.results.clone()).unwrap_or_default();
    let now = state.now();
    SignInLogEntry {
        id: String::new(),
        seq: 0,
        created_date_time: crate::clock::rfc3339(now),
        created_at: now,
        user_id: f.user.map(|u| u.id),
        user_principal_name: f.user.map(|u| u.user_principal_name.clone()),
        user_display_name: f.user.map(|u| u.display_name.clone()),
        user_type: f.user.map(|u| if u.is_guest() { "Guest".into() } else { "Member".into() }),
        app_id: f.app_id.to_string(),
        app_display_name: app_name,
        ip_address: f.ip.map(|i| i.to_string()),
        named_locations: locations,
        device_detail: f.device.map(|d| DeviceDetail {
            device_id: d.id.clone(),
            display_name: d.display_name.clone(),
            is_compliant: d.is_compliant,
            is_managed: d.is_managed,
        }),
        idp: f.idp,
        is_interactive: f.interactive,
        status: match &error {
            None => Status::default(),
            Some((code, reason)) => Status {
                error_code: crate::model::error_number(code),
                failure_reason: Some(reason.clone()),
                error: Some(code.to_string()),
            },
        },
        conditional_access_status: crate::model::conditional_access_status(&results),
        amr: f.amr,
        applied_conditional_access_policies: results,
    }
}

/// Whether `key` (e.g. app + user + result) was not logged within the last minute; marks
/// it logged. Repeats of one outcome are aggregated per minute, as Entra does for
/// non-interactive sign-ins, so one client cannot grow the log with every request.
pub fn first_in_minute(state: &AppState, key: &str) -> bool {
    let now = state.now();
    let mut seen = state.token_log_seen.lock().unwrap_or_else(|p| p.into_inner());
    if seen.get(key).is_some_and(|t| now - t < 60) {
        return false;
    }
    if seen.len() > 100_000 {
        seen.retain(|_, t| now - *t < 60);
    }
    seen.insert(key.to_string(), now);
    true
}

/// `log`, once per minute per `key` (the same app, user or login, and result).
pub fn log_aggregated(
    state: &AppState,
    key: &str,
    f: LogFacts<'_>,
    decision: Option<&Decision>,
    error: Option<(&str, String)>,
) {
    let result = error.as_ref().map(|(c, _)| *c).unwrap_or("ok");
    if first_in_minute(state, &format!("{}:{key}:{result}", f.tenant.id)) {
        log(state, f, decision, error);
    }
}
