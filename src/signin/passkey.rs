//! Passkeys beside TOTP (DESIGN §10): the method choice at proof-up and at the challenge,
//! the passkey registration and the passkey challenge. The ceremony state lives in the
//! sign-in transaction; each answer spends it (a refused one gets a fresh ceremony).
use actix_web::http::header::{CONTENT_SECURITY_POLICY, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::mfa::passkey::{self, PasskeyMethod, Update};
use crate::model::{Acr, Amr, Authentication, SignIn, Step, Tenant, User};
use crate::secrets::digest;
use crate::signin::flow::after_primary;
use crate::signin::posted;
use crate::web::Data;
use crate::web::error::PageError;
use crate::web::pages::{MethodChoicePage, PasskeyPage, RecoveryCodesPage, SignInContext, json_in_script, render};

const REFUSED: &str = "That passkey could not be verified. Try again.";

/// The relying party of this instance; `None` when `public_url` has no domain name.
pub fn relying_party(state: &AppState, tenant: &Tenant) -> Option<webauthn_rs::prelude::Webauthn> {
    passkey::relying_party(&state.public_url, &tenant.display_name)
}

/// Which second factors the MFA step may use: those that, added to what the sign-in proved,
/// meet every authentication strength conditional access requires (any, without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub totp: bool,
    pub passkey: bool,
}

/// The methods `signin`'s strengths allow after `auth`; passkeys only where they are possible.
pub fn offer(state: &AppState, tenant: &Tenant, signin: &SignIn, auth: &Authentication) -> Offer {
    use crate::policy::strength::{PASSKEY, TOTP};
    let modes: Vec<String> = crate::access::method_modes(auth).into_iter().map(str::to_owned).collect();
    let allows = |m: &str| signin.strengths.iter().all(|s| s.satisfiable_with(&modes, m));
    Offer { totp: allows(TOTP), passkey: allows(PASSKEY) && relying_party(state, tenant).is_some() }
}

/// Whether `auth` already used a second factor held here (TOTP, a recovery code or a
/// passkey): only then may the sign-in add another method (a strength asks for one).
fn proved_held_method(auth: &Authentication) -> bool {
    use crate::policy::strength::{PASSKEY, TOTP};
    crate::access::method_modes(auth).iter().any(|m| *m == TOTP || *m == PASSKEY)
}

/// The one sentence the MFA pages say when a strength narrows the methods (no policy named).
pub fn strength_note(tenant: &Tenant, app_name: &str, signin: &SignIn, offer: Offer) -> Option<String> {
    if signin.strengths.is_empty() {
        return None;
    }
    let names: Vec<&str> = signin.strengths.iter().map(|s| s.display_name.as_str()).collect();
    let only = match (offer.totp, offer.passkey) {
        (false, true) => " Only a passkey meets it.",
        (true, false) => " Only an authenticator app meets it.",
        _ => "",
    };
    Some(format!("{} requires {} for {app_name}.{only}", tenant.display_name, names.join(" and ")))
}

/// A strength that no method possible here meets: a clear stop, nothing changed.
fn strength_unavailable(tenant: &Tenant, signin: &SignIn) -> PageError {
    let names: Vec<&str> = signin.strengths.iter().map(|s| s.display_name.as_str()).collect();
    PageError::new(
        actix_web::http::StatusCode::FORBIDDEN,
        "strength_unavailable",
        format!(
            "{} requires {} for this application, and none of the methods you can use here meets it. Ask its administrator.",
            tenant.display_name,
            names.join(" and ")
        ),
    )
}

/// The MFA step for a user who must prove a second factor, among the methods the required
/// strengths allow ([`offer`]): proof-up (a choice when both are allowed), the passkey first
/// for a passkey holder (a choice when they hold TOTP too), else the TOTP challenge. A user
/// whose methods all fall short proves one of them first, then registers a passkey.
pub fn mfa_step(
    state: &AppState,
    tenant: &Tenant,
    signin: &SignIn,
    user: &User,
    auth: Authentication,
) -> Result<Step, PageError> {
    let offer = offer(state, tenant, signin, &auth);
    if !offer.totp && !offer.passkey {
        return Err(strength_unavailable(tenant, signin));
    }
    if !user.has_mfa_method() {
        return match (offer.totp, offer.passkey) {
            (true, true) => Ok(Step::MfaChoose { auth }),
            (true, false) => Ok(totp_enroll_step(state, tenant, user, auth)),
            _ => register_step(state, tenant, user, auth),
        };
    }
    let held_totp = offer.totp && !user.totp_methods.is_empty();
    let held_passkey = offer.passkey && !user.passkeys.is_empty();
    Ok(match (held_totp, held_passkey) {
        (true, true) => Step::MfaChallengeChoose { auth },
        (_, true) => passkey_challenge_step(state, tenant, user, auth),
        (true, false) => Step::MfaChallenge { auth },
        // Nothing held meets the strength: a passkey is added once a held method was proven.
        (false, false) if proved_held_method(&auth) && offer.passkey => register_step(state, tenant, user, auth)?,
        (false, false) if proved_held_method(&auth) => return Err(strength_unavailable(tenant, signin)),
        (false, false) if !user.passkeys.is_empty() && relying_party(state, tenant).is_some() => {
            passkey_challenge_step(state, tenant, user, auth)
        }
        (false, false) => Step::MfaChallenge { auth },
    })
}

