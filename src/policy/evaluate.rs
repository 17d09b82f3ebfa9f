//! Conditional access: Evaluation.
use super::*;

/// Evaluates every policy against one sign-in. Report-only policies are evaluated and reported
/// but never contribute to `block`, `required` or `reauthenticate`.
/// `strengths` are the tenant's custom authentication strengths (the built-in ones are known).
pub fn evaluate(
    ctx: &SignInContext,
    policies: &[Policy],
    locations: &[NamedLocation],
    strengths: &[AuthenticationStrength],
) -> Decision {
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
        res.enforced_grant_controls = grant.map(controls_of).unwrap_or_default();
        // The strength named (`Some(None)`: no strength has that id, it cannot be met).
        let named = grant.and_then(|g| g.authentication_strength.as_ref());
        let strength = named.map(|r| (r, strength::find(&r.id, strengths)));
        let mut have = env.have();
        if let Some((r, found)) = strength {
            let satisfied_by = found.and_then(|s| s.satisfied_by(&ctx.methods)).map(str::to_owned);
            have.strength_met = satisfied_by.is_some();
            have.strength_reachable = found.is_some_and(|s| s.reachable(&ctx.methods));
            res.authentication_strength = Some(StrengthOutcome {
                authentication_strength_id: r.id.clone(),
                display_name: found.map(|s| s.display_name.clone()).unwrap_or_default(),
                authentication_strength_result: match (found, &satisfied_by) {
                    (None, _) => StrengthResult::UnknownStrength,
                    (Some(_), Some(_)) => StrengthResult::Satisfied,
                    (Some(_), None) => StrengthResult::NotSatisfied,
                },
                satisfied_by,
            });
        }
        if let Some(g) = grant.filter(|g| !g.terms_of_use.is_empty()) {
            have.terms_met = g.terms_of_use.iter().all(|t| ctx.accepted_terms.contains(t));
        }
        session_controls(policy, ctx, enforced, &mut res, &mut decision);

        res.result = match (grant_state(grant, have), enforced) {
            (GrantState::Satisfied, true) => PolicyOutcome::Success,
            (GrantState::Satisfied, false) => PolicyOutcome::ReportOnlySuccess,
            (GrantState::Blocked, true) => {
                decision.block.push(policy.id.clone());
                PolicyOutcome::Failure
            }
            (GrantState::Blocked, false) => PolicyOutcome::ReportOnlyFailure,
            (GrantState::Unmet { required, interaction_fixes }, true) => {
                // Terms are asked once MFA (when it would do) has not made them unnecessary.
                if let Some(g) = grant
                    && !have.terms_met
                    && !grant_met(g, have.after_mfa())
                {
                    for t in g.terms_of_use.iter().filter(|t| !ctx.accepted_terms.contains(t)) {
                        if !decision.terms.contains(t) {
                            decision.terms.push(t.clone());
                        }
                    }
                }
                let wants_strength = required.iter().any(|a| a.contains(&Control::AuthenticationStrength));
                if let Some((_, Some(s))) = strength
                    && wants_strength
                    && !decision.strengths.iter().any(|k| k.id == s.id)
                {
                    decision.strengths.push(s.clone());
                }
                decision.required.extend(required);
                if !interaction_fixes {
                    decision.unsatisfiable.push(decision.results.len());
                }
                PolicyOutcome::Failure
            }
            (GrantState::Unmet { interaction_fixes: true, .. }, false) => PolicyOutcome::ReportOnlyInterrupted,
            (GrantState::Unmet { interaction_fixes: false, .. }, false) => PolicyOutcome::ReportOnlyFailure,
        };
        decision.results.push(res);
    }
    decision
}

/// Sign-in frequency and persistent browser of a policy that applies.
fn session_controls(policy: &Policy, ctx: &SignInContext, enforced: bool, res: &mut PolicyResult, d: &mut Decision) {
    let Some(controls) = policy.session_controls.as_ref() else { return };
    if let Some(f) = controls.sign_in_frequency.as_ref().filter(|f| f.is_enabled) {
        res.enforced_session_controls.push("signInFrequency".to_owned());
        let (age, again) = match f.authentication_type {
            FrequencyAuthentication::PrimaryAndSecondaryAuthentication => (ctx.auth_age_secs, &mut d.reauthenticate),
            FrequencyAuthentication::SecondaryAuthentication => (ctx.mfa_age_secs, &mut d.reauthenticate_mfa),
        };
        if enforced && age.is_some_and(|age| age > f.max_age_secs()) {
            *again = true;
        }
    }
    if let Some(p) = controls.persistent_browser.as_ref().filter(|p| p.is_enabled) {
        res.enforced_session_controls.push("persistentBrowser".to_owned());
        if enforced {
            // `never` wins over `always`, as the more restrictive.
            let persist = p.mode == PersistentBrowserMode::Always;
            d.persistent_browser = Some(d.persistent_browser.unwrap_or(true) && persist);
        }
    }
}

