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
    /// Graph `authenticationMethodModes` the sign-in proved (`password`, `softwareOath`,
    /// `fido2`, …), for authentication strengths.
    pub methods: Vec<String>,
    /// Seconds since the authentication being reused; `None` for a fresh one.
    pub auth_age_secs: Option<i64>,
    /// Object ids of the groups the user is a member of (`includeGroups` / `excludeGroups`).
    pub groups: Vec<String>,
    /// Seconds since its second factor was proven (`secondaryAuthentication` frequencies);
    /// `None` for a fresh authentication.
    pub mfa_age_secs: Option<i64>,
    /// Agreements (terms of use) the user has accepted and need not accept again yet.
    pub accepted_terms: Vec<String>,
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
    /// An enforced `secondaryAuthentication` frequency is exceeded by `mfa_age_secs`: only
    /// the second factor is asked again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reauthenticate_mfa: bool,
    /// Agreements (terms of use) the user must accept before the sign-in can finish
    /// (those an MFA step would not make unnecessary).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
    /// `Some(true)`: the SSO cookie persists (`persistentBrowser: always`); `Some(false)`:
    /// a browser-session cookie (`never`, which wins); `None`: no policy says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_browser: Option<bool>,
    /// The authentication strengths that unmet enforced policies require: the MFA step
    /// offers only methods that meet every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strengths: Vec<AuthenticationStrength>,
    /// Indexes into `results` of policies that the user's steps (MFA, terms) cannot satisfy.
    #[serde(skip)]
    pub(super) unsatisfiable: Vec<usize>,
}

impl Decision {
    pub fn is_blocked(&self) -> bool {
        !self.block.is_empty()
    }

    pub fn needs_mfa(&self) -> bool {
        self.required.iter().any(|alternatives| {
            alternatives.contains(&Control::Mfa) || alternatives.contains(&Control::AuthenticationStrength)
        })
    }

    /// Enforced policies that fail and that an interactive MFA would not fix (e.g. they need a
    /// compliant device): the caller blocks naming these. `block` policies are not repeated
    /// here. Empty after deserialization (only a fresh evaluation knows it).
    pub fn unsatisfiable(&self) -> Vec<&PolicyResult> {
        self.unsatisfiable.iter().filter_map(|&i| self.results.get(i)).collect()
    }

    /// Only terms of use are left to satisfy: no MFA is asked and nothing blocks.
    pub fn needs_terms(&self) -> bool {
        !self.terms.is_empty()
    }

    pub fn allowed(&self) -> bool {
        !self.is_blocked() && self.required.is_empty() && !self.reauthenticate && !self.reauthenticate_mfa
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
    /// The policy's authentication strength and whether the sign-in met it (and how).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_strength: Option<StrengthOutcome>,
    #[serde(default, with = "wire::condition_flags")]
    pub conditions_satisfied: Vec<String>,
    #[serde(default, with = "wire::condition_flags")]
    pub conditions_not_satisfied: Vec<String>,
}

/// A policy's authentication strength in a sign-in (Entra's sign-in log
/// `authenticationStrength` of an applied policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrengthOutcome {
    pub authentication_strength_id: String,
    pub display_name: String,
    pub authentication_strength_result: StrengthResult,
    /// The allowed combination the sign-in's methods met (`fido2`, `password,softwareOath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfied_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StrengthResult {
    Satisfied,
    NotSatisfied,
    /// The policy names a strength that does not exist (deleted): it cannot be met.
    UnknownStrength,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::testkit::*;

    use PolicyOutcome::{
        Failure, NotApplied, NotEnabled, ReportOnlyFailure, ReportOnlyInterrupted, ReportOnlyNotApplied,
        ReportOnlySuccess, Success,
    };