fn passkey_challenge_step(state: &AppState, tenant: &Tenant, user: &User, auth: Authentication) -> Step {
    let started = relying_party(state, tenant)
        .ok_or(passkey::PasskeyError::Unavailable)
        .and_then(|rp| passkey::start_authentication(&rp, &user.passkeys));
    match started {
        Ok((options, ceremony)) => Step::PasskeyChallenge { auth, options, ceremony },
        Err(e) => {
            tracing::warn!(error = %e, "passkey challenge could not start");
            Step::MfaChallenge { auth }
        }
    }
}

fn totp_enroll_step(state: &AppState, tenant: &Tenant, user: &User, auth: Authentication) -> Step {
    let enrollment = crate::mfa::new_enrollment(&tenant.display_name, &user.user_principal_name);
    Step::MfaEnroll { auth, secret_b32: state.seal.seal(&enrollment.secret_b32) }
}

fn register_step(state: &AppState, tenant: &Tenant, user: &User, auth: Authentication) -> Result<Step, PageError> {
    let rp = relying_party(state, tenant).ok_or_else(PageError::signin_expired)?;
    let (options, ceremony) = passkey::start_registration(
        &rp,
        user.id.as_uuid(),
        &user.user_principal_name,
        &user.display_name,
        &user.passkeys,
    )
    .map_err(PageError::internal)?;
    Ok(Step::PasskeyEnroll { auth, options, ceremony })
}

/// The passkey pages allow exactly `static/passkey.js` (and no inline script).
fn passkey_page(
    ctx: SignInContext,
    challenge: bool,
    options: &str,
    state: &AppState,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let page = PasskeyPage { ctx, challenge, options: json_in_script(options), error };
    let mut resp = render(&page, vec![])?;
    let csp = crate::web::csp::passkey_page(&format!("{}/static/passkey.js", state.public_url));
    resp.headers_mut().insert(CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).map_err(PageError::internal)?);
    Ok(resp)
}

/// The page of a passkey step, or `None` for another step.
pub fn step_page(
    state: &AppState,
    tenant: &Tenant,
    signin: &SignIn,
    ctx: SignInContext,
    error: Option<String>,
) -> Option<Result<HttpResponse, PageError>> {
    let choice = |auth: &Authentication, proof_up: bool, ctx: SignInContext| {
        let o = offer(state, tenant, signin, auth);
        render(&MethodChoicePage { ctx, proof_up, error: error.clone(), totp: o.totp, passkey: o.passkey }, vec![])
    };
    Some(match &signin.step {
        Step::MfaChoose { auth } => choice(auth, true, ctx),
        Step::MfaChallengeChoose { auth } => choice(auth, false, ctx),
        Step::PasskeyEnroll { options, .. } => passkey_page(ctx, false, options, state, error),
        Step::PasskeyChallenge { options, .. } => passkey_page(ctx, true, options, state, error),
        _ => return None,
    })
}

/// After a passkey: `hwk`, `user` when the authenticator verified the person, and `mfa`
/// (with the primary factor, two factors), proven at `now`.
fn with_passkey(mut auth: Authentication, user_verified: bool, now: i64) -> Authentication {
    let mut add = vec![Amr::Hwk];
    if user_verified {
        add.push(Amr::User);
    }
    add.push(Amr::Mfa);
    for m in add {
        if !auth.amr.contains(&m) {
            auth.amr.push(m);
        }
    }
    auth.acr = Acr::MultiFactor;
    auth.mfa_time = Some(now);
    auth
}

