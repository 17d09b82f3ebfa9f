//! The one gate for credentials that already exist: "is this grant still good for this
//! request". Every place that lets an SSO session, a code, a refresh token or an access
//! token through asks it (`access::credential_user` and `access::reevaluate` do
//! the I/O), so no handler decides for itself what to re-check.
//!
//! Pure: the user record, what the credential says, and the policy decision come in; an
//! answer goes out. Table-tested below.

use crate::model::Authentication;
use crate::model::{ExternalUserState, User};
use crate::policy::{Decision, PolicyResult};

/// What an existing credential says about the sign-in behind it.
#[derive(Debug, Clone)]
pub struct Presented<'a> {
    pub user_id: crate::model::UserId,
    /// The user's `session_epoch` when the sign-in happened.
    pub epoch: u64,
    /// The home issuer a guest proved their identity with, when the credential records it.
    pub idp: Option<&'a str>,
    /// The grant behind a token (refresh and access tokens); `None` for sessions and codes.
    pub grant: Option<GrantState>,
}

impl<'a> Presented<'a> {
    /// What a session, code or refresh token records of its sign-in.
    pub fn of(auth: &'a Authentication, grant: Option<GrantState>) -> Self {
        Self { user_id: auth.user_id, epoch: auth.epoch, idp: auth.idp.as_deref(), grant }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    Live,
    /// Revoked (logout, reuse, revocation) or past its absolute lifetime, or unknown.
    Ended,
}

/// Why a credential is refused. The first six are permanent: the credential can never
/// become good again. `Blocked` and `Interaction` depend on today's policies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the user no longer exists")]
    UserGone,
    #[error("the account is disabled")]
    Disabled,
    #[error("the user's sessions were revoked")]
    Superseded,
    #[error("the guest has not redeemed the invitation (again)")]
    NotRedeemed,
    #[error("the guest now signs in with another identity")]
    OtherIdentity,
    #[error("the grant was revoked or has expired")]
    GrantEnded,
    #[error("blocked by conditional access: {0}")]
    Blocked(String),
    #[error("interaction_required: {0}")]
    Interaction(String),
    /// Cross-tenant access settings refuse the collaboration (the reason names the setting).
    #[error("{0}")]
    CrossTenant(String),
}

impl Refusal {
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Refusal::Blocked(_) | Refusal::Interaction(_) | Refusal::CrossTenant(_))
    }

    /// A fixed description for protocol answers (`invalid_token`, `invalid_grant`).
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::UserGone => "the user no longer exists",
            Refusal::Disabled => "the account is disabled",
            Refusal::Superseded => "the user's sessions were revoked",
            Refusal::NotRedeemed | Refusal::OtherIdentity => "the guest's redemption was reset",
            Refusal::GrantEnded => "the grant was revoked or has expired",
            Refusal::Blocked(_) => "blocked by conditional access",
            Refusal::Interaction(_) => "interaction_required: sign in again",
            Refusal::CrossTenant(_) => "blocked by cross-tenant access settings",
        }
    }

    /// The error code for the sign-in log.
    pub fn log_code(&self) -> &'static str {
        match self {
            Refusal::Blocked(_) => "access_blocked",
            Refusal::Interaction(_) => "interaction_required",
            Refusal::Disabled => "account_disabled",
            Refusal::CrossTenant(_) => "cross_tenant_blocked",
            _ => "invalid_grant",
        }
    }
}

/// The user behind the credential exists, is enabled, has not had their sessions revoked
/// since, is (for guests) still redeemed with the same home identity, and the grant is live.
pub fn check(user: Option<&User>, p: &Presented<'_>) -> Result<(), Refusal> {
    let user = user.filter(|u| u.id == p.user_id).ok_or(Refusal::UserGone)?;
    if !user.account_enabled {
        return Err(Refusal::Disabled);
    }
    if p.epoch != user.session_epoch {
        return Err(Refusal::Superseded);
    }
    if user.is_guest() {
        if user.external_user_state != Some(ExternalUserState::Accepted) || user.identities.is_empty() {
            return Err(Refusal::NotRedeemed);
        }
        if let Some(idp) = p.idp
            && !user.identities.iter().any(|i| i.issuer == idp)
        {
            return Err(Refusal::OtherIdentity);
        }
    }
    if p.grant == Some(GrantState::Ended) {
        return Err(Refusal::GrantEnded);
    }
    Ok(())
}

