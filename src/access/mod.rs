//! Conditional access inside a sign-in (DESIGN §2.3, §4): after primary authentication
//! (and again when an SSO session is reused) gatehouse evaluates the tenant's policies,
//! per-user and tenant MFA, step-up and licensing, and decides: allow, MFA, or block.
pub mod assignment;
pub mod credential;
pub mod cross_tenant;

use std::net::IpAddr;

use crate::app::AppState;
use crate::model::Device;
use crate::model::{Acr, Amr, Authentication};
use crate::model::{Tenant, User};
use crate::policy::{self, Decision, DeviceState, RiskLevel, Satisfied, SignInContext};
use credential::{GrantState, Presented, Refusal};

/// The app id conditional access sees for gatehouse's own pages.
pub const PORTAL_APP: &str = "gatehouse-portal";

pub use crate::access::credential::Gate;

fn risk(level: Option<&str>) -> Option<RiskLevel> {
    match level? {
        "none" => Some(RiskLevel::None),
        "low" => Some(RiskLevel::Low),
        "medium" => Some(RiskLevel::Medium),
        "high" => Some(RiskLevel::High),
        _ => None,
    }
}

pub fn has_mfa(auth: &Authentication) -> bool {
    auth.amr.contains(&Amr::Mfa)
}

/// The Graph `authenticationMethodModes` an authentication proved, for authentication
/// strengths. The first factor: `password`, a guest's emailed code (`email`) or home sign-in
/// (`federatedSingleFactor`, or `federatedMultiFactor` when the home's MFA is trusted and
/// nothing was added here); then `fido2` for a passkey and `softwareOath` for TOTP (or a
/// recovery code, which stands in for it).
pub fn method_modes(auth: &Authentication) -> Vec<&'static str> {
    use crate::policy::strength::{PASSKEY, TOTP};
    let has = |m: Amr| auth.amr.contains(&m);
    let email = auth.idp.as_deref() == Some(crate::model::EMAIL_OTP_ISSUER);
    let mut modes = Vec::new();
    if has(Amr::Pwd) {
        modes.push("password");
    }
    if email {
        modes.push("email");
    } else if has(Amr::Fed) {
        // amr from the home: `mfa` without a method proven here means the home's MFA.
        let local = has(Amr::Otp) || has(Amr::Hwk);
        modes.push(if has(Amr::Mfa) && !local { "federatedMultiFactor" } else { "federatedSingleFactor" });
    }
    if has(Amr::Hwk) {
        modes.push(PASSKEY);
    }
    // An emailed code is `otp` too: TOTP is the second `otp`-ish proof, i.e. `mfa` without a passkey.
    let totp = if email { has(Amr::Mfa) && !has(Amr::Hwk) } else { has(Amr::Otp) };
    if totp {
        modes.push(TOTP);
    }
    modes
}

/// The pure inputs of the policy engine for this sign-in.
pub fn context(
    user: &User,
    app_id: &str,
    ip: Option<IpAddr>,
    device: Option<&Device>,
    auth: &Authentication,
    age: Option<i64>,
) -> SignInContext {
    // Members carry the admin-set risk level; a guest's risk is evaluated at home.
    let level = if user.is_guest() { None } else { risk(user.risk_level.as_deref()) };
    SignInContext {
        user_id: user.id.to_string(),
        is_guest: user.is_guest(),
        app_id: app_id.to_string(),
        ip,
        device: device.map(|d| DeviceState {
            id: d.id.clone(),
            is_managed: d.is_managed,
            is_compliant: d.is_compliant,
            trust_type: d.trust_type.clone(),
        }),
        user_risk: level,
        sign_in_risk: level,
        satisfied: Satisfied { mfa: has_mfa(auth), ..Default::default() },
        methods: method_modes(auth).into_iter().map(str::to_owned).collect(),
        auth_age_secs: age,
        // A later second factor (a `secondaryAuthentication` re-prompt) is younger.
        mfa_age_secs: age.map(|a| a - auth.mfa_time.map_or(0, |t| (t - auth.auth_time).max(0))),
        groups: user.member_of.iter().map(|g| g.to_string()).collect(),
        // Filled in by `gate`, which knows the tenant's agreements and the time.
        accepted_terms: vec![],
    }
}

/// Decides what this sign-in may do. `age` is `None` for a fresh authentication.
pub async fn gate(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    ctx: &SignInContext,
    step_up: bool,
) -> Result<Gate, crate::storage::StoreError> {
    let ca = state.store.ca_records(&tenant.id).await?;
    let now = state.now();
    let ctx = &SignInContext { accepted_terms: accepted_terms(tenant, user, now), ..ctx.clone() };
    let decision = policy::evaluate(ctx, &ca.policies, &ca.locations, &tenant.authentication_strengths);
    let gate = credential::decide(decision, user.per_user_mfa || tenant.require_mfa, step_up, ctx.satisfied.mfa);
    crate::telemetry::ca_decision(&tenant.slug, gate.label());
    Ok(gate)
}

/// The ids of the tenant's agreements `user` has accepted and need not accept again at `now`.
pub fn accepted_terms(tenant: &Tenant, user: &User, now: i64) -> Vec<String> {
    tenant.agreements.iter().filter(|a| a.accepted_by(user, now)).map(|a| a.id.to_string()).collect()
}

