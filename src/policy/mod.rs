//! Conditional access (DESIGN.md §4): Graph-shaped policies and named locations, and
//! [`evaluate`], a pure function of one sign-in and the tenant's policies. No I/O and no
//! clock: the caller passes the age of the authentication it wants to reuse.
//!
//! Input is parsed strictly: unknown fields are rejected, and Graph fields gatehouse does not
//! evaluate (groups, roles, platforms, …) are accepted only when empty or null, so a policy
//! never silently means less than the admin wrote.
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

const ALL: &str = "All";
const NONE: &str = "None";
const GUESTS: &str = "GuestsOrExternalUsers";
const ALL_TRUSTED: &str = "AllTrusted";
const COMPLIANT: &str = "Compliant";
const DOMAIN_JOINED: &str = "DomainJoined";
const SERVER_AD: &str = "ServerAD";
const TRUST_TYPES: [&str; 3] = ["AzureAD", SERVER_AD, "Workplace"];
const ODATA_IP_LOCATION: &str = "#microsoft.graph.ipNamedLocation";
const ODATA_V4_RANGE: &str = "#microsoft.graph.iPv4CidrRange";
const ODATA_V6_RANGE: &str = "#microsoft.graph.iPv6CidrRange";
/// Graph's limit on a device filter rule; also bounds parser work.
const MAX_RULE_LEN: usize = 3072;
/// Bounds parser recursion on hostile input.
const MAX_RULE_DEPTH: usize = 16;

/// Condition names as Graph's `conditionalAccessConditions` flags.
pub mod condition {
    pub const APPLICATION: &str = "application";
    pub const USERS: &str = "users";
    pub const LOCATION: &str = "location";
    pub const SIGN_IN_RISK: &str = "signInRisk";
    pub const USER_RISK: &str = "userRisk";
    pub const DEVICE_STATE: &str = "deviceState";
}

// ---------------------------------------------------------------------------------------------
// Policy and named location (Graph shapes)
// ---------------------------------------------------------------------------------------------

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

/// Values: `All`, `None`, `GuestsOrExternalUsers`, or user object ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "wire::UsersIn")]
pub struct UsersCondition {
    pub include_users: Vec<String>,
    pub exclude_users: Vec<String>,
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
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "wire::SessionControlsIn")]
pub struct SessionControls {
    pub sign_in_frequency: Option<SignInFrequency>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "wire::SignInFrequencyIn")]
pub struct SignInFrequency {
    pub value: u32,
    pub r#type: FrequencyType,
    pub is_enabled: bool,
}

impl SignInFrequency {
    /// The longest an authentication may be reused under this control.
    pub fn max_age_secs(&self) -> i64 {
        let unit = match self.r#type {
            FrequencyType::Hours => 3600,
            FrequencyType::Days => 86_400,
        };
        i64::from(self.value) * unit
    }
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
    fn odata_type(&self) -> &'static str {
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

// ---------------------------------------------------------------------------------------------
// Sign-in context and decision
// ---------------------------------------------------------------------------------------------

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
    unsatisfiable: Vec<usize>,
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

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// Evaluates every policy against one sign-in. Report-only policies are evaluated and reported
/// but never contribute to `block`, `required` or `reauthenticate`.
pub fn evaluate(ctx: &SignInContext, policies: &[Policy], locations: &[NamedLocation]) -> Decision {
    let env = Env { ctx, locations, device: DeviceView::new(ctx) };
    let mut decision = Decision {
        matched_locations: ctx
            .ip
            .map(|ip| locations.iter().filter(|l| l.contains(ip)).map(|l| l.id.clone()).collect())
            .unwrap_or_default(),
        ..Decision::default()
    };

    for policy in policies {
        let enforced = match policy.state {
            PolicyState::Enabled => true,
            PolicyState::EnabledForReportingButNotEnforced => false,
            PolicyState::Disabled => {
                decision.results.push(result(policy, PolicyOutcome::NotEnabled));
                continue;
            }
        };
        let (satisfied, not_satisfied) = check_conditions(&policy.conditions, &env);
        let mut res =
            result(policy, if enforced { PolicyOutcome::NotApplied } else { PolicyOutcome::ReportOnlyNotApplied });
        res.conditions_satisfied = satisfied;
        res.conditions_not_satisfied = not_satisfied;
        if !res.conditions_not_satisfied.is_empty() {
            decision.results.push(res);
            continue;
        }

        let grant = policy.grant_controls.as_ref();
        res.enforced_grant_controls = grant.map(|g| g.built_in_controls.clone()).unwrap_or_default();
        let frequency = policy.session_controls.as_ref().and_then(|s| s.sign_in_frequency.as_ref());
        if let Some(f) = frequency.filter(|f| f.is_enabled) {
            res.enforced_session_controls.push("signInFrequency".to_owned());
            if enforced && ctx.auth_age_secs.is_some_and(|age| age > f.max_age_secs()) {
                decision.reauthenticate = true;
            }
        }

        res.result = match (grant_state(grant, env.have()), enforced) {
            (GrantState::Satisfied, true) => PolicyOutcome::Success,
            (GrantState::Satisfied, false) => PolicyOutcome::ReportOnlySuccess,
            (GrantState::Blocked, true) => {
                decision.block.push(policy.id.clone());
                PolicyOutcome::Failure
            }
            (GrantState::Blocked, false) => PolicyOutcome::ReportOnlyFailure,
            (GrantState::Unmet { required, mfa_fixes }, true) => {
                decision.required.extend(required);
                if !mfa_fixes {
                    decision.unsatisfiable.push(decision.results.len());
                }
                PolicyOutcome::Failure
            }
            (GrantState::Unmet { mfa_fixes: true, .. }, false) => PolicyOutcome::ReportOnlyInterrupted,
            (GrantState::Unmet { mfa_fixes: false, .. }, false) => PolicyOutcome::ReportOnlyFailure,
        };
        decision.results.push(res);
    }
    decision
}

fn result(policy: &Policy, outcome: PolicyOutcome) -> PolicyResult {
    PolicyResult {
        id: policy.id.clone(),
        display_name: policy.display_name.clone(),
        result: outcome,
        enforced_grant_controls: Vec::new(),
        enforced_session_controls: Vec::new(),
        conditions_satisfied: Vec::new(),
        conditions_not_satisfied: Vec::new(),
    }
}

struct Env<'a> {
    ctx: &'a SignInContext,
    locations: &'a [NamedLocation],
    device: DeviceView<'a>,
}

impl Env<'_> {
    fn have(&self) -> Have {
        Have {
            mfa: self.ctx.satisfied.mfa,
            compliant: self.device.compliant,
            domain_joined: self.device.domain_joined(),
        }
    }
}

/// The device as policies see it: registered state OR'ed with what inbound trust vouches for.
#[derive(Debug, Clone, Copy, Default)]
struct DeviceView<'a> {
    compliant: bool,
    managed: bool,
    trust_type: Option<&'a str>,
}

impl<'a> DeviceView<'a> {
    fn new(ctx: &'a SignInContext) -> Self {
        let device = ctx.device.as_ref();
        let trust_type = if ctx.satisfied.domain_joined_device {
            Some(SERVER_AD)
        } else {
            device.and_then(|d| d.trust_type.as_deref())
        };
        Self {
            compliant: device.is_some_and(|d| d.is_compliant) || ctx.satisfied.compliant_device,
            managed: device.is_some_and(|d| d.is_managed),
            trust_type,
        }
    }

    fn domain_joined(&self) -> bool {
        self.trust_type.is_some_and(|t| t.eq_ignore_ascii_case(SERVER_AD))
    }
}

/// Returns (satisfied, not satisfied) condition names, in Graph's flag order.
fn check_conditions(c: &Conditions, env: &Env) -> (Vec<String>, Vec<String>) {
    let ctx = env.ctx;
    let mut checks: Vec<(&str, bool)> = vec![
        (
            condition::APPLICATION,
            included(&c.applications.include_applications, &c.applications.exclude_applications, |v| {
                app_matches(v, ctx)
            }),
        ),
        (condition::USERS, included(&c.users.include_users, &c.users.exclude_users, |v| user_matches(v, ctx))),
    ];
    if let Some(l) = &c.locations {
        checks.push((condition::LOCATION, location_condition(l, env)));
    }
    // Guests' risk is evaluated at their home organisation, so risk policies skip them.
    if !c.sign_in_risk_levels.is_empty() {
        let hit = !ctx.is_guest && ctx.sign_in_risk.is_some_and(|r| c.sign_in_risk_levels.contains(&r));
        checks.push((condition::SIGN_IN_RISK, hit));
    }
    if !c.user_risk_levels.is_empty() {
        let hit = !ctx.is_guest && ctx.user_risk.is_some_and(|r| c.user_risk_levels.contains(&r));
        checks.push((condition::USER_RISK, hit));
    }
    if let Some(d) = &c.devices {
        checks.push((condition::DEVICE_STATE, device_condition(d, &env.device)));
    }
    let (yes, no): (Vec<_>, Vec<_>) = checks.into_iter().partition(|(_, ok)| *ok);
    (yes.into_iter().map(|(n, _)| n.to_owned()).collect(), no.into_iter().map(|(n, _)| n.to_owned()).collect())
}