/// `form#method-choice`: at proof-up TOTP enrolment or a passkey registration; at the
/// challenge the TOTP challenge or the passkey challenge.
pub async fn choose(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, mut signin) =
        posted(&req, &state, &path, &body, |s| matches!(s, Step::MfaChoose { .. } | Step::MfaChallengeChoose { .. }))
            .await?;
    let user = crate::signin::signin_user(&state, &tenant, &signin).await?;
    let method = f.get("method").unwrap_or_default();
    let (Step::MfaChoose { auth } | Step::MfaChallengeChoose { auth }) = signin.step.clone() else {
        return Err(PageError::signin_expired());
    };
    let o = offer(&state, &tenant, &signin, &auth);
    let offered = (method == "totp" && o.totp) || (method == "passkey" && o.passkey);
    signin.step = match (&signin.step, offered) {
        (Step::MfaChoose { .. }, _) if user.has_mfa_method() => mfa_step(&state, &tenant, &signin, &user, auth)?,
        (Step::MfaChoose { .. }, true) if method == "totp" => totp_enroll_step(&state, &tenant, &user, auth),
        (Step::MfaChoose { .. }, true) => register_step(&state, &tenant, &user, auth)?,
        (Step::MfaChallengeChoose { .. }, true) if method == "totp" => Step::MfaChallenge { auth },
        (Step::MfaChallengeChoose { .. }, true) => passkey_challenge_step(&state, &tenant, &user, auth),
        _ => {
            let ctx = crate::signin::context(&state, &req, &tenant, &tx, &signin).await?;
            let proof_up = matches!(signin.step, Step::MfaChoose { .. });
            let error = Some("Choose one of the methods offered.".into());
            return render(&MethodChoicePage { ctx, proof_up, error, totp: o.totp, passkey: o.passkey }, vec![]);
        }
    };
    state.store.put_signin(&digest(&tx), &signin).await?;
    Ok(crate::signin::to_login_page(&tenant, &tx))
}

/// `form#passkey-register`: the first passkey; then the recovery codes, as after TOTP.
pub async fn register(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, mut signin) =
        posted(&req, &state, &path, &body, |s| matches!(s, Step::PasskeyEnroll { .. })).await?;
    let Step::PasskeyEnroll { auth, ceremony, .. } = signin.step.clone() else {
        return Err(PageError::signin_expired());
    };
    let now = state.now();
    let user = state.store.user(&tenant.id, &auth.user_id).await?.ok_or_else(PageError::signin_expired)?;
    // A holder adds a passkey only after proving a method they hold, in this sign-in.
    let adding = user.has_mfa_method() && proved_held_method(&auth);
    if user.has_mfa_method() && !adding {
        return enrolled_elsewhere(&state, &req, &tenant, &tx, signin, &user, auth).await;
    }
    let rp = relying_party(&state, &tenant).ok_or_else(PageError::signin_expired)?;
    let posted_cred = f.get("credential").unwrap_or_default();
    let method = match passkey::finish_registration(&rp, posted_cred, &ceremony) {
        Ok((pk, aaguid)) => PasskeyMethod::new(&pk, aaguid, now).ok_or_else(|| PageError::internal("passkey json"))?,
        Err(e) => {
            tracing::info!(user = %user.id, error = %e, "passkey registration refused");
            // The ceremony is spent: a fresh one for the next try.
            signin.step = register_step(&state, &tenant, &user, auth)?;
            state.store.put_signin(&digest(&tx), &signin).await?;
            return crate::signin::step_page(&state, &req, &tenant, &tx, &signin, Some(REFUSED.into())).await;
        }
    };
    if adding {
        let added = crate::storage::modify_user(&state.store, &tenant.id, &auth.user_id, |u| {
            if u.passkeys.len() >= crate::mfa::passkey::MAX_PASSKEYS {
                return false;
            }
            u.passkeys.push(method.clone());
            true
        })
        .await?
        .is_some_and(|(_, added)| added);
        if !added {
            return Err(PageError::bad_request(
                "too_many_passkeys",
                "Your account has as many passkeys as it may hold. Ask your administrator to remove one.",
            ));
        }
        state.store.flush().await?;
        tracing::info!(user = %user.id, "passkey added after a held method was proven");
        return after_primary(&state, &req, &tenant, &tx, signin, with_passkey(auth, true, state.now()), None).await;
    }
    let (codes, hashes) = crate::mfa::new_recovery_codes();
    // As for TOTP: the first method wins, and the seat is checked in the same write.
    let enrolled = crate::signin::mfa::enroll_first_method(&state, &tenant, &auth.user_id, &hashes, |u| {
        u.passkeys = vec![method.clone()]
    })
    .await?;
    if !enrolled {
        return enrolled_elsewhere(&state, &req, &tenant, &tx, signin, &user, auth).await;
    }
    state.store.flush().await?;
    // webauthn-rs registers passkeys with user verification required.
    signin.step = Step::MfaEnrolled { auth: with_passkey(auth, true, state.now()) };
    state.store.put_signin(&digest(&tx), &signin).await?;
    let ctx = crate::signin::context(&state, &req, &tenant, &tx, &signin).await?;
    render(&RecoveryCodesPage { ctx, codes }, vec![])
}

