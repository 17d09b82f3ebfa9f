//! Conditional access (DESIGN.md §4): Graph-shaped policies and named locations, and
//! [`evaluate`], a pure function of one sign-in and the tenant's policies. No I/O and no
//! clock: the caller passes the age of the authentication it wants to reuse.
//!
//! Input is parsed strictly: unknown fields are rejected, and Graph fields gatehouse does not
//! evaluate (groups, roles, platforms, …) are accepted only when empty or null, so a policy
//! never silently means less than the admin wrote.
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

mod decision;
mod device_rule;
mod evaluate;
mod model;
mod shapes;
mod validate;

pub use decision::*;
use device_rule::*;
pub use evaluate::*;
pub use model::*;
use shapes::*;
pub use validate::*;

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use ipnet::IpNet;

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
