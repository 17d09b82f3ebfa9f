//! Table tests of `evaluate` for DESIGN §12: terms of use, `everyTime` and
//! `secondaryAuthentication` sign-in frequencies, persistent browser.
use super::*;
use crate::policy::testkit::*;
use Control::{CompliantDevice, Mfa, TermsOfUse};
use GrantOperator::{And, Or};

const TERMS: &str = "7e000000-0000-4000-8000-0000000000c1";

fn terms_policy(op: GrantOperator, controls: &[Control]) -> Policy {
    pol(|p| {
        let mut g = grant(op, controls).unwrap();
        g.terms_of_use = strs(&[TERMS]);
        p.grant_controls = Some(g);
    })
}

fn accepted(ctx: SignInContext) -> SignInContext {
    with(ctx, |c| c.accepted_terms = strs(&[TERMS]))
}

#[test]
fn terms_of_use() {
    let mfa = |c: SignInContext| with(c, |c| c.satisfied.mfa = true);
    let noncompliant = |c: SignInContext| {
        with(c, |c| {
            c.device = Some(DeviceState { id: "d".into(), is_managed: false, is_compliant: false, trust_type: None })
        })
    };
    // (case, policy, context, outcome, terms asked, MFA asked, unsatisfiable)
    let cases: Vec<(&str, Policy, SignInContext, PolicyOutcome, bool, bool, bool)> = vec![
        ("terms alone, not accepted", terms_policy(And, &[]), guest(), PolicyOutcome::Failure, true, false, false),
        (
            "terms alone, accepted",
            terms_policy(And, &[]),
            accepted(guest()),
            PolicyOutcome::Success,
            false,
            false,
            false,
        ),
        (
            "AND mfa: neither (MFA first, then terms)",
            terms_policy(And, &[Mfa]),
            guest(),
            PolicyOutcome::Failure,
            true,
            true,
            false,
        ),
        ("AND mfa: MFA done", terms_policy(And, &[Mfa]), mfa(guest()), PolicyOutcome::Failure, true, false, false),
        (
            "AND mfa: both",
            terms_policy(And, &[Mfa]),
            accepted(mfa(guest())),
            PolicyOutcome::Success,
            false,
            false,
            false,
        ),
        (
            "OR mfa: MFA would do, terms not asked",
            terms_policy(Or, &[Mfa]),
            guest(),
            PolicyOutcome::Failure,
            false,
            true,
            false,
        ),
        (
            "OR mfa: accepted is enough",
            terms_policy(Or, &[Mfa]),
            accepted(guest()),
            PolicyOutcome::Success,
            false,
            false,
            false,
        ),
        (
            "AND device: no accepting helps",
            terms_policy(And, &[CompliantDevice]),
            noncompliant(guest()),
            PolicyOutcome::Failure,
            true,
            false,
            true,
        ),
        (
            "policy for members only",
            {
                let mut p = terms_policy(And, &[]);
                p.conditions.users = users(&[ALL], &[]);
                p.conditions.users.exclude_users = strs(&[GUESTS]);
                p
            },
            guest(),
            PolicyOutcome::NotApplied,
            false,
            false,
            false,
        ),
        (
            "report-only",
            {
                let mut p = terms_policy(And, &[]);
                p.state = PolicyState::EnabledForReportingButNotEnforced;
                p
            },
            guest(),
            PolicyOutcome::ReportOnlyInterrupted,
            false,
            false,
            false,
        ),
    ];
    for (name, policy, ctx, outcome, terms, mfa, unsatisfiable) in cases {
        let d = eval(&ctx, &[policy]);
        assert_eq!(d.results[0].result, outcome, "case: {name}");
        assert_eq!(d.needs_terms(), terms, "case {name}: terms {:?}", d.terms);
        if terms {
            assert_eq!(d.terms, strs(&[TERMS]), "case: {name}");
        }
        assert_eq!(d.needs_mfa(), mfa, "case {name}: required {:?}", d.required);
        assert_eq!(!d.unsatisfiable().is_empty(), unsatisfiable, "case: {name}");
        if outcome == PolicyOutcome::Failure {
            assert!(d.results[0].enforced_grant_controls.contains(&TermsOfUse), "case: {name}");
        }
    }
}