/// A method was set up in another window meanwhile: nothing is added; on to its challenge.
pub(crate) async fn enrolled_elsewhere(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    mut signin: SignIn,
    user: &User,
    auth: Authentication,
) -> Result<HttpResponse, PageError> {
    let user = state.store.user(&tenant.id, &user.id).await?.ok_or_else(PageError::signin_expired)?;
    signin.step = mfa_step(state, tenant, &signin, &user, auth)?;
    state.store.put_signin(&digest(tx), &signin).await?;
    let msg = "Your account already has a second factor, set up in another window, so nothing was added. Use that one.";
    crate::signin::step_page(state, req, tenant, tx, &signin, Some(msg.into())).await
}

/// What an assertion that webauthn-rs verified did at the user's record.
pub(crate) enum Outcome {
    Ok,
    /// No passkey of the user's has that credential, or its counter did not grow.
    Refused,
    Locked,
}

/// Accepts a verified assertion in one write: refused while MFA is locked, or when the
/// counter did not grow (a cloned authenticator or a replay); else the passkey's counter and
/// backup state move on. `None`: the user is gone.
pub(crate) async fn accept_assertion(
    state: &AppState,
    tenant: &Tenant,
    user: &crate::model::UserId,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<Option<Outcome>, crate::storage::StoreError> {
    let now = state.now();
    let outcome = crate::storage::modify_user(&state.store, &tenant.id, user, |u| {
        if u.mfa_lockout.is_locked(now) {
            return Outcome::Locked;
        }
        for m in u.passkeys.iter_mut() {
            match m.update(result) {
                Update::Updated => return Outcome::Ok,
                Update::CounterRegressed => return Outcome::Refused,
                Update::OtherCredential => {}
            }
        }
        Outcome::Refused
    })
    .await?;
    Ok(outcome.map(|(_, o)| o))
}

/// `form#passkey-challenge`: the assertion, checked against this transaction's ceremony;
/// the stored counter moves forward in the same write that accepts it.
pub async fn challenge(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, mut signin) =
        posted(&req, &state, &path, &body, |s| matches!(s, Step::PasskeyChallenge { .. })).await?;
    let Step::PasskeyChallenge { auth, ceremony, .. } = signin.step.clone() else {
        return Err(PageError::signin_expired());
    };
    // The second button of the form: a recovery code (or an authenticator app) instead,
    // on the TOTP challenge that accepts both.
    if f.get("use") == Some("recovery-code") {
        signin.step = Step::MfaChallenge { auth };
        state.store.put_signin(&digest(&tx), &signin).await?;
        return Ok(crate::signin::to_login_page(&tenant, &tx));
    }
    let rp = relying_party(&state, &tenant).ok_or_else(PageError::signin_expired)?;
    let result = passkey::finish_authentication(&rp, f.get("credential").unwrap_or_default(), &ceremony);
    let outcome = match &result {
        Ok(res) => accept_assertion(&state, &tenant, &auth.user_id, res).await?,
        Err(e) => {
            tracing::info!(user = %auth.user_id, error = %e, "passkey assertion refused");
            Some(Outcome::Refused)
        }
    };
    if let Some(o) = &outcome {
        crate::telemetry::mfa_verification(&tenant.slug, "passkey", matches!(o, Outcome::Ok));
    }
    match (outcome, result) {
        (Some(Outcome::Ok), Ok(res)) => {
            state.store.flush().await?;
            after_primary(
                &state,
                &req,
                &tenant,
                &tx,
                signin,
                with_passkey(auth, res.user_verified(), state.now()),
                None,
            )
            .await
        }
        (None, _) => Err(PageError::signin_expired()),
        (Some(o), _) => {
            // The ceremony is spent either way: a fresh one for the next try.
            let user = state.store.user(&tenant.id, &auth.user_id).await?.ok_or_else(PageError::signin_expired)?;
            let (options, ceremony) =
                passkey::start_authentication(&rp, &user.passkeys).map_err(PageError::internal)?;
            signin.step = Step::PasskeyChallenge { auth, options, ceremony };
            state.store.put_signin(&digest(&tx), &signin).await?;
            let msg = match o {
                Outcome::Locked => {
                    "Too many wrong codes. Multi-factor authentication is locked for 15 minutes for your account."
                }
                _ => REFUSED,
            };
            crate::signin::step_page(&state, &req, &tenant, &tx, &signin, Some(msg.into())).await
        }
    }
}
