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
#[path = "evaluate_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "evaluate_session_tests.rs"]
mod session_tests;