pub(super) fn result(policy: &Policy, outcome: PolicyOutcome) -> PolicyResult {
    PolicyResult {
        id: policy.id.clone(),
        display_name: policy.display_name.clone(),
        result: outcome,
        enforced_grant_controls: Vec::new(),
        enforced_session_controls: Vec::new(),
        authentication_strength: None,
        conditions_satisfied: Vec::new(),
        conditions_not_satisfied: Vec::new(),
    }
}

pub(super) struct Env<'a> {
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
            strength_met: false,
            strength_reachable: false,
            terms_met: false,
        }
    }
}

/// The device as policies see it: registered state OR'ed with what inbound trust vouches for.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DeviceView<'a> {
    pub(super) compliant: bool,
    pub(super) managed: bool,
    pub(super) trust_type: Option<&'a str>,
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
pub(super) fn check_conditions(c: &Conditions, env: &Env) -> (Vec<String>, Vec<String>) {
    let ctx = env.ctx;
    let mut checks: Vec<(&str, bool)> = vec![
        (
            condition::APPLICATION,
            included(&c.applications.include_applications, &c.applications.exclude_applications, |v| {
                app_matches(v, ctx)
            }),
        ),
        (condition::USERS, users_condition(&c.users, ctx)),
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
pub(super) fn included(include: &[String], exclude: &[String], matches: impl Fn(&str) -> bool) -> bool {
    include.iter().any(|v| matches(v)) && !exclude.iter().any(|v| matches(v))
}

/// Included by a user value or a group, excluded by neither: an exclusion by group wins
/// over an inclusion by user (`All`, `GuestsOrExternalUsers`, the id) and the other way round.
pub(super) fn users_condition(u: &UsersCondition, ctx: &SignInContext) -> bool {
    let user = |v: &str| user_matches(v, ctx);
    let group = |v: &str| group_matches(v, ctx);
    let include = u.include_users.iter().any(|v| user(v)) || u.include_groups.iter().any(|v| group(v));
    let exclude = u.exclude_users.iter().any(|v| user(v)) || u.exclude_groups.iter().any(|v| group(v));
    include && !exclude
}

/// Group object ids are UUIDs (case-insensitive text); an empty id never matches.
pub(super) fn group_matches(value: &str, ctx: &SignInContext) -> bool {
    !value.is_empty() && ctx.groups.iter().any(|g| g.eq_ignore_ascii_case(value))
}

pub(super) fn user_matches(value: &str, ctx: &SignInContext) -> bool {
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

pub(super) fn app_matches(value: &str, ctx: &SignInContext) -> bool {
    if value.eq_ignore_ascii_case(ALL) {
        true
    } else if value.eq_ignore_ascii_case(NONE) {
        false
    } else {
        // OAuth client ids are case-sensitive.
        !value.is_empty() && value == ctx.app_id
    }
}

pub(super) fn location_condition(l: &LocationsCondition, env: &Env) -> bool {
    let matches = |v: &str| location_matches(v, env);
    // Graph requires includeLocations; without it read "everywhere" so the condition only narrows.
    let include_ok = l.include_locations.is_empty() || l.include_locations.iter().any(|v| matches(v));
    include_ok && !l.exclude_locations.iter().any(|v| matches(v))
}

pub(super) fn location_matches(value: &str, env: &Env) -> bool {
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

pub(super) fn device_condition(d: &DevicesCondition, device: &DeviceView) -> bool {
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
pub(super) struct Have {
    mfa: bool,
    compliant: bool,
    domain_joined: bool,
    /// The policy's authentication strength is met by the methods proven.
    strength_met: bool,
    /// A second factor held here (TOTP or a passkey) would meet it.
    strength_reachable: bool,
    /// Every agreement the policy names is accepted.
    terms_met: bool,
}

impl Have {
    fn has(self, control: Control) -> bool {
        match control {
            Control::Block => false,
            Control::Mfa => self.mfa,
            Control::CompliantDevice => self.compliant,
            Control::DomainJoinedDevice => self.domain_joined,
            Control::AuthenticationStrength => self.strength_met,
            Control::TermsOfUse => self.terms_met,
        }
    }

    /// What the sign-in would have after an interactive MFA step.
    fn after_mfa(self) -> Have {
        Have { mfa: true, strength_met: self.strength_met || self.strength_reachable, ..self }
    }

    /// What the sign-in would have after the steps a person can take: MFA and the terms.
    fn after_interaction(self) -> Have {
        Have { terms_met: true, ..self.after_mfa() }
    }
}

/// The grant's controls, its authentication strength counted as one of them.
pub(super) fn controls_of(grant: &GrantControls) -> Vec<Control> {
    let mut controls = grant.built_in_controls.clone();
    if grant.authentication_strength.is_some() {
        controls.push(Control::AuthenticationStrength);
    }
    if !grant.terms_of_use.is_empty() {
        controls.push(Control::TermsOfUse);
    }
    controls
}

pub(super) enum GrantState {
    Satisfied,
    Blocked,
    Unmet { required: Vec<Vec<Control>>, interaction_fixes: bool },
}

pub(super) fn grant_state(grant: Option<&GrantControls>, have: Have) -> GrantState {
    let Some(grant) = grant else { return GrantState::Satisfied };
    if grant.built_in_controls.contains(&Control::Block) {
        return GrantState::Blocked;
    }
    if grant_met(grant, have) {
        return GrantState::Satisfied;
    }
    let controls = controls_of(grant);
    let required = match grant.operator {
        GrantOperator::And => controls.iter().filter(|c| !have.has(**c)).map(|c| vec![*c]).collect(),
        GrantOperator::Or => vec![controls],
    };
    GrantState::Unmet { required, interaction_fixes: grant_met(grant, have.after_interaction()) }
}

pub(super) fn grant_met(grant: &GrantControls, have: Have) -> bool {
    let controls = controls_of(grant);
    controls.is_empty()
        || match grant.operator {
            GrantOperator::And => controls.iter().all(|c| have.has(*c)),
            GrantOperator::Or => controls.iter().any(|c| have.has(*c)),
        }
}

#[cfg(test)]
mod tests {
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
            (
                "exclude group wins over Guests",
                by_groups(&[GUESTS], &[], &[], &[AUDITORS]),
                auditor.clone(),
                NotApplied,
            ),
            (
                "exclude group wins over user id",
                by_groups(&[SALLY], &[], &[], &[AUDITORS]),
                auditor.clone(),
                NotApplied,
            ),
            (
                "exclude group wins over same group",
                by_groups(&[], &[], &[AUDITORS], &[AUDITORS]),
                auditor.clone(),
                NotApplied,
            ),
            (
                "exclude group wins over other group",
                by_groups(&[], &[], &[STAFF], &[AUDITORS]),
                both.clone(),
                NotApplied,
            ),
            (
                "exclude user wins over include group",
                by_groups(&[], &[ALICE], &[STAFF], &[]),
                staff.clone(),
                NotApplied,
            ),
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
            (
                "grant AND: both",
                scoped(|p| p.grant_controls = grant(And, &[Mfa, CompliantDevice])),
                both.clone(),
                Success,
            ),
            (
                "grant OR: one of two",
                scoped(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])),
                compliant.clone(),
                Success,
            ),
            (
                "grant OR: none",
                scoped(|p| p.grant_controls = grant(Or, &[Mfa, CompliantDevice])),
                auditor.clone(),
                Failure,
            ),
            ("block for the group", scoped(|p| p.grant_controls = grant(And, &[Block])), both.clone(), Failure),
            (
                "block for the group, not a member",
                scoped(|p| p.grant_controls = grant(And, &[Block])),
                guest(),
                NotApplied,
            ),
            (
                "report-only block",
                report(|p| p.grant_controls = grant(And, &[Block])),
                auditor.clone(),
                ReportOnlyFailure,
            ),
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
        let d =
            evaluate(&totp, &[strong(PHISHING_RESISTANT_ID, PolicyState::EnabledForReportingButNotEnforced)], &[], &[]);
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
                    sign_in_frequency: Some(SignInFrequency {
                        is_enabled,
                        ..SignInFrequency::time_based(value, r#type)
                    }),
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
}
