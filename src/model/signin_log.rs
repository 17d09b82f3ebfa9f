//! The sign-in log record (Graph `signIn` shape) and its retention limits.
use serde::{Deserialize, Serialize};

use crate::model::Amr;
use crate::policy::PolicyResult;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SignInLogEntry {
    pub id: String,
    #[serde(skip)]
    pub seq: u64,
    pub created_date_time: String,
    #[serde(default)]
    pub created_at: i64,
    pub user_id: Option<super::UserId>,
    pub user_principal_name: Option<String>,
    pub user_display_name: Option<String>,
    pub user_type: Option<String>,
    pub app_id: String,
    pub app_display_name: Option<String>,
    pub ip_address: Option<String>,
    /// Named locations containing the IP.
    pub named_locations: Vec<String>,
    pub device_detail: Option<DeviceDetail>,
    /// The home identity provider of a guest, or null for members.
    pub idp: Option<String>,
    pub is_interactive: bool,
    pub status: Status,
    pub conditional_access_status: String,
    pub amr: Vec<Amr>,
    pub applied_conditional_access_policies: Vec<PolicyResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeviceDetail {
    pub device_id: String,
    pub display_name: String,
    pub is_compliant: bool,
    pub is_managed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// 0 for success.
    pub error_code: u32,
    pub failure_reason: Option<String>,
    /// gatehouse: the short error code (e.g. `access_blocked`, `license_exhausted`).
    pub error: Option<String>,
}

/// How long the sign-in log keeps an entry (Entra keeps sign-ins 30 days).
pub const LOG_RETENTION_SECS: i64 = 30 * 86400;
/// Per tenant, a disk-space last resort: beyond it failures of unknown accounts go first.
pub const LOG_MAX_ENTRIES_PER_TENANT: usize = 100_000;

/// Entra-like numeric codes for the failures gatehouse logs.
pub fn error_number(code: &str) -> u32 {
    match code {
        "access_blocked" => 53003,
        "device_not_compliant" => 53000,
        "mfa_required" => 50074,
        "mfa_locked" | "account_locked" | "ip_throttled" => 50053,
        "license_exhausted" => 65005,
        "wrong_password" => 50126,
        "invalid_grant" => 70008,
        // AADSTS500213: the resource tenant's (or the home tenant's) cross-tenant access policy.
        "cross_tenant_blocked" => 500213,
        _ => 90000,
    }
}

pub fn conditional_access_status(results: &[PolicyResult]) -> String {
    use crate::policy::PolicyOutcome;
    if results.iter().any(|r| r.result == PolicyOutcome::Failure) {
        "failure".into()
    } else if results.iter().any(|r| r.result == PolicyOutcome::Success) {
        "success".into()
    } else {
        "notApplied".into()
    }
}