    #[test]
    fn required_alternatives_and_helpers() {
        use Control::{Block, CompliantDevice, DomainJoinedDevice, Mfa};
        use GrantOperator::{And, Or};
        let ctx = member();

        let d = eval(&ctx, &[pol(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice]))]);
        assert_eq!(d.required, vec![vec![Mfa], vec![CompliantDevice]]);
        assert!(d.needs_mfa() && !d.allowed() && !d.is_blocked());
        assert_eq!(d.unsatisfiable().len(), 1, "MFA alone cannot satisfy AND with a device");

        let d = eval(
            &with(ctx.clone(), |c| c.satisfied.mfa = true),
            &[pol(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice]))],
        );
        assert_eq!(d.required, vec![vec![CompliantDevice]], "AND lists only the unmet controls");
        assert!(!d.needs_mfa());

        let d = eval(&ctx, &[pol(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice]))]);
        assert_eq!(d.required, vec![vec![Mfa, CompliantDevice]]);
        assert!(d.needs_mfa());
        assert!(d.unsatisfiable().is_empty(), "MFA satisfies the OR");

        let d = eval(&ctx, &[pol(|p| p.grant_controls = grant(Or, &[CompliantDevice, DomainJoinedDevice]))]);
        assert!(!d.needs_mfa());
        assert_eq!(d.unsatisfiable()[0].id, "p1");

        let d = eval(&ctx, &[pol(|p| p.grant_controls = grant(And, &[Block]))]);
        assert!(d.is_blocked() && !d.allowed());
        assert_eq!(d.block, strs(&["p1"]));
        assert!(d.required.is_empty() && d.unsatisfiable().is_empty(), "block policies are reported only in block");

        let d = eval(&ctx, &[pol(|p| p.grant_controls = None)]);
        assert!(d.allowed() && !d.needs_mfa() && d.required.is_empty());

        // Several enforced policies: every unmet one contributes.
        let policies = [
            base("a"),
            pol(|p| {
                p.id = "b".into();
                p.grant_controls = grant(And, &[CompliantDevice]);
            }),
        ];
        let d = eval(&ctx, &policies);
        assert_eq!(d.required, vec![vec![Mfa], vec![CompliantDevice]]);
        assert_eq!(d.unsatisfiable().iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn policy_result_details() {
        let p = pol(|p| {
            p.id = "loc".into();
            p.display_name = "MFA outside the partner network".into();
            p.conditions.locations = locs(&[ALL], &[ALL_TRUSTED]);
            p.conditions.devices = devs(&[ALL], &[], None);
            p.grant_controls = grant(GrantOperator::Or, &[Control::Mfa, Control::CompliantDevice]);
        });
        let outside = eval(&with(member(), |c| c.ip = ip("192.0.2.1")), std::slice::from_ref(&p));
        let r = &outside.results[0];
        assert_eq!(r.conditions_satisfied, strs(&["application", "users", "location", "deviceState"]));
        assert!(r.conditions_not_satisfied.is_empty());
        assert_eq!(r.enforced_grant_controls, vec![Control::Mfa, Control::CompliantDevice]);
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            json!({
                "id": "loc",
                "displayName": "MFA outside the partner network",
                "result": "failure",
                "enforcedGrantControls": ["mfa", "compliantDevice"],
                "enforcedSessionControls": [],
                "conditionsSatisfied": "application,users,location,deviceState",
                "conditionsNotSatisfied": "none",
            })
        );

        let inside = eval(&with(guest(), |c| c.ip = ip("203.0.113.5")), std::slice::from_ref(&p));
        let r = &inside.results[0];
        assert_eq!(r.result, NotApplied);
        assert_eq!(r.conditions_not_satisfied, strs(&["location"]));
        assert!(r.enforced_grant_controls.is_empty(), "controls are listed only when the policy applies");
        assert_eq!(inside.matched_locations, strs(&[PARTNER_NET]));

        // Both Graph's flags string and a plain array read back.
        let back: PolicyResult = serde_json::from_value(serde_json::to_value(r).unwrap()).unwrap();
        assert_eq!(&back, r);
        let from_array: PolicyResult = serde_json::from_value(json!({
            "id": "x", "displayName": "x", "result": "notApplied",
            "conditionsSatisfied": ["users"], "conditionsNotSatisfied": "application, location"
        }))
        .unwrap();
        assert_eq!(from_array.conditions_satisfied, strs(&["users"]));
        assert_eq!(from_array.conditions_not_satisfied, strs(&["application", "location"]));
    }

    #[test]
    fn sign_in_context_and_decision_serde() {
        let ctx: SignInContext = serde_json::from_value(json!({
            "userId": SALLY, "isGuest": true, "appId": "foo", "ip": "203.0.113.7",
            "device": { "id": "d1", "isCompliant": true },
            "signInRisk": "high", "satisfied": { "mfa": true }, "authAgeSecs": 30
        }))
        .unwrap();
        assert_eq!(ctx.ip, ip("203.0.113.7"));
        assert_eq!(ctx.sign_in_risk, Some(RiskLevel::High));
        assert!(ctx.satisfied.mfa && !ctx.satisfied.compliant_device);
        assert_eq!(ctx.device.as_ref().map(|d| d.is_compliant), Some(true));

        let d = eval(&member(), &[pol(|p| p.grant_controls = grant(GrantOperator::And, &[Control::CompliantDevice]))]);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["required"], json!([["compliantDevice"]]));
        assert_eq!(v["block"], json!([]));
        assert_eq!(v["reauthenticate"], json!(false));
        assert_eq!(v["results"][0]["result"], "failure");
        assert!(v.get("unsatisfiable").is_none());
        let back: Decision = serde_json::from_value(v).unwrap();
        assert_eq!(back.results, d.results);
        assert!(back.unsatisfiable().is_empty(), "only a fresh evaluation knows");
    }

    #[test]
    fn outcome_names_match_graph() {
        let names: Vec<String> = [
            Success,
            Failure,
            NotApplied,
            NotEnabled,
            ReportOnlySuccess,
            ReportOnlyFailure,
            ReportOnlyNotApplied,
            ReportOnlyInterrupted,
        ]
        .iter()
        .map(|o| serde_json::to_value(o).unwrap().as_str().unwrap().to_owned())
        .collect();
        assert_eq!(
            names,
            [
                "success",
                "failure",
                "notApplied",
                "notEnabled",
                "reportOnlySuccess",
                "reportOnlyFailure",
                "reportOnlyNotApplied",
                "reportOnlyInterrupted"
            ]
        );
        let levels = serde_json::to_value([RiskLevel::None, RiskLevel::Hidden, RiskLevel::UnknownFutureValue]).unwrap();
        assert_eq!(levels, json!(["none", "hidden", "unknownFutureValue"]));
        let controls =
            serde_json::to_value([Control::Block, Control::Mfa, Control::CompliantDevice, Control::DomainJoinedDevice])
                .unwrap();
        assert_eq!(controls, json!(["block", "mfa", "compliantDevice", "domainJoinedDevice"]));
    }
}