fn frequency(f: SignInFrequency) -> Policy {
    pol(|p| {
        p.grant_controls = None;
        p.session_controls = Some(SessionControls { sign_in_frequency: Some(f), persistent_browser: None });
    })
}

#[test]
fn every_time_and_secondary_authentication() {
    let every = SignInFrequency {
        frequency_interval: FrequencyInterval::EveryTime,
        ..SignInFrequency::time_based(0, FrequencyType::Hours)
    };
    let secondary = SignInFrequency {
        authentication_type: FrequencyAuthentication::SecondaryAuthentication,
        ..SignInFrequency::time_based(1, FrequencyType::Hours)
    };
    let ages = |auth: Option<i64>, mfa: Option<i64>| {
        with(member(), |c| {
            c.auth_age_secs = auth;
            c.mfa_age_secs = mfa;
        })
    };
    // (case, frequency, context, sign in again, MFA again)
    let cases = vec![
        ("everyTime, fresh", every.clone(), ages(None, None), false, false),
        ("everyTime, within the 5-minute grace", every.clone(), ages(Some(300), Some(300)), false, false),
        ("everyTime, past the grace", every.clone(), ages(Some(301), Some(301)), true, false),
        ("secondary, MFA 1h old", secondary.clone(), ages(Some(7200), Some(3600)), false, false),
        ("secondary, MFA older than 1h", secondary.clone(), ages(Some(7200), Some(3601)), false, true),
        ("secondary, fresh", secondary.clone(), ages(None, None), false, false),
        (
            "secondary everyTime",
            SignInFrequency { frequency_interval: FrequencyInterval::EveryTime, ..secondary.clone() },
            ages(Some(90_000), Some(400)),
            false,
            true,
        ),
    ];
    for (name, f, ctx, again, mfa_again) in cases {
        let d = eval(&ctx, &[frequency(f)]);
        assert_eq!(d.reauthenticate, again, "case: {name}");
        assert_eq!(d.reauthenticate_mfa, mfa_again, "case: {name}");
        assert_eq!(d.allowed(), !again && !mfa_again, "case: {name}");
        assert_eq!(d.results[0].enforced_session_controls, strs(&["signInFrequency"]), "case: {name}");
    }
    assert_eq!(every.max_age_secs(), EVERY_TIME_GRACE_SECS);
}

fn persistent(id: &str, mode: PersistentBrowserMode, state: PolicyState) -> Policy {
    let mut p = base(id);
    p.state = state;
    p.grant_controls = None;
    p.session_controls = Some(SessionControls {
        sign_in_frequency: None,
        persistent_browser: Some(PersistentBrowser { mode, is_enabled: true }),
    });
    p
}

#[test]
fn persistent_browser_never_wins() {
    use PersistentBrowserMode::{Always, Never};
    use PolicyState::{Enabled, EnabledForReportingButNotEnforced as ReportOnly};
    let cases = vec![
        ("no policy", vec![], None),
        ("always", vec![persistent("a", Always, Enabled)], Some(true)),
        ("never", vec![persistent("n", Never, Enabled)], Some(false)),
        ("always and never", vec![persistent("a", Always, Enabled), persistent("n", Never, Enabled)], Some(false)),
        ("never and always", vec![persistent("n", Never, Enabled), persistent("a", Always, Enabled)], Some(false)),
        ("report-only never", vec![persistent("a", Always, Enabled), persistent("n", Never, ReportOnly)], Some(true)),
        (
            "never not applying",
            vec![persistent("a", Always, Enabled), {
                let mut p = persistent("n", Never, Enabled);
                p.conditions.users = users(&[GUESTS], &[]);
                p
            }],
            Some(true),
        ),
    ];
    for (name, policies, expected) in cases {
        let d = eval(&member(), &policies);
        assert_eq!(d.persistent_browser, expected, "case: {name}");
        assert!(d.allowed(), "case {name}: a session control alone never stops a sign-in");
    }
}
