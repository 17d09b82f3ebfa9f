//! Conditional access: the Graph wire shapes of policies and named locations: serde helpers
//! and the input-side mirrors (strict parsing). The mirrors' extra fields exist only to be
//! accepted when empty (or ignored when read-only), then dropped.
use ipnet::IpNet;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{
    ApplicationsCondition, Conditions, Control, DevicesCondition, FrequencyAuthentication, FrequencyInterval,
    FrequencyType, GrantControls, GrantOperator, IpRange, LocationsCondition, NamedLocation, ODATA_IP_LOCATION,
    ODATA_V4_RANGE, ODATA_V6_RANGE, PersistentBrowser, Policy, PolicyState, RiskLevel, SessionControls,
    SignInFrequency, StrengthRef, UsersCondition,
};

/// Graph's multi-valued `conditionalAccessConditions` enum: `"application,users"` or `"none"`.
/// Arrays are accepted on input too.
pub(super) mod condition_flags {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(flags: &[String], s: S) -> Result<S::Ok, S::Error> {
        if flags.is_empty() { s.serialize_str("none") } else { s.serialize_str(&flags.join(",")) }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Flags {
            Joined(String),
            List(Vec<String>),
        }
        Ok(match Option::<Flags>::deserialize(d)? {
            None => Vec::new(),
            Some(Flags::List(list)) => list,
            Some(Flags::Joined(s)) => {
                s.split(',').map(str::trim).filter(|f| !f.is_empty() && *f != "none").map(str::to_owned).collect()
            }
        })
    }
}

type Extra = Option<Value>;
type Ignored = Option<IgnoredAny>;

/// Graph sends `null` for empty collections as often as `[]`.
pub fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Empty means: null, false, "", [], {} or an object of empty values, or `isEnabled: false`.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Bool(true) | Value::Number(_) => false,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.get("isEnabled") == Some(&Value::Bool(false)) || o.values().all(is_empty),
    }
}

