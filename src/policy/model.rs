//! Conditional access: Policy and named location (Graph shapes).
use std::net::IpAddr;

use ipnet::IpNet;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "wire::PolicyIn")]
pub struct Policy {
    pub id: String,
    pub display_name: String,
    pub state: PolicyState,
    pub conditions: Conditions,
    pub grant_controls: Option<GrantControls>,
    pub session_controls: Option<SessionControls>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyState {
    Enabled,
    Disabled,
    EnabledForReportingButNotEnforced,
}

impl PolicyState {
    pub const ALL: [PolicyState; 3] =
        [PolicyState::Enabled, PolicyState::Disabled, PolicyState::EnabledForReportingButNotEnforced];

    /// The serde (and Graph) name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyState::Enabled => "enabled",
            PolicyState::Disabled => "disabled",
            PolicyState::EnabledForReportingButNotEnforced => "enabledForReportingButNotEnforced",
        }
    }

    pub fn parse(value: &str) -> Option<PolicyState> {
        PolicyState::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "wire::ConditionsIn")]
pub struct Conditions {
    pub users: UsersCondition,
    pub applications: ApplicationsCondition,
    pub locations: Option<LocationsCondition>,
    pub devices: Option<DevicesCondition>,
    pub sign_in_risk_levels: Vec<RiskLevel>,
    pub user_risk_levels: Vec<RiskLevel>,
}

/// Users: `All`, `None`, `GuestsOrExternalUsers`, or user object ids. Groups: group object
/// ids. A user is in scope when included by `includeUsers` or `includeGroups`, and excluded
/// by neither `excludeUsers` nor `excludeGroups` (exclusions win).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "wire::UsersIn")]
pub struct UsersCondition {
    pub include_users: Vec<String>,
    pub exclude_users: Vec<String>,
    pub include_groups: Vec<String>,
    pub exclude_groups: Vec<String>,
}

/// Values: `All`, `None`, or app ids (client ids).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "wire::ApplicationsIn")]
pub struct ApplicationsCondition {
    pub include_applications: Vec<String>,
    pub exclude_applications: Vec<String>,
}

/// Values: `All`, `AllTrusted`, or named location ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocationsCondition {
    #[serde(default, deserialize_with = "wire::null_default")]
    pub include_locations: Vec<String>,
    #[serde(default, deserialize_with = "wire::null_default")]
    pub exclude_locations: Vec<String>,
}

/// Include `All`; exclude `Compliant` / `DomainJoined`; or a device filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevicesCondition {
    #[serde(default, alias = "includeDeviceStates", deserialize_with = "wire::null_default")]
    pub include_devices: Vec<String>,
    #[serde(default, alias = "excludeDeviceStates", deserialize_with = "wire::null_default")]
    pub exclude_devices: Vec<String>,
    #[serde(default)]
    pub device_filter: Option<DeviceFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceFilter {
    pub mode: FilterMode,
    pub rule: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    Include,
    Exclude,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RiskLevel {
    None,
    Low,
    Medium,
    High,
    Hidden,
    UnknownFutureValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "wire::GrantControlsIn")]
pub struct GrantControls {
    pub operator: GrantOperator,
    pub built_in_controls: Vec<Control>,
    /// Graph `authenticationStrength`: the strength (by id) the sign-in's methods must meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_strength: Option<StrengthRef>,
    /// Graph `termsOfUse`: agreement ids the user must have accepted (all of them); counts
    /// as one control under the operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms_of_use: Vec<String>,
}

/// A policy's reference to an authentication strength (built in or the tenant's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrengthRef {
    pub id: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GrantOperator {
    #[default]
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Control {
    Block,
    Mfa,
    CompliantDevice,
    DomainJoinedDevice,
    /// Not one of Graph's `builtInControls`: stands for `grantControls.authenticationStrength`
    /// in decisions (`required`, `enforcedGrantControls`); refused in policy input.
    AuthenticationStrength,
    /// Likewise for `grantControls.termsOfUse` (the agreements to accept).
    TermsOfUse,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "wire::SessionControlsIn")]
