//! Table tests of `evaluate` (a child module of `policy::evaluate`).
use std::net::IpAddr;

use super::*;
use crate::policy::testkit::*;

fn device(compliant: bool, managed: bool, trust: Option<&str>) -> Option<DeviceState> {
    Some(DeviceState {
        id: "dev-1".into(),
        is_managed: managed,
        is_compliant: compliant,
        trust_type: trust.map(str::to_owned),
    })
}

fn outcome(ctx: &SignInContext, policy: Policy) -> PolicyOutcome {
    eval(ctx, &[policy]).results[0].result
}

use PolicyOutcome::{
    Failure, NotApplied, NotEnabled, ReportOnlyFailure, ReportOnlyInterrupted, ReportOnlyNotApplied, ReportOnlySuccess,
    Success,
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
fn groups_condition() {
    let auditor = in_groups(guest(), &[AUDITORS]);
    let staff = in_groups(member(), &[STAFF]);
    let both = in_groups(member(), &[AUDITORS, STAFF]);
    let upper = AUDITORS.to_ascii_uppercase();
    run(vec![
        ("include group: a member of it", by_groups(&[], &[], &[AUDITORS], &[]), auditor.clone(), Failure),
        ("include group: a member of another", by_groups(&[], &[], &[AUDITORS], &[]), staff.clone(), NotApplied),
        ("include group: in no group", by_groups(&[], &[], &[AUDITORS], &[]), guest(), NotApplied),
        ("group ids compare case-insensitively", by_groups(&[], &[], &[&upper], &[]), auditor.clone(), Failure),
        ("one of several groups", by_groups(&[], &[], &[STAFF, AUDITORS], &[]), auditor.clone(), Failure),
        ("users OR groups: by user id", by_groups(&[ALICE], &[], &[AUDITORS], &[]), member(), Failure),
        ("users OR groups: by group", by_groups(&[ALICE], &[], &[AUDITORS], &[]), auditor.clone(), Failure),
        ("users OR groups: neither", by_groups(&[ALICE], &[], &[AUDITORS], &[]), guest(), NotApplied),
        ("None users, by group", by_groups(&[NONE], &[], &[AUDITORS], &[]), auditor.clone(), Failure),
        ("exclude group wins over All", by_groups(&[ALL], &[], &[], &[AUDITORS]), auditor.clone(), NotApplied),
        ("exclude group wins over Guests", by_groups(&[GUESTS], &[], &[], &[AUDITORS]), auditor.clone(), NotApplied),
        ("exclude group wins over user id", by_groups(&[SALLY], &[], &[], &[AUDITORS]), auditor.clone(), NotApplied),
        (
            "exclude group wins over same group",
            by_groups(&[], &[], &[AUDITORS], &[AUDITORS]),
            auditor.clone(),
            NotApplied,
        ),
        ("exclude group wins over other group", by_groups(&[], &[], &[STAFF], &[AUDITORS]), both.clone(), NotApplied),
        ("exclude user wins over include group", by_groups(&[], &[ALICE], &[STAFF], &[]), staff.clone(), NotApplied),
        (
            "exclude Guests wins over include group",
            by_groups(&[], &[GUESTS], &[AUDITORS], &[]),
            auditor.clone(),
            NotApplied,
        ),
        ("exclude other group keeps All", by_groups(&[ALL], &[], &[], &[AUDITORS]), staff.clone(), Failure),
        ("exclude group, in no group", by_groups(&[ALL], &[], &[], &[AUDITORS]), member(), Failure),
        ("exclude group, Guests, a member", by_groups(&[GUESTS], &[], &[], &[AUDITORS]), staff, NotApplied),
        ("empty group id never matches", by_groups(&[], &[], &[""], &[]), in_groups(member(), &[""]), NotApplied),
    ]);
    // The users flag is what a group decides, next to the other conditions.
    let d = eval(&auditor, &[by_groups(&[ALL], &[], &[], &[AUDITORS])]);
    assert_eq!(d.results[0].conditions_not_satisfied, strs(&["users"]));
    assert!(d.allowed());
}

#[test]
fn groups_with_the_other_conditions_and_grants() {
    use Control::{Block, CompliantDevice, Mfa};
    use GrantOperator::{And, Or};
    let auditor = in_groups(guest(), &[AUDITORS]);
    let on_bar = |c: SignInContext| with(c, |c| c.app_id = "bar".into());
    /// A policy for the auditors group, changed by `f`.
    fn scoped(f: impl FnOnce(&mut Policy)) -> Policy {
        pol(|p| {
            p.conditions.users = users_groups(&[], &[], &[AUDITORS], &[]);
            f(p);
        })
    }
    fn report(f: impl FnOnce(&mut Policy)) -> Policy {
        scoped(|p| {
            p.state = PolicyState::EnabledForReportingButNotEnforced;
            f(p)
        })
    }
    let mfa = with(auditor.clone(), |c| c.satisfied.mfa = true);
    let compliant = with(auditor.clone(), |c| c.satisfied.compliant_device = true);
    let both = with(mfa.clone(), |c| c.satisfied.compliant_device = true);
    run(vec![
        (
            "AND with the app: other app",
            scoped(|p| p.conditions.applications = apps(&["foo"], &[])),
            on_bar(auditor.clone()),
            NotApplied,
        ),
        (
            "AND with the app: the app",
            scoped(|p| p.conditions.applications = apps(&["foo"], &[])),
            auditor.clone(),
            Failure,
        ),
        (
            "AND with the location",
            scoped(|p| p.conditions.locations = locs(&[ALL], &[ALL_TRUSTED])),
            with(auditor.clone(), |c| c.ip = ip("203.0.113.9")),
            NotApplied,
        ),
        (
            "grant AND: one of two",
            scoped(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice])),
            mfa.clone(),
            Failure,
        ),
        ("grant AND: both", scoped(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice])), both.clone(), Success),
        (
            "grant OR: one of two",
            scoped(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])),
            compliant.clone(),
            Success,
        ),
        ("grant OR: none", scoped(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])), auditor.clone(), Failure),
        ("block for the group", scoped(|p| p.grant_controls = grant(And, &[Block])), both.clone(), Failure),
        ("block for the group, not a member", scoped(|p| p.grant_controls = grant(And, &[Block])), guest(), NotApplied),
        ("report-only block", report(|p| p.grant_controls = grant(And, &[Block])), auditor.clone(), ReportOnlyFailure),
        ("report-only mfa", report(|_| {}), auditor.clone(), ReportOnlyInterrupted),
        ("report-only, not a member", report(|_| {}), guest(), ReportOnlyNotApplied),
    ]);

    // Block wins over every other policy; an exclusion by group beats the block.
    let block_group = pol(|p| {
        p.id = "block-auditors".into();
        p.conditions.users = users_groups(&[], &[], &[AUDITORS], &[]);
        p.grant_controls = grant(And, &[Block]);
    });
    let d = eval(&both, &[base("mfa-all"), block_group.clone()]);
    assert!(d.is_blocked() && !d.allowed());
    assert_eq!(d.block, strs(&["block-auditors"]));
    assert_eq!(d.results[0].result, Success);
    let excluded = pol(|p| {
        p.conditions.users = users_groups(&[ALL], &[], &[], &[AUDITORS]);
        p.grant_controls = grant(And, &[Block]);
    });
    assert!(eval(&auditor, std::slice::from_ref(&excluded)).allowed());
    assert!(eval(&guest(), &[excluded]).is_blocked(), "only the group's members are excluded");

    // Report-only group policies are never enforced.
    for p in [report(|p| p.grant_controls = grant(And, &[Block])), report(|_| {})] {
        let d = eval(&auditor, &[p]);
        assert!(d.allowed() && d.block.is_empty() && d.required.is_empty() && d.unsatisfiable().is_empty());
    }
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
fn authentication_strengths() {
    use crate::policy::strength::{MFA_ID, PHISHING_RESISTANT_ID};
    let strong = |id: &str, state: PolicyState| {
        pol(|p| {
            p.state = state;
            p.grant_controls = Some(GrantControls {
                operator: GrantOperator::And,
                built_in_controls: vec![],
                authentication_strength: Some(StrengthRef { id: id.into() }),
                terms_of_use: vec![],
            })
        })
    };
    let proved = |m: &[&str]| {
        with(member(), |c| {
            c.methods = strs(m);
            c.satisfied.mfa = m.len() > 1 || m == ["fido2"];
        })
    };
    let totp = proved(&["password", "softwareOath"]);
    let passkey = proved(&["password", "fido2"]);

    let d = evaluate(&totp, &[strong(PHISHING_RESISTANT_ID, PolicyState::Enabled)], &[], &[]);
    let r = &d.results[0];
    assert_eq!(r.result, PolicyOutcome::Failure, "TOTP is MFA but not phishing resistant");
    assert_eq!(r.enforced_grant_controls, vec![Control::AuthenticationStrength]);
    let s = r.authentication_strength.as_ref().unwrap();
    assert_eq!(
        (s.authentication_strength_result, s.display_name.as_str()),
        (StrengthResult::NotSatisfied, "Phishing-resistant MFA")
    );
    assert_eq!(d.required, vec![vec![Control::AuthenticationStrength]]);
    assert!(d.needs_mfa() && d.unsatisfiable().is_empty(), "a passkey can still satisfy it");
    assert_eq!(d.strengths.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [PHISHING_RESISTANT_ID]);

    let d = evaluate(&passkey, &[strong(PHISHING_RESISTANT_ID, PolicyState::Enabled)], &[], &[]);
    assert!(d.allowed(), "{d:?}");
    let s = d.results[0].authentication_strength.as_ref().unwrap();
    assert_eq!(s.satisfied_by.as_deref(), Some("fido2"));
    assert!(d.strengths.is_empty());

    let d = evaluate(&totp, &[strong(MFA_ID, PolicyState::Enabled)], &[], &[]);
    assert!(d.allowed());
    assert_eq!(
        d.results[0].authentication_strength.as_ref().unwrap().satisfied_by.as_deref(),
        Some("password,softwareOath")
    );

    // Report-only: evaluated and reported, never required.
    let d = evaluate(&totp, &[strong(PHISHING_RESISTANT_ID, PolicyState::EnabledForReportingButNotEnforced)], &[], &[]);
    assert_eq!(d.results[0].result, PolicyOutcome::ReportOnlyInterrupted);
    assert!(d.allowed() && d.strengths.is_empty());

    // A custom strength, and a policy naming one that is gone (fails closed).
    let custom = AuthenticationStrength {
        id: "c1".into(),
        display_name: "App and password only".into(),
        description: String::new(),
        policy_type: "custom".into(),
        requirements_satisfied: "mfa".into(),
        allowed_combinations: strs(&["password,softwareOath"]),
        created_date_time: String::new(),
        modified_date_time: String::new(),
    };
    let d = evaluate(&passkey, &[strong("c1", PolicyState::Enabled)], &[], std::slice::from_ref(&custom));
    assert_eq!(d.results[0].result, PolicyOutcome::Failure, "a passkey is not in this strength");
    assert!(d.unsatisfiable().is_empty(), "TOTP can still be added");
    assert!(evaluate(&totp, &[strong("c1", PolicyState::Enabled)], &[], &[custom]).allowed());
    let d = evaluate(&passkey, &[strong("gone", PolicyState::Enabled)], &[], &[]);
    let s = d.results[0].authentication_strength.as_ref().unwrap();
    assert_eq!(s.authentication_strength_result, StrengthResult::UnknownStrength);
    assert_eq!(d.unsatisfiable().len(), 1, "no method meets a strength that does not exist");

    // OR with a compliant device: either satisfies.
    let either = pol(|p| {
        p.grant_controls = Some(GrantControls {
            operator: GrantOperator::Or,
            built_in_controls: vec![Control::CompliantDevice],
            authentication_strength: Some(StrengthRef { id: PHISHING_RESISTANT_ID.into() }),
            terms_of_use: vec![],
        })
    });
    let d = evaluate(&totp, std::slice::from_ref(&either), &[], &[]);
    assert_eq!(d.required, vec![vec![Control::CompliantDevice, Control::AuthenticationStrength]]);
    let compliant = with(totp.clone(), |c| c.satisfied.compliant_device = true);
    assert!(evaluate(&compliant, &[either], &[], &[]).allowed());
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
            sign_in_frequency: Some(SignInFrequency::time_based(1, FrequencyType::Hours)),
            persistent_browser: None,
        });
    });
    run(vec![
        ("mfa unmet", pol(|p| p.grant_controls = grant(And, &[Mfa])), member(), Failure),
        ("mfa satisfied", pol(|p| p.grant_controls = grant(And, &[Mfa])), mfa.clone(), Success),
        ("AND: one of two", pol(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice])), mfa.clone(), Failure),
        ("AND: both", pol(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice])), both.clone(), Success),
        ("OR: one of two", pol(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])), mfa.clone(), Success),
        ("OR: the other", pol(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])), compliant.clone(), Success),
        ("OR: none", pol(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])), member(), Failure),
        ("compliant device", pol(|p| p.grant_controls = grant(And, &[CompliantDevice])), compliant.clone(), Success),
        ("compliant via inbound trust", pol(|p| p.grant_controls = grant(And, &[CompliantDevice])), vouched, Success),
        ("domain joined: ServerAD", pol(|p| p.grant_controls = grant(And, &[DomainJoinedDevice])), joined, Success),
        ("domain joined: AzureAD", pol(|p| p.grant_controls = grant(And, &[DomainJoinedDevice])), compliant, Failure),
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
        sign_in_frequency: Some(SignInFrequency::time_based(1, FrequencyType::Hours)),
        persistent_browser: None,
    });
    let stale = with(member(), |c| c.auth_age_secs = Some(7200));
    let cases = vec![
        ("not applied", report(|p| p.conditions.users = users(&[GUESTS], &[])), member(), ReportOnlyNotApplied),
        ("success", report(|_| {}), with(member(), |c| c.satisfied.mfa = true), ReportOnlySuccess),
        ("failure: block", report(|p| p.grant_controls = grant(And, &[Block])), member(), ReportOnlyFailure),
        ("failure: device", report(|p| p.grant_controls = grant(And, &[CompliantDevice])), member(), ReportOnlyFailure),
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
                    sign_in_frequency: Some(SignInFrequency::time_based(1, FrequencyType::Hours)),
                    persistent_browser: None,
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
            p.session_controls = Some(SessionControls {
                sign_in_frequency: Some(SignInFrequency { is_enabled, ..SignInFrequency::time_based(value, r#type) }),
                persistent_browser: None,
            });
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
    assert_eq!(SignInFrequency::time_based(7, FrequencyType::Days).max_age_secs(), 604_800);
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
        conditions: Conditions { users: users(&[ALL], &[]), applications: apps(&["foo"], &[]), ..Default::default() },
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

/// (b') The seed's "exclusion lists containing specific partner users", as a group: the
/// device policy excludes "Partner auditors", whose guests pass on unmanaged devices.
#[test]
fn story_device_policy_excludes_a_partner_group() {
    let policy = Policy {
        id: "guest-devices".into(),
        display_name: "Guests need a compliant device".into(),
        state: PolicyState::Enabled,
        conditions: Conditions {
            users: users_groups(&[GUESTS], &[], &[], &[AUDITORS]),
            applications: apps(&[ALL], &[]),
            ..Default::default()
        },
        grant_controls: grant(GrantOperator::And, &[Control::CompliantDevice]),
        session_controls: None,
    };
    let unmanaged = with(guest(), |c| c.device = device(false, false, None));
    let d = eval(&unmanaged, std::slice::from_ref(&policy));
    assert!(!d.allowed() && d.unsatisfiable().len() == 1);

    let auditor = in_groups(unmanaged, &[AUDITORS]);
    let d = eval(&auditor, std::slice::from_ref(&policy));
    assert!(d.allowed());
    assert_eq!(d.results[0].conditions_not_satisfied, strs(&["users"]));
    // Another policy still applies to the excluded guest.
    let d = eval(&auditor, &[policy, base("mfa-all")]);
    assert!(d.needs_mfa() && d.unsatisfiable().is_empty());
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