/// Exclusions always win over inclusions.
fn included(include: &[String], exclude: &[String], matches: impl Fn(&str) -> bool) -> bool {
    include.iter().any(|v| matches(v)) && !exclude.iter().any(|v| matches(v))
}

fn user_matches(value: &str, ctx: &SignInContext) -> bool {
    if value.eq_ignore_ascii_case(ALL) {
        true
    } else if value.eq_ignore_ascii_case(NONE) {
        false
    } else if value.eq_ignore_ascii_case(GUESTS) {
        ctx.is_guest
    } else {
        // Object ids are UUIDs, whose text form is case-insensitive.
        !value.is_empty() && value.eq_ignore_ascii_case(&ctx.user_id)
    }
}

fn app_matches(value: &str, ctx: &SignInContext) -> bool {
    if value.eq_ignore_ascii_case(ALL) {
        true
    } else if value.eq_ignore_ascii_case(NONE) {
        false
    } else {
        // OAuth client ids are case-sensitive.
        !value.is_empty() && value == ctx.app_id
    }
}

fn location_condition(l: &LocationsCondition, env: &Env) -> bool {
    let matches = |v: &str| location_matches(v, env);
    // Graph requires includeLocations; without it read "everywhere" so the condition only narrows.
    let include_ok = l.include_locations.is_empty() || l.include_locations.iter().any(|v| matches(v));
    include_ok && !l.exclude_locations.iter().any(|v| matches(v))
}

fn location_matches(value: &str, env: &Env) -> bool {
    if value.eq_ignore_ascii_case(ALL) {
        return true;
    }
    let Some(ip) = env.ctx.ip else { return false };
    if value.eq_ignore_ascii_case(ALL_TRUSTED) {
        env.locations.iter().any(|l| l.is_trusted && l.contains(ip))
    } else {
        env.locations.iter().any(|l| !l.id.is_empty() && l.id.eq_ignore_ascii_case(value) && l.contains(ip))
    }
}

fn device_condition(d: &DevicesCondition, device: &DeviceView) -> bool {
    // A filter-only condition has no includeDevices: it covers all devices.
    let mut include_ok = d.include_devices.is_empty() || d.include_devices.iter().any(|v| v.eq_ignore_ascii_case(ALL));
    let mut excluded = d.exclude_devices.iter().any(|v| {
        (v.eq_ignore_ascii_case(COMPLIANT) && device.compliant)
            || (v.eq_ignore_ascii_case(DOMAIN_JOINED) && device.domain_joined())
    });
    if let Some(filter) = &d.device_filter {
        // An unparsable rule matches no device (validate() rejects it on write).
        let hit = parse_rule(&filter.rule).is_ok_and(|rule| rule.eval(device));
        match filter.mode {
            FilterMode::Include => include_ok &= hit,
            FilterMode::Exclude => excluded |= hit,
        }
    }
    include_ok && !excluded
}

#[derive(Debug, Clone, Copy)]
struct Have {
    mfa: bool,
    compliant: bool,
    domain_joined: bool,
}

impl Have {
    fn has(self, control: Control) -> bool {
        match control {
            Control::Block => false,
            Control::Mfa => self.mfa,
            Control::CompliantDevice => self.compliant,
            Control::DomainJoinedDevice => self.domain_joined,
        }
    }
}

enum GrantState {
    Satisfied,
    Blocked,
    Unmet { required: Vec<Vec<Control>>, mfa_fixes: bool },
}

fn grant_state(grant: Option<&GrantControls>, have: Have) -> GrantState {
    let Some(grant) = grant else { return GrantState::Satisfied };
    if grant.built_in_controls.contains(&Control::Block) {
        return GrantState::Blocked;
    }
    if grant_met(grant, have) {
        return GrantState::Satisfied;
    }
    let required = match grant.operator {
        GrantOperator::And => grant.built_in_controls.iter().filter(|c| !have.has(**c)).map(|c| vec![*c]).collect(),
        GrantOperator::Or => vec![grant.built_in_controls.clone()],
    };
    GrantState::Unmet { required, mfa_fixes: grant_met(grant, Have { mfa: true, ..have }) }
}

fn grant_met(grant: &GrantControls, have: Have) -> bool {
    let controls = &grant.built_in_controls;
    controls.is_empty()
        || match grant.operator {
            GrantOperator::And => controls.iter().all(|c| have.has(*c)),
            GrantOperator::Or => controls.iter().any(|c| have.has(*c)),
        }
}

// ---------------------------------------------------------------------------------------------
// Validation (on write; evaluation never fails)
// ---------------------------------------------------------------------------------------------

/// Checks a policy for combinations gatehouse (or Graph) rejects. All problems are reported,
/// joined by "; ". Unknown `builtInControls` values are already rejected when parsing.
pub fn validate(policy: &Policy) -> Result<(), String> {
    let mut errors: Vec<String> = Vec::new();
    let c = &policy.conditions;
    if policy.display_name.trim().is_empty() {
        errors.push("displayName is required".into());
    }

    let users = &c.users;
    if users.include_users.is_empty() {
        errors.push("conditions.users.includeUsers is empty".into());
    }
    for v in users.include_users.iter().chain(&users.exclude_users) {
        let keyword = [ALL, NONE, GUESTS].iter().any(|k| v.eq_ignore_ascii_case(k));
        if !keyword && uuid::Uuid::parse_str(v).is_err() {
            errors.push(format!("conditions.users: {v:?} is neither All, None, {GUESTS} nor a user object id"));
        }
    }
    keyword_rules(
        "conditions.users.includeUsers",
        "conditions.users.excludeUsers",
        &users.include_users,
        &users.exclude_users,
        &mut errors,
    );

    let apps = &c.applications;
    if apps.include_applications.is_empty() {
        errors.push("conditions.applications.includeApplications is empty".into());
    }
    if apps.include_applications.iter().chain(&apps.exclude_applications).any(|v| v.trim().is_empty()) {
        errors.push("conditions.applications: empty application id".into());
    }
    keyword_rules(
        "conditions.applications.includeApplications",
        "conditions.applications.excludeApplications",
        &apps.include_applications,
        &apps.exclude_applications,
        &mut errors,
    );

    if let Some(l) = &c.locations {
        if l.include_locations.is_empty() && !l.exclude_locations.is_empty() {
            errors.push("conditions.locations.includeLocations is required with excludeLocations".into());
        }
        if l.exclude_locations.iter().any(|v| v.eq_ignore_ascii_case(ALL)) {
            errors.push("conditions.locations.excludeLocations cannot contain All".into());
        }
        if l.include_locations.iter().chain(&l.exclude_locations).any(|v| v.trim().is_empty()) {
            errors.push("conditions.locations: empty location id".into());
        }
    }

    if let Some(d) = &c.devices {
        for v in d.include_devices.iter().filter(|v| !v.eq_ignore_ascii_case(ALL)) {
            errors.push(format!("conditions.devices.includeDevices: {v:?} is not supported (only All)"));
        }
        for v in
            d.exclude_devices.iter().filter(|v| ![COMPLIANT, DOMAIN_JOINED].iter().any(|k| v.eq_ignore_ascii_case(k)))
        {
            errors.push(format!("conditions.devices.excludeDevices: {v:?} is not supported (Compliant, DomainJoined)"));
        }
        if let Some(filter) = &d.device_filter {
            if !d.include_devices.is_empty() || !d.exclude_devices.is_empty() {
                errors.push(
                    "conditions.devices: deviceFilter cannot be combined with includeDevices/excludeDevices".into(),
                );
            }
            if let Err(e) = parse_rule(&filter.rule) {
                errors.push(format!("conditions.devices.deviceFilter.rule: {e}"));
            }
        }
    }

    for (name, levels) in [("signInRiskLevels", &c.sign_in_risk_levels), ("userRiskLevels", &c.user_risk_levels)] {
        if levels.iter().any(|l| matches!(l, RiskLevel::Hidden | RiskLevel::UnknownFutureValue)) {
            errors.push(format!("conditions.{name}: only none, low, medium and high can be configured"));
        }
    }

    let grants = policy.grant_controls.as_ref().map(|g| g.built_in_controls.as_slice()).unwrap_or_default();
    if policy.grant_controls.is_some() && grants.is_empty() {
        errors.push("grantControls.builtInControls is empty".into());
    }
    if grants.contains(&Control::Block) && grants.len() > 1 {
        errors.push("grantControls: block cannot be combined with other controls".into());
    }
    let frequency =
        policy.session_controls.as_ref().and_then(|s| s.sign_in_frequency.as_ref()).filter(|f| f.is_enabled);
    if let Some(f) = frequency {
        let range = match f.r#type {
            FrequencyType::Hours => 1..=23,
            FrequencyType::Days => 1..=365,
        };
        if !range.contains(&f.value) {
            errors.push(format!(
                "sessionControls.signInFrequency.value must be {}..={} {}",
                range.start(),
                range.end(),
                if f.r#type == FrequencyType::Hours { "hours" } else { "days" }
            ));
        }
    }
    if grants.is_empty() && frequency.is_none() {
        errors.push("a policy needs grantControls or an enabled sessionControls.signInFrequency".into());
    }

    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