pub struct SessionControls {
    pub sign_in_frequency: Option<SignInFrequency>,
    /// Graph `persistentBrowser`: whether the SSO cookie outlives the browser session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_browser: Option<PersistentBrowser>,
}

/// Graph's `persistentBrowserSessionControl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersistentBrowser {
    pub mode: PersistentBrowserMode,
    #[serde(default = "yes")]
    pub is_enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PersistentBrowserMode {
    /// The SSO cookie is kept for the session's lifetime, across browser restarts.
    Always,
    /// The SSO cookie is a browser-session cookie.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "wire::SignInFrequencyIn")]
pub struct SignInFrequency {
    /// With `timeBased`: the period (`value` `type`); unused with `everyTime`.
    pub value: u32,
    pub r#type: FrequencyType,
    pub is_enabled: bool,
    pub authentication_type: FrequencyAuthentication,
    pub frequency_interval: FrequencyInterval,
}

/// Entra never asks again within five minutes, even with `everyTime` (clock skew).
pub const EVERY_TIME_GRACE_SECS: i64 = 300;

impl SignInFrequency {
    /// A time-based frequency of `value` `type` for primary and secondary authentication.
    pub fn time_based(value: u32, r#type: FrequencyType) -> Self {
        Self {
            value,
            r#type,
            is_enabled: true,
            authentication_type: FrequencyAuthentication::PrimaryAndSecondaryAuthentication,
            frequency_interval: FrequencyInterval::TimeBased,
        }
    }

    /// The longest an authentication may be reused under this control.
    pub fn max_age_secs(&self) -> i64 {
        if self.frequency_interval == FrequencyInterval::EveryTime {
            return EVERY_TIME_GRACE_SECS;
        }
        let unit = match self.r#type {
            FrequencyType::Hours => 3600,
            FrequencyType::Days => 86_400,
        };
        i64::from(self.value) * unit
    }
}

/// Graph's shape: `value` and `type` are null with `everyTime`.
impl Serialize for SignInFrequency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let every = self.frequency_interval == FrequencyInterval::EveryTime;
        let mut st = s.serialize_struct("SignInFrequency", 5)?;
        st.serialize_field("value", &(!every).then_some(self.value))?;
        st.serialize_field("type", &(!every).then_some(self.r#type))?;
        st.serialize_field("authenticationType", &self.authentication_type)?;
        st.serialize_field("frequencyInterval", &self.frequency_interval)?;
        st.serialize_field("isEnabled", &self.is_enabled)?;
        st.end()
    }
}

/// What a sign-in frequency asks again: everything, or only the second factor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FrequencyAuthentication {
    #[default]
    PrimaryAndSecondaryAuthentication,
    SecondaryAuthentication,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FrequencyInterval {
    #[default]
    TimeBased,
    EveryTime,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrequencyType {
    #[default]
    Hours,
    Days,
}

/// Graph's `ipNamedLocation`; serialized with its `@odata.type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    tag = "@odata.type",
    rename = "#microsoft.graph.ipNamedLocation",
    try_from = "wire::NamedLocationIn"
)]
pub struct NamedLocation {
    pub id: String,
    pub display_name: String,
    pub ip_ranges: Vec<IpRange>,
    pub is_trusted: bool,
}

impl NamedLocation {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        self.ip_ranges.iter().any(|r| r.cidr_address.contains(&ip))
    }
}

/// Graph's `iPv4CidrRange` / `iPv6CidrRange`; the `@odata.type` follows the address family.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "wire::IpRangeIn")]
pub struct IpRange {
    pub cidr_address: IpNet,
}

impl IpRange {
    pub(super) fn odata_type(&self) -> &'static str {
        match self.cidr_address {
            IpNet::V4(_) => ODATA_V4_RANGE,
            IpNet::V6(_) => ODATA_V6_RANGE,
        }
    }
}

impl Serialize for IpRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("IpRange", 2)?;
        st.serialize_field("@odata.type", self.odata_type())?;
        st.serialize_field("cidrAddress", &self.cidr_address)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_state_as_str_is_the_serde_name() {
        for s in PolicyState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
            assert_eq!(PolicyState::parse(s.as_str()), Some(s));
        }
        assert_eq!(PolicyState::parse("Enabled"), None);
    }
}