/// The gate for an existing credential (`credential::check`): the user behind it, when
/// it is still good, or why not.
pub async fn credential_user(
    state: &AppState,
    tenant: &Tenant,
    presented: &Presented<'_>,
) -> Result<Result<User, Refusal>, crate::storage::StoreError> {
    let user = state.store.user(&tenant.id, &presented.user_id).await?;
    Ok(credential_user_of(user, presented))
}

/// [`credential_user`] on the user record already read (`None`: there is none).
pub fn credential_user_of(user: Option<User>, presented: &Presented<'_>) -> Result<User, Refusal> {
    credential::check(user.as_ref(), presented).map(|()| user.unwrap_or_default())
}

/// Whether the grant (refresh-token family) behind a token is live: not revoked, not past
/// its absolute lifetime.
pub async fn grant_state(state: &AppState, grant: &uuid::Uuid) -> Result<GrantState, crate::storage::StoreError> {
    Ok(grant_state_of(state, state.store.grant(grant).await?.as_ref()))
}

/// [`grant_state`] of a grant already read (`None`: it is gone).
pub fn grant_state_of(state: &AppState, grant: Option<&crate::model::Grant>) -> GrantState {
    match grant {
        Some(g) if !g.revoked && g.expires_at > state.now() => GrantState::Live,
        _ => GrantState::Ended,
    }
}

/// Conditional access again for a non-interactive sign-in (a refresh): today's policies
/// for this user, app, address and the device the sign-in came from, against what the
/// original authentication proved. Only a decision that needs nobody passes.
pub async fn reevaluate(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    app_id: &str,
    ip: Option<IpAddr>,
    auth: &Authentication,
) -> Result<(Decision, Option<Refusal>), crate::storage::StoreError> {
    let device = match &auth.device_id {
        Some(id) => state.store.device(&tenant.id, id).await?.filter(|d| d.registered_owner == Some(user.id)),
        None => None,
    };
    let age = state.now() - auth.auth_time;
    let ctx = cross_tenant::vouch(tenant, auth, context(user, app_id, ip, device.as_ref(), auth, Some(age)));
    // Only guests from a sibling tenant carry `home`: members pay no extra read.
    if let Some(home) = &auth.home
        && let Some(blocked) = cross_tenant::check(state, tenant, home, Some(app_id)).await?
    {
        return Ok((Decision::default(), Some(Refusal::CrossTenant(blocked.reason()))));
    }
    Ok(credential::non_interactive(gate(state, tenant, user, &ctx, false).await?))
}

/// Why MFA is asked, for the sign-in log.
pub fn mfa_reasons(d: &Decision, user: &User, tenant: &Tenant, step_up: bool) -> String {
    let mut why: Vec<String> = d
        .results
        .iter()
        .filter(|r| {
            r.result == policy::PolicyOutcome::Failure
                && (r.enforced_grant_controls.contains(&policy::Control::Mfa)
                    || r.enforced_grant_controls.contains(&policy::Control::AuthenticationStrength))
        })
        .map(|r| format!("policy {}", r.display_name))
        .collect();
    if user.per_user_mfa {
        why.push("per-user MFA".into());
    }
    if tenant.require_mfa {
        why.push("tenant MFA".into());
    }
    if step_up {
        why.push(format!("the application asked for acr {}", Acr::MultiFactor));
    }
    for s in &d.strengths {
        why.push(format!("authentication strength {}", s.display_name));
    }
    format!("MFA required: {}", why.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EMAIL_OTP_ISSUER;

    fn auth(amr: &[Amr], idp: Option<&str>) -> Authentication {
        Authentication {
            user_id: crate::model::UserId::new(),
            auth_time: 0,
            amr: amr.to_vec(),
            acr: Acr::SingleFactor,
            idp: idp.map(str::to_owned),
            epoch: 0,
            device_id: None,
            home: None,
            mfa_time: None,
        }
    }

    #[test]
    fn method_modes_follow_what_each_sign_in_proved() {
        use Amr::{Fed, Hwk, Mfa, Otp, Pwd, User};
        let home = Some("https://id.example/contoso/v2.0");
        let cases: [(&[Amr], Option<&str>, &[&str]); 10] = [
            (&[Pwd], None, &["password"]),
            (&[Pwd, Otp, Mfa], None, &["password", "softwareOath"]),
            (&[Pwd, Hwk, User, Mfa], None, &["password", "fido2"]),
            (&[Hwk, User, Mfa], None, &["fido2"]),
            (&[Fed], home, &["federatedSingleFactor"]),
            (&[Fed, Mfa], home, &["federatedMultiFactor"]),
            (&[Fed, Otp, Mfa], home, &["federatedSingleFactor", "softwareOath"]),
            (&[Otp], Some(EMAIL_OTP_ISSUER), &["email"]),
            (&[Otp, Mfa], Some(EMAIL_OTP_ISSUER), &["email", "softwareOath"]),
            (&[Otp, Hwk, User, Mfa], Some(EMAIL_OTP_ISSUER), &["email", "fido2"]),
        ];
        for (amr, idp, want) in cases {
            assert_eq!(method_modes(&auth(amr, idp)), want, "{amr:?} {idp:?}");
        }
    }
}