fn unsupported(fields: &[(&str, &Extra)]) -> Result<(), String> {
    match fields.iter().find(|(_, v)| v.as_ref().is_some_and(|v| !is_empty(v))) {
        Some((name, _)) => Err(format!("{name} is not supported by gatehouse (leave it empty or null)")),
        None => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyIn {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    state: PolicyState,
    #[serde(default)]
    conditions: Option<Conditions>,
    #[serde(default)]
    grant_controls: Option<GrantControls>,
    #[serde(default)]
    session_controls: Option<SessionControls>,
    // Read-only or informational in Graph.
    #[serde(default, rename = "@odata.context")]
    _context: Ignored,
    #[serde(default, rename = "@odata.type")]
    _odata_type: Ignored,
    #[serde(default, rename = "createdDateTime")]
    _created: Ignored,
    #[serde(default, rename = "modifiedDateTime")]
    _modified: Ignored,
    #[serde(default, rename = "templateId")]
    _template_id: Ignored,
    #[serde(default, rename = "description")]
    _description: Ignored,
}

impl TryFrom<PolicyIn> for Policy {
    type Error = String;
    fn try_from(p: PolicyIn) -> Result<Self, String> {
        Ok(Policy {
            id: p.id.unwrap_or_default(),
            display_name: p.display_name.unwrap_or_default(),
            state: p.state,
            conditions: p.conditions.unwrap_or_default(),
            grant_controls: p.grant_controls,
            session_controls: p.session_controls,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionsIn {
    #[serde(default)]
    users: Option<UsersCondition>,
    #[serde(default)]
    applications: Option<ApplicationsCondition>,
    #[serde(default)]
    locations: Option<LocationsCondition>,
    #[serde(default)]
    devices: Option<DevicesCondition>,
    #[serde(default)]
    sign_in_risk_levels: Option<Vec<RiskLevel>>,
    #[serde(default)]
    user_risk_levels: Option<Vec<RiskLevel>>,
    #[serde(default)]
    client_app_types: Option<Vec<String>>,
    #[serde(default)]
    platforms: Extra,
    #[serde(default)]
    service_principal_risk_levels: Extra,
    #[serde(default)]
    insider_risk_levels: Extra,
    #[serde(default)]
    client_applications: Extra,
    #[serde(default)]
    authentication_flows: Extra,
    #[serde(default)]
    times: Extra,
    #[serde(default)]
    device_states: Extra,
}

impl TryFrom<ConditionsIn> for Conditions {
    type Error = String;
    fn try_from(c: ConditionsIn) -> Result<Self, String> {
        // Every gatehouse sign-in is a modern-auth client, which "all" covers.
        let app_types = c.client_app_types.unwrap_or_default();
        if !app_types.iter().all(|t| t.eq_ignore_ascii_case("all")) {
            return Err("clientAppTypes other than [\"all\"] are not supported by gatehouse".into());
        }
        unsupported(&[
            ("platforms", &c.platforms),
            ("servicePrincipalRiskLevels", &c.service_principal_risk_levels),
            ("insiderRiskLevels", &c.insider_risk_levels),
            ("clientApplications", &c.client_applications),
            ("authenticationFlows", &c.authentication_flows),
            ("times", &c.times),
            ("deviceStates", &c.device_states),
        ])?;
        // An empty optional condition is the same as an absent one.
        let locations = c.locations.filter(|l| !l.include_locations.is_empty() || !l.exclude_locations.is_empty());
        let devices = c
            .devices
            .filter(|d| !d.include_devices.is_empty() || !d.exclude_devices.is_empty() || d.device_filter.is_some());
        Ok(Conditions {
            users: c.users.unwrap_or_default(),
            applications: c.applications.unwrap_or_default(),
            locations,
            devices,
            sign_in_risk_levels: c.sign_in_risk_levels.unwrap_or_default(),
            user_risk_levels: c.user_risk_levels.unwrap_or_default(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsersIn {
    #[serde(default, deserialize_with = "null_default")]
    include_users: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    exclude_users: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    include_groups: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    exclude_groups: Vec<String>,
    #[serde(default)]
    include_roles: Extra,
    #[serde(default)]
    exclude_roles: Extra,
    #[serde(default)]
    include_guests_or_external_users: Extra,
    #[serde(default)]
    exclude_guests_or_external_users: Extra,
}

impl TryFrom<UsersIn> for UsersCondition {
    type Error = String;
    fn try_from(u: UsersIn) -> Result<Self, String> {
        unsupported(&[
            ("includeRoles", &u.include_roles),
            ("excludeRoles", &u.exclude_roles),
            ("includeGuestsOrExternalUsers", &u.include_guests_or_external_users),
            ("excludeGuestsOrExternalUsers", &u.exclude_guests_or_external_users),
        ])?;
        Ok(UsersCondition {
            include_users: u.include_users,
            exclude_users: u.exclude_users,
            include_groups: u.include_groups,
            exclude_groups: u.exclude_groups,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationsIn {
    #[serde(default, deserialize_with = "null_default")]
    include_applications: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    exclude_applications: Vec<String>,
    #[serde(default)]
    include_user_actions: Extra,
    #[serde(default)]
    include_authentication_context_class_references: Extra,
    #[serde(default)]
    application_filter: Extra,
}

impl TryFrom<ApplicationsIn> for ApplicationsCondition {
    type Error = String;
    fn try_from(a: ApplicationsIn) -> Result<Self, String> {
        unsupported(&[
            ("includeUserActions", &a.include_user_actions),
            ("includeAuthenticationContextClassReferences", &a.include_authentication_context_class_references),
            ("applicationFilter", &a.application_filter),
        ])?;
        Ok(ApplicationsCondition {
            include_applications: a.include_applications,
            exclude_applications: a.exclude_applications,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantControlsIn {
    #[serde(default)]
    operator: Option<GrantOperator>,
    #[serde(default, deserialize_with = "null_default")]
    built_in_controls: Vec<Control>,
    #[serde(default)]
    custom_authentication_factors: Extra,
    #[serde(default)]
    terms_of_use: Option<Vec<String>>,
    #[serde(default)]
    authentication_strength: Extra,
    #[serde(default, rename = "authenticationStrength@odata.context")]
    _strength_context: Ignored,
}

impl TryFrom<GrantControlsIn> for GrantControls {
    type Error = String;
    fn try_from(g: GrantControlsIn) -> Result<Self, String> {
        unsupported(&[("customAuthenticationFactors", &g.custom_authentication_factors)])?;
        if g.built_in_controls.contains(&Control::AuthenticationStrength) {
            return Err("builtInControls: authenticationStrength is not a built-in control; name the strength in grantControls.authenticationStrength".into());
        }
        if g.built_in_controls.contains(&Control::TermsOfUse) {
            return Err("builtInControls: termsOfUse is not a built-in control; list the agreements in grantControls.termsOfUse".into());
        }
        let mut terms_of_use: Vec<String> = Vec::new();
        for id in g.terms_of_use.unwrap_or_default() {
            let id = id.trim().to_owned();
            if id.is_empty() {
                return Err("grantControls.termsOfUse: an agreement id is empty".into());
            }
            if !terms_of_use.contains(&id) {
                terms_of_use.push(id);
            }
        }
        let authentication_strength = strength_ref(g.authentication_strength)?;
        if authentication_strength.is_some() && g.built_in_controls.contains(&Control::Mfa) {
            return Err(
                "grantControls: mfa and authenticationStrength cannot be combined (a strength already requires MFA)"
                    .into(),
            );
        }
        // With one control the operator is moot; with more, guessing could loosen the policy.
        let count = g.built_in_controls.len()
            + usize::from(authentication_strength.is_some())
            + usize::from(!terms_of_use.is_empty());
        let operator = match (g.operator, count) {
            (Some(op), _) => op,
            (None, 0 | 1) => GrantOperator::And,
            (None, _) => return Err("grantControls.operator (AND or OR) is required with several controls".into()),
        };
        Ok(GrantControls { operator, built_in_controls: g.built_in_controls, authentication_strength, terms_of_use })
    }
}

/// Graph sends the whole `authenticationStrengthPolicy` (or just `{ "id" }`); only the id counts.
fn strength_ref(v: Extra) -> Result<Option<StrengthRef>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => match map.get("id") {
            Some(Value::String(id)) if !id.trim().is_empty() => Ok(Some(StrengthRef { id: id.trim().to_owned() })),
            _ => Err("grantControls.authenticationStrength.id is required".into()),
        },
        Some(_) => Err("grantControls.authenticationStrength must be an object with an id".into()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionControlsIn {
    #[serde(default)]
    sign_in_frequency: Option<SignInFrequency>,
    #[serde(default)]
    application_enforced_restrictions: Extra,
    #[serde(default)]
    cloud_app_security: Extra,
    #[serde(default)]
    continuous_access_evaluation: Extra,
    #[serde(default)]
    disable_resilience_defaults: Extra,
    #[serde(default)]
    persistent_browser: Option<PersistentBrowser>,
    #[serde(default)]
    secure_sign_in_session: Extra,
}

impl TryFrom<SessionControlsIn> for SessionControls {
    type Error = String;
    fn try_from(s: SessionControlsIn) -> Result<Self, String> {
        unsupported(&[
            ("applicationEnforcedRestrictions", &s.application_enforced_restrictions),
            ("cloudAppSecurity", &s.cloud_app_security),
            ("continuousAccessEvaluation", &s.continuous_access_evaluation),
            ("disableResilienceDefaults", &s.disable_resilience_defaults),
            ("secureSignInSession", &s.secure_sign_in_session),
        ])?;
        // A disabled control is the same as none.
        let persistent_browser = s.persistent_browser.filter(|p| p.is_enabled);
        Ok(SessionControls { sign_in_frequency: s.sign_in_frequency, persistent_browser })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInFrequencyIn {
    #[serde(default)]
    value: Option<u32>,
    #[serde(default)]
    r#type: Option<FrequencyType>,
    #[serde(default)]
    is_enabled: Option<bool>,
    #[serde(default)]
    authentication_type: Option<String>,
    #[serde(default)]
    frequency_interval: Option<String>,
}

impl TryFrom<SignInFrequencyIn> for SignInFrequency {
    type Error = String;
    fn try_from(f: SignInFrequencyIn) -> Result<Self, String> {
        let authentication_type = match f.authentication_type.as_deref() {
            None | Some("primaryAndSecondaryAuthentication") => {
                FrequencyAuthentication::PrimaryAndSecondaryAuthentication
            }
            Some("secondaryAuthentication") => FrequencyAuthentication::SecondaryAuthentication,
            Some(_) => {
                return Err("signInFrequency.authenticationType must be primaryAndSecondaryAuthentication or secondaryAuthentication".into());
            }
        };
        let frequency_interval = match f.frequency_interval.as_deref() {
            None | Some("timeBased") => FrequencyInterval::TimeBased,
            Some("everyTime") => FrequencyInterval::EveryTime,
            Some(_) => return Err("signInFrequency.frequencyInterval must be timeBased or everyTime".into()),
        };
        let every = frequency_interval == FrequencyInterval::EveryTime;
        // A frequency written without isEnabled is meant to apply.
        let is_enabled = f.is_enabled.unwrap_or(f.value.is_some() || every);
        let (value, r#type) = match (is_enabled && !every, f.value, f.r#type) {
            (true, Some(value), Some(r#type)) => (value, r#type),
            (true, _, _) => return Err("signInFrequency needs value and type when enabled".into()),
            (false, value, r#type) if every && (value.is_some() || r#type.is_some()) => {
                return Err("signInFrequency: value and type must be null with frequencyInterval everyTime".into());
            }
            (false, value, r#type) => (value.unwrap_or_default(), r#type.unwrap_or_default()),
        };
        Ok(SignInFrequency { value, r#type, is_enabled, authentication_type, frequency_interval })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedLocationIn {
    #[serde(default, rename = "@odata.type")]
    odata_type: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    ip_ranges: Vec<IpRange>,
    #[serde(default)]
    is_trusted: Option<bool>,
    #[serde(default, rename = "@odata.context")]
    _context: Ignored,
    #[serde(default, rename = "createdDateTime")]
    _created: Ignored,
    #[serde(default, rename = "modifiedDateTime")]
    _modified: Ignored,
}

impl TryFrom<NamedLocationIn> for NamedLocation {
    type Error = String;
    fn try_from(l: NamedLocationIn) -> Result<Self, String> {
        if let Some(t) = l.odata_type.filter(|t| !t.eq_ignore_ascii_case(ODATA_IP_LOCATION)) {
            return Err(format!("named location type {t} is not supported (only {ODATA_IP_LOCATION})"));
        }
        Ok(NamedLocation {
            id: l.id.unwrap_or_default(),
            display_name: l.display_name.unwrap_or_default(),
            ip_ranges: l.ip_ranges,
            is_trusted: l.is_trusted.unwrap_or_default(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpRangeIn {
    #[serde(default, rename = "@odata.type")]
    odata_type: Option<String>,
    cidr_address: IpNet,
}

impl TryFrom<IpRangeIn> for IpRange {
    type Error = String;
    fn try_from(r: IpRangeIn) -> Result<Self, String> {
        let range = IpRange { cidr_address: r.cidr_address };
        match r.odata_type {
            Some(t) if !t.eq_ignore_ascii_case(range.odata_type()) => {
                let expected = if t.eq_ignore_ascii_case(ODATA_V4_RANGE) || t.eq_ignore_ascii_case(ODATA_V6_RANGE) {
                    "its @odata.type has the other address family"
                } else {
                    "only iPv4CidrRange and iPv6CidrRange are supported"
                };
                Err(format!("ip range {} ({t}): {expected}", range.cidr_address))
            }
            _ => Ok(range),
        }
    }
}

#[cfg(test)]
mod tests {
    use ipnet::IpNet;
    use serde_json::json;

    use crate::policy::testkit::*;
    use crate::policy::*;

    fn enabled(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut policy = json!({ "state": "enabled" });
        policy[key] = value;
        policy
    }

    fn graph_policy_json() -> serde_json::Value {
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies/$entity",
            "id": "7359d0e0-d8a9-4afa-8a93-e23e099d7be8",
            "templateId": null,
            "displayName": "Guests: MFA outside partner networks, compliant device on Foo",
            "createdDateTime": "2024-05-01T10:00:00.0000000Z",
            "modifiedDateTime": null,
            "state": "enabledForReportingButNotEnforced",
            "conditions": {
                "userRiskLevels": [],
                "signInRiskLevels": ["high", "medium"],
                "clientAppTypes": ["all"],
                "servicePrincipalRiskLevels": [],
                "insiderRiskLevels": null,
                "platforms": null,
                "clientApplications": null,
                "authenticationFlows": null,
                "times": null,
                "applications": {
                    "includeApplications": ["foo"],
                    "excludeApplications": [],
                    "includeUserActions": [],
                    "includeAuthenticationContextClassReferences": [],
                    "applicationFilter": null
                },
                "users": {
                    "includeUsers": ["GuestsOrExternalUsers"],
                    "excludeUsers": [PARTNER],
                    "includeGroups": [],
                    "excludeGroups": [],
                    "includeRoles": [],
                    "excludeRoles": [],
                    "includeGuestsOrExternalUsers": null,
                    "excludeGuestsOrExternalUsers": null
                },
                "locations": { "includeLocations": ["All"], "excludeLocations": ["AllTrusted"] },
                "devices": {
                    "deviceFilter": {
                        "mode": "exclude",
                        "rule": "device.isCompliant -eq True -or device.trustType -eq \"ServerAD\""
                    }
                }
            },
            "grantControls": {
                "operator": "OR",
                "builtInControls": ["mfa", "compliantDevice"],
                "customAuthenticationFactors": [],
                "termsOfUse": [],
                "authenticationStrength@odata.context": "https://graph.microsoft.com/v1.0/$metadata#...",
                "authenticationStrength": null
            },
            "sessionControls": {
                "applicationEnforcedRestrictions": null,
                "cloudAppSecurity": null,
                "persistentBrowser": null,
                "disableResilienceDefaults": null,
                "signInFrequency": {
                    "value": 12,
                    "type": "hours",
                    "authenticationType": "primaryAndSecondaryAuthentication",
                    "frequencyInterval": "timeBased",
                    "isEnabled": true
                }
            }
        })
    }

    #[test]
    fn parses_a_graph_policy_and_round_trips() {
        let p: Policy = serde_json::from_value(graph_policy_json()).unwrap();
        assert_eq!(p.id, "7359d0e0-d8a9-4afa-8a93-e23e099d7be8");
        assert_eq!(p.state, PolicyState::EnabledForReportingButNotEnforced);
        assert_eq!(p.conditions.users, users(&[GUESTS], &[PARTNER]));
        assert_eq!(p.conditions.applications, apps(&["foo"], &[]));
        assert_eq!(p.conditions.locations, locs(&[ALL], &[ALL_TRUSTED]));
        assert_eq!(p.conditions.sign_in_risk_levels, vec![RiskLevel::High, RiskLevel::Medium]);
        let filter = p.conditions.devices.as_ref().and_then(|d| d.device_filter.as_ref()).unwrap();
        assert_eq!(filter.mode, FilterMode::Exclude);
        assert_eq!(
            p.grant_controls,
            Some(GrantControls {
                operator: GrantOperator::Or,
                built_in_controls: vec![Control::Mfa, Control::CompliantDevice],
                authentication_strength: None,
                terms_of_use: vec![],
            })
        );
        assert_eq!(
            p.session_controls.as_ref().and_then(|s| s.sign_in_frequency.clone()),
            Some(SignInFrequency::time_based(12, FrequencyType::Hours))
        );
        assert_eq!(validate(&p), Ok(()));
        assert_eq!(validate_references(&p, &locations(), &[]), Ok(()));

        let out = serde_json::to_value(&p).unwrap();
        assert_eq!(out["state"], "enabledForReportingButNotEnforced");
        assert_eq!(out["grantControls"]["operator"], "OR");
        assert_eq!(out["sessionControls"]["signInFrequency"]["type"], "hours");
        assert_eq!(out["conditions"]["devices"]["deviceFilter"]["mode"], "exclude");
        assert!(out.get("createdDateTime").is_none(), "read-only fields are not kept");
        let back: Policy = serde_json::from_value(out).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn parses_a_minimal_policy() {
        let p: Policy = serde_json::from_value(json!({
            "displayName": "Require MFA for Foo",
            "state": "enabled",
            "conditions": {
                "users": { "includeUsers": ["All"] },
                "applications": { "includeApplications": ["foo"] },
                "signInRiskLevels": null,
                "locations": { "includeLocations": [], "excludeLocations": null },
                "devices": {}
            },
            "grantControls": { "builtInControls": ["mfa"] }
        }))
        .unwrap();
        assert_eq!(p.id, "");
        assert_eq!(p.grant_controls, grant(GrantOperator::And, &[Control::Mfa]));
        assert_eq!(p.conditions.locations, None, "an empty condition is an absent one");
        assert_eq!(p.conditions.devices, None);
        assert!(p.conditions.sign_in_risk_levels.is_empty());
        assert_eq!(validate(&p), Ok(()));

        let freq: SignInFrequency = serde_json::from_value(json!({ "value": 2, "type": "days" })).unwrap();
        assert!(freq.is_enabled, "a frequency without isEnabled applies");
        let off: SignInFrequency =
            serde_json::from_value(json!({ "isEnabled": false, "value": null, "type": null })).unwrap();
        assert!(!off.is_enabled);
        let states: DevicesCondition =
            serde_json::from_value(json!({ "includeDeviceStates": ["All"], "excludeDeviceStates": ["Compliant"] }))
                .unwrap();
        assert_eq!(states.exclude_devices, strs(&[COMPLIANT]));
    }

    #[test]
    fn groups_parse_and_always_show_as_lists() {
        let p: Policy = serde_json::from_value(enabled(
            "conditions",
            json!({ "users": { "includeUsers": [], "includeGroups": [AUDITORS], "excludeGroups": null } }),
        ))
        .unwrap();
        assert_eq!(p.conditions.users, users_groups(&[], &[], &[AUDITORS], &[]));
        let out = serde_json::to_value(&p).unwrap();
        assert_eq!(
            out["conditions"]["users"],
            json!({ "includeUsers": [], "excludeUsers": [], "includeGroups": [AUDITORS], "excludeGroups": [] })
        );
        assert_eq!(serde_json::from_value::<Policy>(out).unwrap(), p);
        // As Graph, a policy without groups shows them as empty lists.
        let base = serde_json::to_value(base("p1")).unwrap();
        assert_eq!(
            (&base["conditions"]["users"]["includeGroups"], &base["conditions"]["users"]["excludeGroups"]),
            (&json!([]), &json!([]))
        );
    }

    #[test]
    fn rejects_unknown_and_unsupported_policy_input() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("unknown top-level field", json!({ "state": "enabled", "colour": "red" }), "unknown field `colour`"),
            ("missing state", json!({ "displayName": "x" }), "missing field `state`"),
            ("bad state", json!({ "state": "on" }), "unknown variant `on`"),
            ("unknown condition", enabled("conditions", json!({ "weather": "rain" })), "unknown field `weather`"),
            (
                "roles are not supported",
                enabled("conditions", json!({ "users": { "includeRoles": ["r1"] } })),
                "includeRoles is not supported",
            ),
            (
                "groups are lists of ids",
                enabled("conditions", json!({ "users": { "includeGroups": "g1" } })),
                "invalid type",
            ),
            (
                "platforms are not supported",
                enabled("conditions", json!({ "platforms": { "includePlatforms": ["android"] } })),
                "platforms is not supported",
            ),
            (
                "legacy client app types are not supported",
                enabled("conditions", json!({ "clientAppTypes": ["exchangeActiveSync", "other"] })),
                "clientAppTypes",
            ),
            (
                "unknown builtInControls value",
                enabled("grantControls", json!({ "operator": "OR", "builtInControls": ["passwordChange"] })),
                "unknown variant `passwordChange`",
            ),
            (
                "operator required with several controls",
                enabled("grantControls", json!({ "builtInControls": ["mfa", "compliantDevice"] })),
                "operator",
            ),
            (
                "lowercase operator",
                enabled("grantControls", json!({ "operator": "or", "builtInControls": ["mfa"] })),
                "unknown variant `or`",
            ),
            (
                "terms of use are ids, not a string",
                enabled("grantControls", json!({ "operator": "OR", "builtInControls": ["mfa"], "termsOfUse": "t" })),
                "invalid type",
            ),
            (
                "termsOfUse is not a built-in control",
                enabled("grantControls", json!({ "builtInControls": ["termsOfUse"] })),
                "not a built-in control",
            ),
            (
                "empty agreement id",
                enabled("grantControls", json!({ "builtInControls": [], "termsOfUse": [" "] })),
                "agreement id is empty",
            ),
            (
                "unknown persistent browser mode",
                enabled("sessionControls", json!({ "persistentBrowser": { "mode": "sometimes", "isEnabled": true } })),
                "unknown variant `sometimes`",
            ),
            (
                "unknown frequency interval",
                enabled(
                    "sessionControls",
                    json!({ "signInFrequency": { "frequencyInterval": "daily", "isEnabled": true } }),
                ),
                "frequencyInterval",
            ),
            (
                "every-time frequency with a value",
                enabled(
                    "sessionControls",
                    json!({ "signInFrequency": { "frequencyInterval": "everyTime", "value": 1, "type": "hours", "isEnabled": true } }),
                ),
                "must be null with frequencyInterval everyTime",
            ),
            (
                "unknown authentication type",
                enabled(
                    "sessionControls",
                    json!({ "signInFrequency": { "authenticationType": "primaryOnly", "value": 1, "type": "hours" } }),
                ),
                "authenticationType",
            ),
            (
                "enabled frequency without a value",
                enabled("sessionControls", json!({ "signInFrequency": { "isEnabled": true, "type": "hours" } })),
                "needs value and type",
            ),
            (
                "unknown risk level",
                enabled("conditions", json!({ "userRiskLevels": ["extreme"] })),
                "unknown variant `extreme`",
            ),
            (
                "unknown device filter field",
                enabled(
                    "conditions",
                    json!({ "devices": { "deviceFilter": { "mode": "include", "rule": "x", "extra": 1 } } }),
                ),
                "unknown field `extra`",
            ),
        ];
        for (name, input, expected) in cases {
            let err = serde_json::from_value::<Policy>(input).unwrap_err().to_string();
            assert!(err.contains(expected), "case {name}: {err}");
        }
        // The session controls of §12 round-trip in Graph's shape.
        let every = enabled(
            "sessionControls",
            json!({
                "signInFrequency": { "frequencyInterval": "everyTime", "authenticationType": "secondaryAuthentication", "isEnabled": true },
                "persistentBrowser": { "mode": "never", "isEnabled": true }
            }),
        );
        let p: Policy = serde_json::from_value(every).unwrap();
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(
            back["sessionControls"]["signInFrequency"],
            json!({ "value": null, "type": null, "authenticationType": "secondaryAuthentication", "frequencyInterval": "everyTime", "isEnabled": true })
        );
        assert_eq!(back["sessionControls"]["persistentBrowser"], json!({ "mode": "never", "isEnabled": true }));
        assert_eq!(serde_json::from_value::<Policy>(back).unwrap(), p);
        // Disabled session controls are empty, hence accepted.
        let ok = enabled("sessionControls", json!({ "persistentBrowser": { "mode": "never", "isEnabled": false } }));
        assert!(serde_json::from_value::<Policy>(ok).is_ok());
    }

    #[test]
    fn authentication_strength_in_grant_controls() {
        let parse = |grant: serde_json::Value| {
            let mut v = graph_policy_json();
            v["grantControls"] = grant;
            serde_json::from_value::<Policy>(v).map(|p| p.grant_controls.unwrap())
        };
        let g = parse(serde_json::json!({
            "operator": "OR",
            "builtInControls": [],
            "authenticationStrength@odata.context": "https://graph.microsoft.com/v1.0/$metadata#…",
            "authenticationStrength": { "id": "00000000-0000-0000-0000-000000000004", "displayName": "Phishing-resistant MFA" }
        }))
        .unwrap();
        assert_eq!(g.authentication_strength, Some(StrengthRef { id: "00000000-0000-0000-0000-000000000004".into() }));
        assert_eq!(
            serde_json::to_value(&g).unwrap()["authenticationStrength"],
            serde_json::json!({ "id": "00000000-0000-0000-0000-000000000004" })
        );
        for (bad, why) in [
            (
                serde_json::json!({ "builtInControls": ["mfa"], "operator": "AND", "authenticationStrength": { "id": "x" } }),
                "cannot be combined",
            ),
            (serde_json::json!({ "builtInControls": ["authenticationStrength"] }), "not a built-in control"),
            (serde_json::json!({ "authenticationStrength": { "displayName": "x" } }), "id is required"),
            (serde_json::json!({ "authenticationStrength": "x" }), "must be an object"),
            (
                serde_json::json!({ "builtInControls": ["compliantDevice"], "authenticationStrength": { "id": "x" } }),
                "operator",
            ),
        ] {
            let err = parse(bad.clone()).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn named_location_graph_shape() {
        let input = json!({
            "@odata.type": "#microsoft.graph.ipNamedLocation",
            "id": PARTNER_NET,
            "displayName": "Partner network",
            "createdDateTime": "2024-05-01T10:00:00Z",
            "modifiedDateTime": "2024-05-02T10:00:00Z",
            "isTrusted": true,
            "ipRanges": [
                { "@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24" },
                { "@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "2001:db8:1::/48" }
            ]
        });
        let parsed: NamedLocation = serde_json::from_value(input).unwrap();
        assert_eq!(parsed, locations()[0]);
        assert!(parsed.contains("203.0.113.1".parse().unwrap()));
        assert!(parsed.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!parsed.contains("203.0.114.1".parse().unwrap()));

        let out = serde_json::to_value(&parsed).unwrap();
        assert_eq!(
            out,
            json!({
                "@odata.type": "#microsoft.graph.ipNamedLocation",
                "id": PARTNER_NET,
                "displayName": "Partner network",
                "ipRanges": [
                    { "@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24" },
                    { "@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "2001:db8:1::/48" }
                ],
                "isTrusted": true
            })
        );
        assert_eq!(serde_json::from_value::<NamedLocation>(out).unwrap(), parsed);

        // The odata types are optional on input.
        let bare: NamedLocation = serde_json::from_value(json!({
            "displayName": "Branch", "ipRanges": [{ "cidrAddress": "198.51.100.0/24" }]
        }))
        .unwrap();
        assert!(!bare.is_trusted);
        assert_eq!(bare.ip_ranges[0].cidr_address, "198.51.100.0/24".parse::<IpNet>().unwrap());

        let bad: Vec<(serde_json::Value, &str)> = vec![
            (json!({ "displayName": "x", "colour": 1 }), "unknown field `colour`"),
            (
                json!({ "@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "x" }),
                "only #microsoft.graph.ipNamedLocation",
            ),
            (
                json!({ "ipRanges": [{ "@odata.type": ODATA_V4_RANGE, "cidrAddress": "2001:db8::/32" }] }),
                "other address family",
            ),
            (
                json!({ "ipRanges": [{ "@odata.type": "#microsoft.graph.iPv4Range", "cidrAddress": "192.0.2.0/24" }] }),
                "only iPv4CidrRange and iPv6CidrRange",
            ),
            (json!({ "ipRanges": [{ "cidrAddress": "192.0.2.1" }] }), "invalid IP address syntax"),
            (
                json!({ "ipRanges": [{ "cidrAddress": "192.0.2.0/24", "lowerAddress": "x" }] }),
                "unknown field `lowerAddress`",
            ),
        ];
        for (input, expected) in bad {
            let err = serde_json::from_value::<NamedLocation>(input.clone()).unwrap_err().to_string();
            assert!(err.contains(expected), "{input}: {err}");
        }
    }
}