/// `None` combined with other values is contradictory; excluding `All` excludes everyone.
fn keyword_rules(
    include_name: &str,
    exclude_name: &str,
    include: &[String],
    exclude: &[String],
    errors: &mut Vec<String>,
) {
    if include.len() > 1 && include.iter().any(|v| v.eq_ignore_ascii_case(NONE)) {
        errors.push(format!("{include_name}: None cannot be combined with other values"));
    }
    if exclude.iter().any(|v| v.eq_ignore_ascii_case(ALL)) {
        errors.push(format!("{exclude_name} cannot contain All"));
    }
}

/// Checks that every named location id a policy references exists: a dangling id never
/// matches, which would silently narrow an include or widen an exclude.
pub fn validate_references(policy: &Policy, locations: &[NamedLocation]) -> Result<(), String> {
    let Some(l) = &policy.conditions.locations else { return Ok(()) };
    let missing: Vec<&str> = l
        .include_locations
        .iter()
        .chain(&l.exclude_locations)
        .map(String::as_str)
        .filter(|v| !v.eq_ignore_ascii_case(ALL) && !v.eq_ignore_ascii_case(ALL_TRUSTED))
        .filter(|v| !locations.iter().any(|n| n.id.eq_ignore_ascii_case(v)))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("unknown named location(s): {}", missing.join(", "))) }
}

// ---------------------------------------------------------------------------------------------
// Device filter rules: `device.isCompliant -eq True -and (device.trustType -eq "AzureAD" -or …)`
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Is { attr: Attr, equal: bool },
    And(Vec<Rule>),
    Or(Vec<Rule>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    Compliant(bool),
    Managed(bool),
    TrustType(&'static str),
}

impl Rule {
    fn eval(&self, d: &DeviceView) -> bool {
        match self {
            Rule::Is { attr, equal } => attr.holds(d) == *equal,
            Rule::And(rules) => rules.iter().all(|r| r.eval(d)),
            Rule::Or(rules) => rules.iter().any(|r| r.eval(d)),
        }
    }
}

impl Attr {
    fn holds(self, d: &DeviceView) -> bool {
        match self {
            Attr::Compliant(v) => d.compliant == v,
            Attr::Managed(v) => d.managed == v,
            Attr::TrustType(v) => d.trust_type.is_some_and(|t| t.eq_ignore_ascii_case(v)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Word(String),
    Quoted(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Open => f.write_str("("),
            Tok::Close => f.write_str(")"),
            Tok::Word(w) => f.write_str(w),
            Tok::Quoted(q) => write!(f, "\"{q}\""),
        }
    }
}

fn lex(rule: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = rule.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            chars.next();
            toks.push(if c == '(' { Tok::Open } else { Tok::Close });
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(q) if q == c => break,
                    Some(ch) => text.push(ch),
                    None => return Err("unterminated quoted value".into()),
                }
            }
            toks.push(Tok::Quoted(text));
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || matches!(ch, '(' | ')' | '"' | '\'') {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            toks.push(Tok::Word(word));
        }
    }
    Ok(toks)
}

/// `-and` binds tighter than `-or`; both associate left to right; parentheses group.
fn parse_rule(rule: &str) -> Result<Rule, String> {
    if rule.len() > MAX_RULE_LEN {
        return Err(format!("rule is longer than {MAX_RULE_LEN} characters"));
    }
    let toks = lex(rule)?;
    if toks.is_empty() {
        return Err("rule is empty".into());
    }
    let mut parser = RuleParser { toks, pos: 0 };
    let parsed = parser.or(0)?;
    match parser.toks.get(parser.pos) {
        None => Ok(parsed),
        Some(t) => Err(format!("unexpected {t}")),
    }
}

struct RuleParser {
    toks: Vec<Tok>,
    pos: usize,
}

impl RuleParser {
    fn next(&mut self) -> Option<Tok> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn eat(&mut self, op: &str) -> bool {
        let hit = matches!(self.toks.get(self.pos), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(op));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn or(&mut self, depth: usize) -> Result<Rule, String> {
        let mut rules = vec![self.and(depth)?];
        while self.eat("-or") {
            rules.push(self.and(depth)?);
        }
        Ok(Rule::Or(rules))
    }

    fn and(&mut self, depth: usize) -> Result<Rule, String> {
        let mut rules = vec![self.term(depth)?];
        while self.eat("-and") {
            rules.push(self.term(depth)?);
        }
        Ok(Rule::And(rules))
    }

    fn term(&mut self, depth: usize) -> Result<Rule, String> {
        match self.next() {
            Some(Tok::Open) => {
                if depth >= MAX_RULE_DEPTH {
                    return Err(format!("parentheses nested deeper than {MAX_RULE_DEPTH}"));
                }
                let inner = self.or(depth + 1)?;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    _ => Err("missing )".into()),
                }
            }
            Some(Tok::Word(property)) if !property.starts_with('-') => {
                let equal = match self.next() {
                    Some(Tok::Word(op)) if op.eq_ignore_ascii_case("-eq") => true,
                    Some(Tok::Word(op)) if op.eq_ignore_ascii_case("-ne") => false,
                    Some(t) => return Err(format!("unsupported operator {t} (use -eq or -ne)")),
                    None => return Err(format!("expected -eq or -ne after {property}")),
                };
                let value = match self.next() {
                    Some(Tok::Word(v) | Tok::Quoted(v)) if !v.starts_with('-') => v,
                    _ => return Err(format!("expected a value after {property}")),
                };
                Ok(Rule::Is { attr: attr(&property, &value)?, equal })
            }
            Some(t) => Err(format!("unexpected {t}")),
            None => Err("unexpected end of rule".into()),
        }
    }
}

fn attr(property: &str, value: &str) -> Result<Attr, String> {
    let boolean = || {
        if value.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if value.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(format!("{property} compares with True or False, not {value:?}"))
        }
    };
    match property.to_ascii_lowercase().as_str() {
        "device.iscompliant" => boolean().map(Attr::Compliant),
        "device.ismanaged" => boolean().map(Attr::Managed),
        "device.trusttype" => TRUST_TYPES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(value))
            .map(|t| Attr::TrustType(t))
            .ok_or_else(|| format!("device.trustType is AzureAD, ServerAD or Workplace, not {value:?}")),
        _ => Err(format!("unsupported property {property} (device.isCompliant, device.isManaged, device.trustType)")),
    }
}

// ---------------------------------------------------------------------------------------------
// Serde helpers and Graph input shapes
// ---------------------------------------------------------------------------------------------