/// What conditional access (and per-user / tenant MFA, step-up) decides for a sign-in.
pub enum Gate {
    Allow(Decision),
    Mfa(Decision),
    Block {
        decision: Decision,
        code: &'static str,
        policies: Vec<String>,
    },
    Reauthenticate(Decision),
    /// Only terms of use are left: the user accepts them (DESIGN §12).
    Terms(Decision),
}

impl Gate {
    /// The decision as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Gate::Allow(_) => "allow",
            Gate::Mfa(_) => "mfa",
            Gate::Block { .. } => "block",
            Gate::Reauthenticate(_) => "reauthenticate",
            Gate::Terms(_) => "terms",
        }
    }
}

/// Turns a policy decision into what the sign-in must do. `require_mfa`: per-user or
/// tenant-wide MFA; `mfa_proven`: what the authentication already proved.
pub fn decide(decision: Decision, require_mfa: bool, step_up: bool, mfa_proven: bool) -> Gate {
    if decision.is_blocked() {
        let names = names(&decision, |r| decision.block.contains(&r.id));
        return Gate::Block { decision, code: "access_blocked", policies: names };
    }
    let unsatisfiable: Vec<String> = decision.unsatisfiable().iter().map(|r| r.display_name.clone()).collect();
    if !unsatisfiable.is_empty() {
        return Gate::Block { decision, code: "access_blocked", policies: unsatisfiable };
    }
    if decision.reauthenticate {
        return Gate::Reauthenticate(decision);
    }
    // `secondaryAuthentication`: only the second factor is asked again.
    if decision.needs_mfa() || decision.reauthenticate_mfa || ((require_mfa || step_up) && !mfa_proven) {
        return Gate::Mfa(decision);
    }
    if decision.needs_terms() {
        return Gate::Terms(decision);
    }
    Gate::Allow(decision)
}

fn names(d: &Decision, pick: impl Fn(&PolicyResult) -> bool) -> Vec<String> {
    d.results.iter().filter(|r| pick(r)).map(|r| r.display_name.clone()).collect()
}

