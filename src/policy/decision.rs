//! Conditional access: Sign-in context and decision.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SignInContext {
    pub user_id: String,
    pub is_guest: bool,
    pub app_id: String,
    /// Client address after trusted-proxy resolution; `None` when unknown.
    pub ip: Option<IpAddr>,
    /// `None`: an unknown/unregistered device (not compliant, not managed).
    pub device: Option<DeviceState>,
    pub user_risk: Option<RiskLevel>,
    pub sign_in_risk: Option<RiskLevel>,
    pub satisfied: Satisfied,
    /// Seconds since the authentication being reused; `None` for a fresh one.
    pub auth_age_secs: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceState {
    pub id: String,
    pub is_managed: bool,
    pub is_compliant: bool,
    /// `AzureAD`, `ServerAD` (domain joined) or `Workplace`.
    pub trust_type: Option<String>,
}

/// What this sign-in already proved. The device flags let inbound cross-tenant trust vouch
/// for a home device; they are OR'ed with the registered device's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Satisfied {
    pub mfa: bool,
    pub compliant_device: bool,
    pub domain_joined_device: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// One entry per policy, in input order (Graph `appliedConditionalAccessPolicies`).
    pub results: Vec<PolicyResult>,
    /// Ids of the named locations containing the sign-in's IP.
    pub matched_locations: Vec<String>,
    /// Ids of enforced policies that block.
    pub block: Vec<String>,
    /// Per unmet enforced policy: alternatives, any one of which satisfies that entry.
    pub required: Vec<Vec<Control>>,
    /// An enforced sign-in frequency is exceeded by `auth_age_secs`.
    pub reauthenticate: bool,
    /// Indexes into `results` of policies that MFA alone cannot satisfy.
    #[serde(skip)]
    pub(super) unsatisfiable: Vec<usize>,
}

impl Decision {
    pub fn is_blocked(&self) -> bool {
        !self.block.is_empty()
    }

    pub fn needs_mfa(&self) -> bool {
        self.required.iter().any(|alternatives| alternatives.contains(&Control::Mfa))
    }

    /// Enforced policies that fail and that an interactive MFA would not fix (e.g. they need a
    /// compliant device): the caller blocks naming these. `block` policies are not repeated
    /// here. Empty after deserialization (only a fresh evaluation knows it).
    pub fn unsatisfiable(&self) -> Vec<&PolicyResult> {
        self.unsatisfiable.iter().filter_map(|&i| self.results.get(i)).collect()
    }

    pub fn allowed(&self) -> bool {
        !self.is_blocked() && self.required.is_empty() && !self.reauthenticate
    }
}

/// Graph's `appliedConditionalAccessPolicy`. The two condition lists serialize as Graph's
/// comma-separated flags string (`"application,users"`, `"none"` when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResult {
    pub id: String,
    pub display_name: String,
    pub result: PolicyOutcome,
    #[serde(default)]
    pub enforced_grant_controls: Vec<Control>,
    /// `signInFrequency` when the policy applies with it enabled.
    #[serde(default)]
    pub enforced_session_controls: Vec<String>,
    #[serde(default, with = "condition_flags")]
    pub conditions_satisfied: Vec<String>,
    #[serde(default, with = "condition_flags")]
    pub conditions_not_satisfied: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyOutcome {
    Success,
    Failure,
    NotApplied,
    NotEnabled,
    ReportOnlySuccess,
    ReportOnlyFailure,
    ReportOnlyNotApplied,
    ReportOnlyInterrupted,
}