/// Graph's multi-valued `conditionalAccessConditions` enum: `"application,users"` or `"none"`.
/// Arrays are accepted on input too.
mod condition_flags {
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

/// Input-side mirrors of the Graph shapes: the extra fields exist only to be accepted when
/// empty (or ignored when read-only), then dropped.
mod wire {
    use ipnet::IpNet;
    use serde::de::IgnoredAny;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    use super::{
        ApplicationsCondition, Conditions, Control, DevicesCondition, FrequencyType, GrantControls, GrantOperator,
        IpRange, LocationsCondition, NamedLocation, ODATA_IP_LOCATION, ODATA_V4_RANGE, ODATA_V6_RANGE, Policy,
        PolicyState, RiskLevel, SessionControls, SignInFrequency, UsersCondition,
    };

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
            let devices = c.devices.filter(|d| {
                !d.include_devices.is_empty() || !d.exclude_devices.is_empty() || d.device_filter.is_some()
            });
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
        #[serde(default)]
        include_groups: Extra,
        #[serde(default)]
        exclude_groups: Extra,
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
                ("includeGroups", &u.include_groups),
                ("excludeGroups", &u.exclude_groups),
                ("includeRoles", &u.include_roles),
                ("excludeRoles", &u.exclude_roles),
                ("includeGuestsOrExternalUsers", &u.include_guests_or_external_users),
                ("excludeGuestsOrExternalUsers", &u.exclude_guests_or_external_users),
            ])?;
            Ok(UsersCondition { include_users: u.include_users, exclude_users: u.exclude_users })
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
        terms_of_use: Extra,
        #[serde(default)]
        authentication_strength: Extra,
        #[serde(default, rename = "authenticationStrength@odata.context")]
        _strength_context: Ignored,
    }

    impl TryFrom<GrantControlsIn> for GrantControls {
        type Error = String;
        fn try_from(g: GrantControlsIn) -> Result<Self, String> {
            unsupported(&[
                ("customAuthenticationFactors", &g.custom_authentication_factors),
                ("termsOfUse", &g.terms_of_use),
                ("authenticationStrength", &g.authentication_strength),
            ])?;
            // With one control the operator is moot; with more, guessing could loosen the policy.
            let operator = match (g.operator, g.built_in_controls.len()) {
                (Some(op), _) => op,
                (None, 0 | 1) => GrantOperator::And,
                (None, _) => return Err("grantControls.operator (AND or OR) is required with several controls".into()),
            };
            Ok(GrantControls { operator, built_in_controls: g.built_in_controls })
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
        persistent_browser: Extra,
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
                ("persistentBrowser", &s.persistent_browser),
                ("secureSignInSession", &s.secure_sign_in_session),
            ])?;
            Ok(SessionControls { sign_in_frequency: s.sign_in_frequency })
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
            if f.authentication_type.as_deref().is_some_and(|t| t != "primaryAndSecondaryAuthentication") {
                return Err("signInFrequency.authenticationType must be primaryAndSecondaryAuthentication".into());
            }
            if f.frequency_interval.as_deref().is_some_and(|t| t != "timeBased") {
                return Err("signInFrequency.frequencyInterval must be timeBased".into());
            }
            // A frequency written without isEnabled is meant to apply.
            let is_enabled = f.is_enabled.unwrap_or(f.value.is_some());
            match (is_enabled, f.value, f.r#type) {
                (true, Some(value), Some(r#type)) => Ok(SignInFrequency { value, r#type, is_enabled }),
                (true, _, _) => Err("signInFrequency needs value and type when enabled".into()),
                (false, value, r#type) => Ok(SignInFrequency {
                    value: value.unwrap_or_default(),
                    r#type: r#type.unwrap_or_default(),
                    is_enabled,
                }),
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALICE: &str = "a11ce000-0000-4000-8000-000000000001"; // member
    const SALLY: &str = "5a11e000-0000-4000-8000-000000000002"; // guest
    const PARTNER: &str = "9a27e000-0000-4000-8000-000000000003"; // excluded guest
    const PARTNER_NET: &str = "c0ffee00-0000-4000-8000-00000000000a";
    const BRANCH: &str = "c0ffee00-0000-4000-8000-00000000000b";

    fn locations() -> Vec<NamedLocation> {
        let range = |c: &str| IpRange { cidr_address: c.parse().unwrap() };
        vec![
            NamedLocation {
                id: PARTNER_NET.into(),
                display_name: "Partner network".into(),
                ip_ranges: vec![range("203.0.113.0/24"), range("2001:db8:1::/48")],
                is_trusted: true,
            },
            NamedLocation {
                id: BRANCH.into(),
                display_name: "Branch".into(),
                ip_ranges: vec![range("198.51.100.0/24"), range("2001:db8:2::/48")],
                is_trusted: false,
            },
        ]
    }

    fn member() -> SignInContext {
        SignInContext { user_id: ALICE.into(), app_id: "foo".into(), ..Default::default() }
    }

    fn guest() -> SignInContext {
        SignInContext { user_id: SALLY.into(), is_guest: true, app_id: "foo".into(), ..Default::default() }
    }

    fn with(ctx: SignInContext, f: impl FnOnce(&mut SignInContext)) -> SignInContext {
        let mut ctx = ctx;
        f(&mut ctx);
        ctx
    }

    fn device(compliant: bool, managed: bool, trust: Option<&str>) -> Option<DeviceState> {
        Some(DeviceState {
            id: "dev-1".into(),
            is_managed: managed,
            is_compliant: compliant,
            trust_type: trust.map(str::to_owned),
        })
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Enabled, All users, All apps, grant AND [mfa]: applies ⇒ Failure for a sign-in without MFA.
    fn base(id: &str) -> Policy {
        Policy {
            id: id.into(),
            display_name: format!("Policy {id}"),
            state: PolicyState::Enabled,
            conditions: Conditions {
                users: UsersCondition { include_users: strs(&[ALL]), exclude_users: vec![] },
                applications: ApplicationsCondition {
                    include_applications: strs(&[ALL]),
                    exclude_applications: vec![],
                },
                ..Default::default()
            },
            grant_controls: Some(GrantControls { operator: GrantOperator::And, built_in_controls: vec![Control::Mfa] }),
            session_controls: None,
        }
    }

    fn pol(f: impl FnOnce(&mut Policy)) -> Policy {
        let mut p = base("p1");
        f(&mut p);
        p
    }

    fn grant(op: GrantOperator, controls: &[Control]) -> Option<GrantControls> {
        Some(GrantControls { operator: op, built_in_controls: controls.to_vec() })
    }

    fn users(include: &[&str], exclude: &[&str]) -> UsersCondition {
        UsersCondition { include_users: strs(include), exclude_users: strs(exclude) }
    }

    fn apps(include: &[&str], exclude: &[&str]) -> ApplicationsCondition {
        ApplicationsCondition { include_applications: strs(include), exclude_applications: strs(exclude) }
    }

    fn locs(include: &[&str], exclude: &[&str]) -> Option<LocationsCondition> {
        Some(LocationsCondition { include_locations: strs(include), exclude_locations: strs(exclude) })
    }

    fn devs(include: &[&str], exclude: &[&str], filter: Option<(FilterMode, &str)>) -> Option<DevicesCondition> {
        Some(DevicesCondition {
            include_devices: strs(include),
            exclude_devices: strs(exclude),
            device_filter: filter.map(|(mode, rule)| DeviceFilter { mode, rule: rule.into() }),
        })
    }

    fn by_users(include: &[&str], exclude: &[&str]) -> Policy {
        pol(|p| p.conditions.users = users(include, exclude))
    }

    fn by_apps(include: &[&str], exclude: &[&str]) -> Policy {
        pol(|p| p.conditions.applications = apps(include, exclude))
    }

    fn by_locs(include: &[&str], exclude: &[&str]) -> Policy {
        pol(|p| p.conditions.locations = locs(include, exclude))
    }

    fn by_devs(include: &[&str], exclude: &[&str], filter: Option<(FilterMode, &str)>) -> Policy {
        pol(|p| p.conditions.devices = devs(include, exclude, filter))
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn eval(ctx: &SignInContext, policies: &[Policy]) -> Decision {
        evaluate(ctx, policies, &locations())
    }

    fn outcome(ctx: &SignInContext, policy: Policy) -> PolicyOutcome {
        eval(ctx, &[policy]).results[0].result
    }

    use PolicyOutcome::{
        Failure, NotApplied, NotEnabled, ReportOnlyFailure, ReportOnlyInterrupted, ReportOnlyNotApplied,
        ReportOnlySuccess, Success,
    };

    fn run(cases: Vec<(&str, Policy, SignInContext, PolicyOutcome)>) {
        for (name, policy, ctx, expected) in cases {
            assert_eq!(outcome(&ctx, policy), expected, "case: {name}");
        }
    }

    #[test]
    fn users_condition() {
        let upper = ALICE.to_ascii_uppercase();
        run(vec![
            ("All matches a member", by_users(&[ALL], &[]), member(), Failure),
            ("All matches a guest", by_users(&[ALL], &[]), guest(), Failure),
            ("None matches nobody", by_users(&[NONE], &[]), member(), NotApplied),
            ("empty include matches nobody", by_users(&[], &[]), member(), NotApplied),
            ("Guests matches a guest", by_users(&[GUESTS], &[]), guest(), Failure),
            ("Guests skips a member", by_users(&[GUESTS], &[]), member(), NotApplied),
            ("id matches that user", by_users(&[ALICE], &[]), member(), Failure),
            ("id skips another user", by_users(&[ALICE], &[]), guest(), NotApplied),
            ("ids compare case-insensitively", by_users(&[&upper], &[]), member(), Failure),
            ("keywords compare case-insensitively", by_users(&["all"], &[]), member(), Failure),
            ("exclude id wins over All", by_users(&[ALL], &[ALICE]), member(), NotApplied),
            ("exclude id wins over same id", by_users(&[ALICE], &[ALICE]), member(), NotApplied),
            ("exclude other id", by_users(&[ALL], &[SALLY]), member(), Failure),
            ("exclude Guests wins over guest id", by_users(&[SALLY], &[GUESTS]), guest(), NotApplied),
            ("exclude Guests keeps members", by_users(&[ALL], &[GUESTS]), member(), Failure),
            ("empty user id never matches", by_users(&[""], &[]), with(member(), |c| c.user_id.clear()), NotApplied),
        ]);
    }

    #[test]
    fn applications_condition() {
        let bar = with(member(), |c| c.app_id = "bar".into());
        run(vec![
            ("All matches", by_apps(&[ALL], &[]), member(), Failure),
            ("None matches nothing", by_apps(&[NONE], &[]), member(), NotApplied),
            ("id matches", by_apps(&["foo"], &[]), member(), Failure),
            ("other id", by_apps(&["foo"], &[]), bar.clone(), NotApplied),
            ("one of several ids", by_apps(&["baz", "bar"], &[]), bar.clone(), Failure),
            ("client ids are case-sensitive", by_apps(&["Foo"], &[]), member(), NotApplied),
            ("exclude wins over All", by_apps(&[ALL], &["foo"]), member(), NotApplied),
            ("exclude wins over id", by_apps(&["foo"], &["foo"]), member(), NotApplied),
            ("exclude other app", by_apps(&[ALL], &["foo"]), bar, Failure),
            ("empty include", by_apps(&[], &[]), member(), NotApplied),
        ]);
    }

    #[test]
    fn locations_condition() {
        let at = |addr: &str| with(member(), |c| c.ip = ip(addr));
        let unknown = member();
        run(vec![
            ("not configured: any IP", base("p1"), at("192.0.2.1"), Failure),
            ("not configured: unknown IP", base("p1"), unknown.clone(), Failure),
            ("All: any IP", by_locs(&[ALL], &[]), at("192.0.2.1"), Failure),
            ("All: unknown IP", by_locs(&[ALL], &[]), unknown.clone(), Failure),
            ("AllTrusted: trusted v4", by_locs(&[ALL_TRUSTED], &[]), at("203.0.113.9"), Failure),
            ("AllTrusted: trusted v6", by_locs(&[ALL_TRUSTED], &[]), at("2001:db8:1::5"), Failure),
            ("AllTrusted: v4-mapped v6 peer", by_locs(&[ALL_TRUSTED], &[]), at("::ffff:203.0.113.9"), Failure),
            ("AllTrusted: untrusted location", by_locs(&[ALL_TRUSTED], &[]), at("198.51.100.1"), NotApplied),
            ("AllTrusted: nowhere", by_locs(&[ALL_TRUSTED], &[]), at("192.0.2.1"), NotApplied),
            ("AllTrusted: unknown IP", by_locs(&[ALL_TRUSTED], &[]), unknown.clone(), NotApplied),
            ("id: inside v4", by_locs(&[BRANCH], &[]), at("198.51.100.77"), Failure),
            ("id: inside v6", by_locs(&[BRANCH], &[]), at("2001:db8:2:ffff::1"), Failure),
            ("id: outside v6", by_locs(&[BRANCH], &[]), at("2001:db8:3::1"), NotApplied),
            ("id: another location", by_locs(&[BRANCH], &[]), at("203.0.113.9"), NotApplied),
            ("id: unknown IP", by_locs(&[BRANCH], &[]), unknown.clone(), NotApplied),
            ("id: dangling id", by_locs(&["gone"], &[]), at("203.0.113.9"), NotApplied),
            ("exclude AllTrusted: from trusted", by_locs(&[ALL], &[ALL_TRUSTED]), at("203.0.113.9"), NotApplied),
            ("exclude AllTrusted: elsewhere", by_locs(&[ALL], &[ALL_TRUSTED]), at("192.0.2.1"), Failure),
            ("exclude AllTrusted: unknown IP", by_locs(&[ALL], &[ALL_TRUSTED]), unknown.clone(), Failure),
            ("exclude id wins", by_locs(&[ALL], &[BRANCH]), at("2001:db8:2::1"), NotApplied),
            ("exclude id elsewhere", by_locs(&[ALL], &[BRANCH]), at("203.0.113.9"), Failure),
            ("exclude id wins over include same id", by_locs(&[BRANCH], &[BRANCH]), at("198.51.100.1"), NotApplied),
            ("exclude All: unknown IP", by_locs(&[ALL], &[ALL]), unknown, NotApplied),
            ("exclude only: read as include All", by_locs(&[], &[BRANCH]), at("192.0.2.1"), Failure),
        ]);
    }

    #[test]
    fn devices_condition() {
        let on = |d: Option<DeviceState>| with(guest(), |c| c.device = d);
        let compliant = on(device(true, true, Some("AzureAD")));
        let joined = on(device(false, true, Some("ServerAD")));
        let unmanaged = on(device(false, false, None));
        let none = guest();
        let vouched = with(guest(), |c| c.satisfied.compliant_device = true);
        let vouched_joined = with(guest(), |c| c.satisfied.domain_joined_device = true);
        let inc = Some((FilterMode::Include, "device.isCompliant -eq True"));
        let exc = Some((FilterMode::Exclude, "device.trustType -eq \"ServerAD\""));
        run(vec![
            ("include All: no device", by_devs(&[ALL], &[], None), none.clone(), Failure),
            ("include All: compliant", by_devs(&[ALL], &[], None), compliant.clone(), Failure),
            ("exclude Compliant: compliant", by_devs(&[ALL], &[COMPLIANT], None), compliant.clone(), NotApplied),
            ("exclude Compliant: unmanaged", by_devs(&[ALL], &[COMPLIANT], None), unmanaged.clone(), Failure),
            ("exclude Compliant: no device", by_devs(&[ALL], &[COMPLIANT], None), none.clone(), Failure),
            (
                "exclude Compliant: vouched by inbound trust",
                by_devs(&[ALL], &[COMPLIANT], None),
                vouched.clone(),
                NotApplied,
            ),
            ("exclude DomainJoined: ServerAD", by_devs(&[ALL], &[DOMAIN_JOINED], None), joined.clone(), NotApplied),
            ("exclude DomainJoined: AzureAD", by_devs(&[ALL], &[DOMAIN_JOINED], None), compliant.clone(), Failure),
            ("exclude DomainJoined: vouched", by_devs(&[ALL], &[DOMAIN_JOINED], None), vouched_joined, NotApplied),
            ("filter include: matching", by_devs(&[], &[], inc), compliant.clone(), Failure),
            ("filter include: not matching", by_devs(&[], &[], inc), unmanaged.clone(), NotApplied),
            ("filter include: no device", by_devs(&[], &[], inc), none.clone(), NotApplied),
            ("filter include: vouched", by_devs(&[], &[], inc), vouched, Failure),
            ("filter exclude: matching", by_devs(&[], &[], exc), joined, NotApplied),
            ("filter exclude: not matching", by_devs(&[], &[], exc), compliant.clone(), Failure),
            ("filter exclude: no device", by_devs(&[], &[], exc), none.clone(), Failure),
            (
                "filter on all-false fields: no device",
                pol(|p| {
                    p.conditions.devices = devs(
                        &[],
                        &[],
                        Some((FilterMode::Include, "device.isManaged -eq False -and device.isCompliant -eq false")),
                    )
                }),
                none.clone(),
                Failure,
            ),
            (
                "bad rule, include: matches nothing",
                by_devs(&[], &[], Some((FilterMode::Include, "device.isCompliant -eq"))),
                compliant.clone(),
                NotApplied,
            ),
            (
                "bad rule, exclude: excludes nothing",
                by_devs(&[], &[], Some((FilterMode::Exclude, "device.os -eq Windows"))),
                compliant,
                Failure,
            ),
        ]);
    }

    /// (rule, compliant, managed, trust type) → Some(result) or None for a parse error.
    #[test]
    fn device_rule_language() {
        type Case<'a> = (&'a str, bool, bool, Option<&'a str>, Option<bool>);
        let deep = format!("{}device.isCompliant -eq True{}", "(".repeat(17), ")".repeat(17));
        let ok_deep = format!("{}device.isCompliant -eq True{}", "(".repeat(16), ")".repeat(16));
        let long = format!("device.isCompliant -eq True{}", " ".repeat(MAX_RULE_LEN));
        let cases: Vec<Case> = vec![
            ("device.isCompliant -eq True", true, false, None, Some(true)),
            ("device.isCompliant -eq True", false, false, None, Some(false)),
            ("DEVICE.ISCOMPLIANT -EQ true", true, false, None, Some(true)),
            ("device.isCompliant -eq \"True\"", true, false, None, Some(true)),
            ("device.isCompliant -ne True", false, false, None, Some(true)),
            ("device.isManaged -eq False", false, false, None, Some(true)),
            ("device.isManaged -eq True", false, true, None, Some(true)),
            ("device.trustType -eq \"AzureAD\"", false, false, Some("AzureAD"), Some(true)),
            ("device.trustType -eq azuread", false, false, Some("AzureAD"), Some(true)),
            ("device.trustType -eq 'Workplace'", false, false, Some("AzureAD"), Some(false)),
            ("device.trustType -eq ServerAD", false, false, None, Some(false)),
            ("device.trustType -ne ServerAD", false, false, None, Some(true)),
            // -and binds tighter: T -or (F -and F) = T; left-to-right would give F.
            (
                "device.isCompliant -eq True -or device.isManaged -eq True -and device.trustType -eq AzureAD",
                true,
                false,
                None,
                Some(true),
            ),
            // (F -and T) -or T = T; right-to-left grouping F -and (T -or T) would give F.
            (
                "device.isCompliant -eq True -and device.isManaged -eq False -or device.trustType -eq Workplace",
                false,
                false,
                Some("Workplace"),
                Some(true),
            ),
            ("device.isCompliant -eq True -and device.isManaged -eq True", true, false, None, Some(false)),
            ("device.isCompliant -eq True -and device.isManaged -eq True", true, true, None, Some(true)),
            ("device.isCompliant -eq True -or device.isManaged -eq True", false, true, None, Some(true)),
            (
                "device.isCompliant -eq True -or device.isManaged -eq True -or device.trustType -eq AzureAD",
                false,
                false,
                Some("AzureAD"),
                Some(true),
            ),
            (
                "device.isCompliant -eq True -or device.isManaged -eq True -or device.trustType -eq AzureAD",
                false,
                false,
                None,
                Some(false),
            ),
            // Parentheses override precedence: (T -or F) -and F = F.
            (
                "(device.isCompliant -eq True -or device.isManaged -eq True) -and device.trustType -eq AzureAD",
                true,
                false,
                None,
                Some(false),
            ),
            ("(device.isCompliant -eq True)", true, false, None, Some(true)),
            (ok_deep.as_str(), true, false, None, Some(true)),
            ("", false, false, None, None),
            ("   ", false, false, None, None),
            ("device.isCompliant", false, false, None, None),
            ("device.isCompliant -eq", false, false, None, None),
            ("-eq True", false, false, None, None),
            ("device.isCompliant -eq Maybe", false, false, None, None),
            ("device.isCompliant -gt True", false, false, None, None),
            ("device.trustType -eq Cloud", false, false, None, None),
            ("device.operatingSystem -eq Windows", false, false, None, None),
            ("device.isCompliant -eq True -and", false, false, None, None),
            ("device.isCompliant -eq True -or -and device.isManaged -eq True", false, false, None, None),
            ("device.isCompliant -eq True device.isManaged -eq True", false, false, None, None),
            ("(device.isCompliant -eq True", false, false, None, None),
            ("device.isCompliant -eq True)", false, false, None, None),
            ("()", false, false, None, None),
            ("device.trustType -eq \"AzureAD", false, false, None, None),
            ("\"device.isCompliant\" -eq True", false, false, None, None),
            (deep.as_str(), true, false, None, None),
            (long.as_str(), true, false, None, None),
        ];
        for (rule, compliant, managed, trust_type, expected) in cases {
            let view = DeviceView { compliant, managed, trust_type };
            let got = parse_rule(rule).ok().map(|r| r.eval(&view));
            assert_eq!(got, expected, "rule: {rule:?}");
        }
    }

    #[test]
    fn risk_conditions() {
        let risky = |ctx: SignInContext, signin: Option<RiskLevel>, user: Option<RiskLevel>| {
            with(ctx, |c| {
                c.sign_in_risk = signin;
                c.user_risk = user;
            })
        };
        let signin_policy = || pol(|p| p.conditions.sign_in_risk_levels = vec![RiskLevel::Medium, RiskLevel::High]);
        let user_policy = || pol(|p| p.conditions.user_risk_levels = vec![RiskLevel::High]);
        let high = Some(RiskLevel::High);
        let low = Some(RiskLevel::Low);
        run(vec![
            ("member, sign-in risk in list", signin_policy(), risky(member(), high, None), Failure),
            ("member, sign-in risk not in list", signin_policy(), risky(member(), low, None), NotApplied),
            ("member, no sign-in risk", signin_policy(), risky(member(), None, high), NotApplied),
            ("member, user risk in list", user_policy(), risky(member(), None, high), Failure),
            ("member, user risk not in list", user_policy(), risky(member(), None, low), NotApplied),
            ("member, no user risk", user_policy(), risky(member(), high, None), NotApplied),
            ("guest, sign-in risk in list", signin_policy(), risky(guest(), high, high), NotApplied),
            ("guest, user risk in list", user_policy(), risky(guest(), high, high), NotApplied),
            (
                "guest, report-only risk policy",
                pol(|p| {
                    p.state = PolicyState::EnabledForReportingButNotEnforced;
                    p.conditions.sign_in_risk_levels = vec![RiskLevel::High];
                }),
                risky(guest(), high, high),
                ReportOnlyNotApplied,
            ),
        ]);

        let both = pol(|p| {
            p.conditions.sign_in_risk_levels = vec![RiskLevel::High];
            p.conditions.user_risk_levels = vec![RiskLevel::High];
        });
        let d = eval(&risky(guest(), high, high), &[both]);
        assert_eq!(d.results[0].conditions_not_satisfied, strs(&["signInRisk", "userRisk"]));
        assert_eq!(d.results[0].conditions_satisfied, strs(&["application", "users"]));
        assert!(d.allowed());
    }

    #[test]
    fn grant_controls() {
        use Control::{Block, CompliantDevice, DomainJoinedDevice, Mfa};
        use GrantOperator::{And, Or};
        let mfa = with(member(), |c| c.satisfied.mfa = true);
        let compliant = with(member(), |c| c.device = device(true, true, Some("AzureAD")));
        let both = with(compliant.clone(), |c| c.satisfied.mfa = true);
        let joined = with(member(), |c| c.device = device(false, true, Some("ServerAD")));
        let vouched = with(member(), |c| c.satisfied.compliant_device = true);
        let session_only = pol(|p| {
            p.grant_controls = None;
            p.session_controls = Some(SessionControls {
                sign_in_frequency: Some(SignInFrequency { value: 1, r#type: FrequencyType::Hours, is_enabled: true }),
            });
        });
        run(vec![
            ("mfa unmet", pol(|p| p.grant_controls = grant(And, &[Mfa])), member(), Failure),
            ("mfa satisfied", pol(|p| p.grant_controls = grant(And, &[Mfa])), mfa.clone(), Success),
            ("AND: one of two", pol(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice])), mfa.clone(), Failure),
            ("AND: both", pol(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice])), both.clone(), Success),
            ("OR: one of two", pol(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])), mfa.clone(), Success),
            (
                "OR: the other",
                pol(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])),
                compliant.clone(),
                Success,
            ),
            ("OR: none", pol(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])), member(), Failure),
            (
                "compliant device",
                pol(|p| p.grant_controls = grant(And, &[CompliantDevice])),
                compliant.clone(),
                Success,
            ),
            (
                "compliant via inbound trust",
                pol(|p| p.grant_controls = grant(And, &[CompliantDevice])),
                vouched,
                Success,
            ),
            ("domain joined: ServerAD", pol(|p| p.grant_controls = grant(And, &[DomainJoinedDevice])), joined, Success),
            (
                "domain joined: AzureAD",
                pol(|p| p.grant_controls = grant(And, &[DomainJoinedDevice])),
                compliant,
                Failure,
            ),
            (
                "domain joined via inbound trust",
                pol(|p| p.grant_controls = grant(And, &[DomainJoinedDevice])),
                with(member(), |c| c.satisfied.domain_joined_device = true),
                Success,
            ),
            ("block", pol(|p| p.grant_controls = grant(And, &[Block])), both.clone(), Failure),
            ("block in OR still blocks", pol(|p| p.grant_controls = grant(Or, &[Block, Mfa])), both, Failure),
            ("no grant controls", pol(|p| p.grant_controls = None), member(), Success),
            ("empty grant controls", pol(|p| p.grant_controls = grant(And, &[])), member(), Success),
            ("session controls only", session_only, member(), Success),
        ]);
    }

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
    fn block_wins_over_everything() {
        let blocker = pol(|p| {
            p.id = "block-bar".into();
            p.grant_controls = grant(GrantOperator::And, &[Control::Block]);
        });
        for ctx in [member(), with(member(), |c| c.satisfied.mfa = true)] {
            let d = eval(&ctx, &[base("mfa-all"), blocker.clone()]);
            assert!(d.is_blocked() && !d.allowed());
            assert_eq!(d.block, strs(&["block-bar"]));
        }
        // The other policy is still evaluated and reported.
        let d = eval(&with(member(), |c| c.satisfied.mfa = true), &[base("mfa-all"), blocker.clone()]);
        assert_eq!(d.results[0].result, Success);
        assert_eq!(d.results[1].result, Failure);
        // An exclusion beats the block.
        let excluded = pol(|p| {
            p.grant_controls = grant(GrantOperator::And, &[Control::Block]);
            p.conditions.users.exclude_users = strs(&[ALICE]);
        });
        assert!(eval(&member(), &[excluded]).allowed());
    }

    #[test]
    fn report_only_is_never_enforced() {
        use Control::{Block, CompliantDevice, Mfa};
        use GrantOperator::{And, Or};
        let report = |f: fn(&mut Policy)| {
            pol(|p| {
                p.state = PolicyState::EnabledForReportingButNotEnforced;
                f(p);
            })
        };
        let freq = Some(SessionControls {
            sign_in_frequency: Some(SignInFrequency { value: 1, r#type: FrequencyType::Hours, is_enabled: true }),
        });
        let stale = with(member(), |c| c.auth_age_secs = Some(7200));
        let cases = vec![
            ("not applied", report(|p| p.conditions.users = users(&[GUESTS], &[])), member(), ReportOnlyNotApplied),
            ("success", report(|_| {}), with(member(), |c| c.satisfied.mfa = true), ReportOnlySuccess),
            ("failure: block", report(|p| p.grant_controls = grant(And, &[Block])), member(), ReportOnlyFailure),
            (
                "failure: device",
                report(|p| p.grant_controls = grant(And, &[CompliantDevice])),
                member(),
                ReportOnlyFailure,
            ),
            (
                "failure: mfa and device",
                report(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice])),
                member(),
                ReportOnlyFailure,
            ),
            ("interrupted: mfa", report(|p| p.grant_controls = grant(And, &[Mfa])), member(), ReportOnlyInterrupted),
            (
                "interrupted: mfa or device",
                report(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])),
                member(),
                ReportOnlyInterrupted,
            ),
            (
                "interrupted: device met, mfa missing",
                report(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice])),
                with(member(), |c| c.satisfied.compliant_device = true),
                ReportOnlyInterrupted,
            ),
            (
                "mfa grant with a stale sign-in frequency",
                report(|p| {
                    p.session_controls = Some(SessionControls {
                        sign_in_frequency: Some(SignInFrequency {
                            value: 1,
                            r#type: FrequencyType::Hours,
                            is_enabled: true,
                        }),
                    })
                }),
                stale.clone(),
                ReportOnlyInterrupted,
            ),
        ];
        for (name, policy, ctx, expected) in cases {
            let d = eval(&ctx, &[policy]);
            assert_eq!(d.results[0].result, expected, "case: {name}");
            assert!(d.allowed(), "report-only enforced something: {name}");
            assert!(d.block.is_empty() && d.required.is_empty() && !d.reauthenticate && d.unsatisfiable().is_empty());
        }
        let mut p = report(|p| p.grant_controls = None);
        p.session_controls = freq;
        let d = eval(&stale, &[p]);
        assert_eq!(d.results[0].result, ReportOnlySuccess);
        assert_eq!(d.results[0].enforced_session_controls, strs(&["signInFrequency"]));
        assert!(!d.reauthenticate);
    }

    #[test]
    fn disabled_policies_are_not_evaluated() {
        let disabled = pol(|p| {
            p.state = PolicyState::Disabled;
            p.grant_controls = grant(GrantOperator::And, &[Control::Block]);
        });
        let d = eval(&member(), &[disabled]);
        let r = &d.results[0];
        assert_eq!(r.result, NotEnabled);
        assert!(r.conditions_satisfied.is_empty() && r.conditions_not_satisfied.is_empty());
        assert!(r.enforced_grant_controls.is_empty());
        assert!(d.allowed());
    }

    #[test]
    fn sign_in_frequency() {
        let freq = |value: u32, r#type: FrequencyType, is_enabled: bool| {
            pol(|p| {
                p.grant_controls = None;
                p.session_controls =
                    Some(SessionControls { sign_in_frequency: Some(SignInFrequency { value, r#type, is_enabled }) });
            })
        };
        let age = |secs: Option<i64>| with(member(), |c| c.auth_age_secs = secs);
        let cases = vec![
            ("4 hours, 4h old", freq(4, FrequencyType::Hours, true), age(Some(4 * 3600)), false),
            ("4 hours, 4h+1s old", freq(4, FrequencyType::Hours, true), age(Some(4 * 3600 + 1)), true),
            ("1 day, 23h old", freq(1, FrequencyType::Days, true), age(Some(23 * 3600)), false),
            ("1 day, 25h old", freq(1, FrequencyType::Days, true), age(Some(25 * 3600)), true),
            ("disabled", freq(1, FrequencyType::Hours, false), age(Some(86_400)), false),
            ("fresh authentication", freq(1, FrequencyType::Hours, true), age(None), false),
            (
                "policy not applying",
                {
                    let mut p = freq(1, FrequencyType::Hours, true);
                    p.conditions.users = users(&[GUESTS], &[]);
                    p
                },
                age(Some(86_400)),
                false,
            ),
        ];
        for (name, policy, ctx, expected) in cases {
            let d = eval(&ctx, &[policy]);
            assert_eq!(d.reauthenticate, expected, "case: {name}");
            assert_eq!(d.allowed(), !expected, "case: {name}");
            assert_eq!(d.results[0].result, if name == "policy not applying" { NotApplied } else { Success });
        }
        assert_eq!(SignInFrequency { value: 7, r#type: FrequencyType::Days, is_enabled: true }.max_age_secs(), 604_800);
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
    fn matched_locations() {
        let at = |addr: Option<IpAddr>| eval(&with(member(), |c| c.ip = addr), &[]).matched_locations;
        assert_eq!(at(ip("203.0.113.200")), strs(&[PARTNER_NET]));
        assert_eq!(at(ip("2001:db8:2::9")), strs(&[BRANCH]));
        assert_eq!(at(ip("::ffff:198.51.100.3")), strs(&[BRANCH]));
        assert!(at(ip("192.0.2.1")).is_empty());
        assert!(at(None).is_empty());
    }

    // --- The seed's stories -------------------------------------------------------------------

    /// (a) App-level MFA: a guest is asked for MFA on Foo, not on Bar.
    #[test]
    fn story_mfa_for_foo() {
        let policy = Policy {
            id: "require-mfa-foo".into(),
            display_name: "Require MFA for Foo".into(),
            state: PolicyState::Enabled,
            conditions: Conditions {
                users: users(&[ALL], &[]),
                applications: apps(&["foo"], &[]),
                ..Default::default()
            },
            grant_controls: grant(GrantOperator::Or, &[Control::Mfa]),
            session_controls: None,
        };
        let foo = eval(&guest(), std::slice::from_ref(&policy));
        assert!(foo.needs_mfa() && !foo.allowed() && foo.unsatisfiable().is_empty());
        assert_eq!(foo.results[0].result, Failure);

        let bar = eval(&with(guest(), |c| c.app_id = "bar".into()), std::slice::from_ref(&policy));
        assert!(bar.allowed() && !bar.needs_mfa());
        assert_eq!(bar.results[0].result, NotApplied);
        assert_eq!(bar.results[0].conditions_not_satisfied, strs(&["application"]));

        let after_mfa = eval(&with(guest(), |c| c.satisfied.mfa = true), &[policy]);
        assert!(after_mfa.allowed());
        assert_eq!(after_mfa.results[0].result, Success);
    }

    /// (b) Device-based policy for guests: unmanaged guest devices cannot pass; excluded
    /// partner users and trusted compliant home devices can.
    #[test]
    fn story_device_policy_for_guests() {
        let policy = Policy {
            id: "guest-devices".into(),
            display_name: "Guests need a compliant device".into(),
            state: PolicyState::Enabled,
            conditions: Conditions {
                users: users(&[GUESTS], &[PARTNER]),
                applications: apps(&[ALL], &[]),
                ..Default::default()
            },
            grant_controls: grant(GrantOperator::And, &[Control::CompliantDevice]),
            session_controls: None,
        };
        let unmanaged = with(guest(), |c| {
            c.device = device(false, false, None);
            c.satisfied.mfa = true;
        });
        let d = eval(&unmanaged, std::slice::from_ref(&policy));
        assert_eq!(d.required, vec![vec![Control::CompliantDevice]]);
        assert!(!d.needs_mfa() && !d.allowed());
        let names: Vec<&str> = d.unsatisfiable().iter().map(|r| r.display_name.as_str()).collect();
        assert_eq!(names, ["Guests need a compliant device"]);

        let partner = with(unmanaged.clone(), |c| c.user_id = PARTNER.into());
        let d = eval(&partner, std::slice::from_ref(&policy));
        assert!(d.allowed());
        assert_eq!(d.results[0].result, NotApplied);
        assert_eq!(d.results[0].conditions_not_satisfied, strs(&["users"]));

        let trusted_home_device = with(unmanaged, |c| c.satisfied.compliant_device = true);
        assert!(eval(&trusted_home_device, std::slice::from_ref(&policy)).allowed());

        assert!(eval(&member(), &[policy]).allowed(), "members are out of scope");
    }

    /// (c) Location-based: from the trusted partner range allowed, elsewhere MFA.
    #[test]
    fn story_trusted_partner_range() {
        let policy = Policy {
            id: "mfa-outside-partner".into(),
            display_name: "MFA outside trusted networks".into(),
            state: PolicyState::Enabled,
            conditions: Conditions {
                users: users(&[GUESTS], &[]),
                applications: apps(&[ALL], &[]),
                locations: locs(&[ALL], &[ALL_TRUSTED]),
                ..Default::default()
            },
            grant_controls: grant(GrantOperator::Or, &[Control::Mfa]),
            session_controls: None,
        };
        for addr in ["203.0.113.42", "2001:db8:1:2::3"] {
            let d = eval(&with(guest(), |c| c.ip = ip(addr)), std::slice::from_ref(&policy));
            assert!(d.allowed(), "from {addr}");
            assert_eq!(d.matched_locations, strs(&[PARTNER_NET]));
        }
        for ctx in [with(guest(), |c| c.ip = ip("198.51.100.1")), with(guest(), |c| c.ip = ip("192.0.2.1")), guest()] {
            let d = eval(&ctx, std::slice::from_ref(&policy));
            assert!(d.needs_mfa() && d.unsatisfiable().is_empty(), "from {:?}", ctx.ip);
        }
    }

    // --- Serde --------------------------------------------------------------------------------

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
                built_in_controls: vec![Control::Mfa, Control::CompliantDevice]
            })
        );
        assert_eq!(
            p.session_controls.as_ref().and_then(|s| s.sign_in_frequency.clone()),
            Some(SignInFrequency { value: 12, r#type: FrequencyType::Hours, is_enabled: true })
        );
        assert_eq!(validate(&p), Ok(()));
        assert_eq!(validate_references(&p, &locations()), Ok(()));

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
    fn rejects_unknown_and_unsupported_policy_input() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("unknown top-level field", json!({ "state": "enabled", "colour": "red" }), "unknown field `colour`"),
            ("missing state", json!({ "displayName": "x" }), "missing field `state`"),
            ("bad state", json!({ "state": "on" }), "unknown variant `on`"),
            ("unknown condition", enabled("conditions", json!({ "weather": "rain" })), "unknown field `weather`"),
            (
                "groups are not supported",
                enabled("conditions", json!({ "users": { "includeGroups": ["g1"] } })),
                "includeGroups is not supported",
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
                "terms of use are not supported",
                enabled("grantControls", json!({ "operator": "OR", "builtInControls": ["mfa"], "termsOfUse": ["t"] })),
                "termsOfUse is not supported",
            ),
            (
                "persistent browser is not supported",
                enabled("sessionControls", json!({ "persistentBrowser": { "mode": "never", "isEnabled": true } })),
                "persistentBrowser is not supported",
            ),
            (
                "every-time frequency is not supported",
                enabled(
                    "sessionControls",
                    json!({ "signInFrequency": { "frequencyInterval": "everyTime", "isEnabled": true } }),
                ),
                "frequencyInterval",
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
        // Disabled session controls are empty, hence accepted.
        let ok = enabled("sessionControls", json!({ "persistentBrowser": { "mode": "never", "isEnabled": false } }));
        assert!(serde_json::from_value::<Policy>(ok).is_ok());
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

    // --- Validation ---------------------------------------------------------------------------

    #[test]
    fn validation() {
        use Control::{Block, Mfa};
        let freq = |value: u32, r#type: FrequencyType| {
            Some(SessionControls { sign_in_frequency: Some(SignInFrequency { value, r#type, is_enabled: true }) })
        };
        let valid = vec![
            ("base", base("p1")),
            ("ids and keywords", by_users(&[GUESTS, ALICE], &[PARTNER])),
            ("None alone (draft)", by_users(&[NONE], &[])),
            ("block alone", pol(|p| p.grant_controls = grant(GrantOperator::And, &[Block]))),
            (
                "device filter",
                pol(|p| {
                    p.conditions.devices = devs(&[], &[], Some((FilterMode::Include, "device.isManaged -eq True")))
                }),
            ),
            ("device states", by_devs(&[ALL], &[COMPLIANT, DOMAIN_JOINED], None)),
            (
                "session only",
                pol(|p| {
                    p.grant_controls = None;
                    p.session_controls = freq(23, FrequencyType::Hours);
                }),
            ),
            ("365 days", pol(|p| p.session_controls = freq(365, FrequencyType::Days))),
        ];
        for (name, p) in valid {
            assert_eq!(validate(&p), Ok(()), "case: {name}");
        }

        let invalid = vec![
            ("no display name", pol(|p| p.display_name = " ".into()), "displayName is required"),
            ("empty includeUsers", by_users(&[], &[]), "includeUsers is empty"),
            ("empty includeApplications", by_apps(&[], &[]), "includeApplications is empty"),
            (
                "both empty",
                pol(|p| {
                    p.conditions.users = users(&[], &[]);
                    p.conditions.applications = apps(&[], &[]);
                }),
                "includeUsers is empty; conditions.applications.includeApplications is empty",
            ),
            ("user that is not an id", by_users(&["sally@contoso.example"], &[]), "neither All"),
            ("None with others", by_users(&[NONE, ALICE], &[]), "None cannot be combined"),
            ("exclude All users", by_users(&[ALL], &[ALL]), "excludeUsers cannot contain All"),
            ("exclude All apps", by_apps(&[ALL], &[ALL]), "excludeApplications cannot contain All"),
            ("empty app id", by_apps(&[""], &[]), "empty application id"),
            ("exclude-only locations", by_locs(&[], &[BRANCH]), "includeLocations is required"),
            ("exclude All locations", by_locs(&[ALL], &[ALL]), "excludeLocations cannot contain All"),
            ("include device state", by_devs(&[COMPLIANT], &[], None), "includeDevices"),
            ("exclude device state", by_devs(&[ALL], &["Rooted"], None), "excludeDevices"),
            (
                "bad device rule",
                pol(|p| {
                    p.conditions.devices = devs(&[], &[], Some((FilterMode::Include, "device.isCompliant -eq Yes")))
                }),
                "deviceFilter.rule: device.isCompliant compares with True or False",
            ),
            (
                "filter with states",
                pol(|p| {
                    p.conditions.devices = devs(&[ALL], &[], Some((FilterMode::Include, "device.isManaged -eq True")))
                }),
                "cannot be combined",
            ),
            ("hidden risk", pol(|p| p.conditions.sign_in_risk_levels = vec![RiskLevel::Hidden]), "signInRiskLevels"),
            (
                "future risk",
                pol(|p| p.conditions.user_risk_levels = vec![RiskLevel::UnknownFutureValue]),
                "userRiskLevels",
            ),
            ("empty grant", pol(|p| p.grant_controls = grant(GrantOperator::Or, &[])), "builtInControls is empty"),
            (
                "block with mfa",
                pol(|p| p.grant_controls = grant(GrantOperator::Or, &[Block, Mfa])),
                "block cannot be combined",
            ),
            ("no controls at all", pol(|p| p.grant_controls = None), "needs grantControls or"),
            ("0 hours", pol(|p| p.session_controls = freq(0, FrequencyType::Hours)), "must be 1..=23 hours"),
            ("24 hours", pol(|p| p.session_controls = freq(24, FrequencyType::Hours)), "must be 1..=23 hours"),
            ("366 days", pol(|p| p.session_controls = freq(366, FrequencyType::Days)), "must be 1..=365 days"),
        ];
        for (name, p, expected) in invalid {
            let err = validate(&p).unwrap_err();
            assert!(err.contains(expected), "case {name}: {err}");
        }

        let dangling = by_locs(&[BRANCH, "gone"], &[ALL_TRUSTED, "lost"]);
        assert_eq!(validate_references(&dangling, &locations()), Err("unknown named location(s): gone, lost".into()));
        assert_eq!(validate_references(&base("p1"), &[]), Ok(()));
    }
}