/// A non-interactive sign-in (refresh) cannot ask the user anything: only `Allow` passes;
/// anything else is refused, with the decision kept for the sign-in log.
pub fn non_interactive(gate: Gate) -> (Decision, Option<Refusal>) {
    match gate {
        Gate::Allow(d) => (d, None),
        Gate::Block { decision, policies, .. } => (decision, Some(Refusal::Blocked(policies.join(", ")))),
        Gate::Mfa(d) => {
            (d, Some(Refusal::Interaction("multi-factor authentication is now required; sign in again".into())))
        }
        Gate::Reauthenticate(d) => {
            (d, Some(Refusal::Interaction("the sign-in frequency has passed; sign in again".into())))
        }
        Gate::Terms(d) => (d, Some(Refusal::Interaction("terms of use must be accepted; sign in again".into()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Identity, UserType};

    fn member() -> User {
        User {
            id: uuid::Uuid::from_u128(1).into(),
            user_type: UserType::Member,
            account_enabled: true,
            ..Default::default()
        }
    }

    fn guest() -> User {
        User {
            id: uuid::Uuid::from_u128(2).into(),
            user_type: UserType::Guest,
            account_enabled: true,
            external_user_state: Some(ExternalUserState::Accepted),
            identities: vec![Identity {
                sign_in_type: "federated".into(),
                issuer: "https://home.example/v2.0".into(),
                issuer_assigned_id: "s".into(),
            }],
            ..Default::default()
        }
    }

    fn presented(u: &User) -> Presented<'static> {
        Presented { user_id: u.id, epoch: u.session_epoch, idp: None, grant: None }
    }

    #[test]
    fn the_credential_table() {
        type Case = (&'static str, Box<dyn Fn(&mut User, &mut Presented<'static>)>, Result<(), Refusal>);
        let cases: Vec<(&str, User, Case)> = vec![
            ("member, nothing changed", member(), ("ok", Box::new(|_, _| {}), Ok(()))),
            ("guest, nothing changed", guest(), ("ok", Box::new(|_, _| {}), Ok(()))),
            ("guest, same home", guest(), ("ok", Box::new(|_, p| p.idp = Some("https://home.example/v2.0")), Ok(()))),
            (
                "member disabled",
                member(),
                ("disabled", Box::new(|u, _| u.account_enabled = false), Err(Refusal::Disabled)),
            ),
            (
                "sessions revoked since",
                member(),
                ("epoch", Box::new(|u, _| u.session_epoch += 1), Err(Refusal::Superseded)),
            ),
            (
                "credential from a later epoch (never issued)",
                member(),
                ("epoch", Box::new(|_, p| p.epoch += 1), Err(Refusal::Superseded)),
            ),
            (
                "guest redemption reset",
                guest(),
                (
                    "reset",
                    Box::new(|u, _| {
                        u.external_user_state = Some(ExternalUserState::PendingAcceptance);
                        u.identities.clear();
                    }),
                    Err(Refusal::NotRedeemed),
                ),
            ),
            (
                "guest redeemed again with another home",
                guest(),
                ("other", Box::new(|_, p| p.idp = Some("https://other.example/v2.0")), Err(Refusal::OtherIdentity)),
            ),
            (
                "grant revoked",
                member(),
                ("grant", Box::new(|_, p| p.grant = Some(GrantState::Ended)), Err(Refusal::GrantEnded)),
            ),
            ("grant live", member(), ("grant", Box::new(|_, p| p.grant = Some(GrantState::Live)), Ok(()))),
            (
                "another user's record",
                member(),
                ("swap", Box::new(|_, p| p.user_id = uuid::Uuid::from_u128(9).into()), Err(Refusal::UserGone)),
            ),
            (
                "disabled wins over an ended grant",
                member(),
                (
                    "both",
                    Box::new(|u, p| {
                        u.account_enabled = false;
                        p.grant = Some(GrantState::Ended);
                    }),
                    Err(Refusal::Disabled),
                ),
            ),
        ];
        for (name, mut user, (_, tweak, expected)) in cases {
            let mut p = presented(&user);
            tweak(&mut user, &mut p);
            assert_eq!(check(Some(&user), &p), expected, "{name}");
        }
        assert_eq!(check(None, &presented(&member())), Err(Refusal::UserGone), "deleted user");
    }

    #[test]
    fn a_refresh_passes_only_what_needs_no_user() {
        use crate::policy::Control;
        let with = |f: &dyn Fn(&mut Decision)| {
            let mut d = Decision::default();
            f(&mut d);
            d
        };
        let mfa_policy = with(&|d| d.required = vec![vec![Control::Mfa]]);
        let blocked = with(&|d| d.block = vec!["p".into()]);
        let frequency = with(&|d| d.reauthenticate = true);
        // (what, decision, per-user/tenant MFA, step_up, mfa proven, passes without the user)
        let cases = [
            ("no policy", Decision::default(), false, false, false, true),
            ("policy asks MFA, none proven", mfa_policy, false, false, false, false),
            ("per-user MFA, proven", Decision::default(), true, false, true, true),
            ("per-user MFA, not proven", Decision::default(), true, false, false, false),
            ("step-up not proven", Decision::default(), false, true, false, false),
            ("blocked", blocked, false, false, true, false),
            ("sign-in frequency passed", frequency, false, false, true, false),
        ];
        for (what, d, require_mfa, step_up, proven, passes) in cases {
            let (_, refusal) = non_interactive(decide(d, require_mfa, step_up, proven));
            assert_eq!(refusal.is_none(), passes, "{what}");
            if let Some(r) = refusal {
                assert!(!r.is_permanent(), "{what}: a policy refusal is never permanent");
            }
        }
    }

    #[test]
    fn permanent_refusals_are_told_apart_from_policy_ones() {
        assert!(Refusal::Disabled.is_permanent());
        assert!(Refusal::Superseded.is_permanent());
        assert!(!Refusal::Blocked("p".into()).is_permanent());
        assert!(!Refusal::Interaction("mfa".into()).is_permanent());
    }
}
