//! The sign-in log (Graph `signIn` shape), append-only. Writing it never fails a sign-in.
use uuid::Uuid;

use std::net::IpAddr;

use crate::app::AppState;
use crate::model::{Amr, Device, DeviceDetail, SignInLogEntry, Status, Tenant, User};
use crate::policy::Decision;
use crate::storage::Store;

/// Appends; a storage problem is logged and swallowed: the sign-in goes on.
pub async fn record(store: &Store, tenant: &crate::model::TenantId, mut entry: SignInLogEntry) {
    if entry.id.is_empty() {
        entry.id = Uuid::new_v4().to_string();
    }
    if let Err(e) = store.append_signin_log(tenant, &mut entry).await {
        tracing::warn!(error = %e, "could not write the sign-in log");
    }
}

pub struct LogFacts<'a> {
    pub tenant: &'a Tenant,
    pub user: Option<&'a User>,
    pub app_id: &'a str,
    pub ip: Option<IpAddr>,
    pub device: Option<&'a Device>,
    pub idp: Option<String>,
    pub amr: Vec<Amr>,
    pub interactive: bool,
}

/// Writes one sign-in log entry; `error` is `None` for success.
pub async fn log(state: &AppState, f: LogFacts<'_>, decision: Option<&Decision>, error: Option<(&str, String)>) {
    count(&f, error.as_ref().map(|(c, _)| *c));
    let tenant = f.tenant.id;
    record(&state.store, &tenant, entry(state, f, decision, error).await).await;
}

/// A failed password step: like `log`, and for a login that names no account the attempted
/// name as its UPN, as Entra logs it (the log is for admins; the page says the same either way).
pub async fn log_login_failure(state: &AppState, f: LogFacts<'_>, login: &str, code: &str, reason: String) {
    count(&f, Some(code));
    let tenant = f.tenant.id;
    let known = f.user.is_some();
    let mut e = entry(state, f, None, Some((code, reason))).await;
    if !known {
        e.user_principal_name = Some(login.chars().take(320).collect());
    }
    record(&state.store, &tenant, e).await;
}

/// The sign-in metric of one entry (also of one the per-minute aggregation leaves out).
fn count(f: &LogFacts<'_>, error: Option<&str>) {
    crate::telemetry::signin(&f.tenant.slug, f.user.map(|u| u.user_type.as_str()), f.interactive, error);
}

async fn entry(
    state: &AppState,
    f: LogFacts<'_>,
    decision: Option<&Decision>,
    error: Option<(&str, String)>,
) -> SignInLogEntry {
    let app_name = state.store.app(&f.tenant.id, f.app_id).await.ok().flatten().map(|a| a.display_name);
    let locations = match (f.ip, decision) {
        (Some(_), Some(d)) => {
            let all = state.store.ca_records(&f.tenant.id).await.map(|r| r.locations).unwrap_or_default();
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
        user_type: f.user.map(|u| u.user_type.as_str().into()),
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
pub async fn log_aggregated(
    state: &AppState,
    key: &str,
    f: LogFacts<'_>,
    decision: Option<&Decision>,
    error: Option<(&str, String)>,
) {
    let result = error.as_ref().map(|(c, _)| *c).unwrap_or("ok");
    if first_in_minute(state, &format!("{}:{key}:{result}", f.tenant.id)) {
        log(state, f, decision, error).await;
    } else {
        count(&f, error.as_ref().map(|(c, _)| *c));
    }
}
