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

/// The MFA step for a user who must prove a second factor: proof-up (a choice when passkeys
/// are possible here, else TOTP as before), the passkey first for a passkey holder (a choice
/// when they hold TOTP too), else the TOTP challenge.
pub fn mfa_step(state: &AppState, tenant: &Tenant, user: &User, auth: Authentication) -> Step {
    let rp = relying_party(state, tenant);
    if !user.has_mfa_method() {
        if rp.is_some() {
            return Step::MfaChoose { auth };
        }
        return totp_enroll_step(state, tenant, user, auth);
    }
    match rp {
        Some(_) if !user.passkeys.is_empty() && !user.totp_methods.is_empty() => Step::MfaChallengeChoose { auth },
        Some(rp) if !user.passkeys.is_empty() => match passkey::start_authentication(&rp, &user.passkeys) {
            Ok((options, ceremony)) => Step::PasskeyChallenge { auth, options, ceremony },
            Err(e) => {
                tracing::warn!(error = %e, "passkey challenge could not start");
                Step::MfaChallenge { auth }
            }
        },
        _ => Step::MfaChallenge { auth },
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
    signin: &SignIn,
    ctx: SignInContext,
    error: Option<String>,
) -> Option<Result<HttpResponse, PageError>> {
    Some(match &signin.step {
        Step::MfaChoose { .. } => render(&MethodChoicePage { ctx, proof_up: true, error }, vec![]),
        Step::MfaChallengeChoose { .. } => render(&MethodChoicePage { ctx, proof_up: false, error }, vec![]),
        Step::PasskeyEnroll { options, .. } => passkey_page(ctx, false, options, state, error),
        Step::PasskeyChallenge { options, .. } => passkey_page(ctx, true, options, state, error),
        _ => return None,
    })
}

/// After a passkey: `hwk`, `user` when the authenticator verified the person, and `mfa`
/// (with the primary factor, two factors).
fn with_passkey(mut auth: Authentication, user_verified: bool) -> Authentication {
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
    signin.step = match (signin.step.clone(), method) {
        (Step::MfaChoose { auth }, _) if user.has_mfa_method() => mfa_step(&state, &tenant, &user, auth),
        (Step::MfaChoose { auth }, "totp") => totp_enroll_step(&state, &tenant, &user, auth),
        (Step::MfaChoose { auth }, "passkey") => register_step(&state, &tenant, &user, auth)?,
        (Step::MfaChallengeChoose { auth }, "totp") => Step::MfaChallenge { auth },
        (Step::MfaChallengeChoose { auth }, "passkey") => {
            let rp = relying_party(&state, &tenant).ok_or_else(PageError::signin_expired)?;
            let (options, ceremony) =
                passkey::start_authentication(&rp, &user.passkeys).map_err(PageError::internal)?;
            Step::PasskeyChallenge { auth, options, ceremony }
        }
        _ => {
            let ctx = crate::signin::context(&state, &req, &tenant, &tx, &signin).await?;
            let proof_up = matches!(signin.step, Step::MfaChoose { .. });
            return render(&MethodChoicePage { ctx, proof_up, error: Some("Choose a method.".into()) }, vec![]);
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
    if user.has_mfa_method() {
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
    signin.step = Step::MfaEnrolled { auth: with_passkey(auth, true) };
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
    signin.step = mfa_step(state, tenant, &user, auth);
    state.store.put_signin(&digest(tx), &signin).await?;
    let msg = "Your account already has a second factor, set up in another window, so nothing was added. Use that one.";
    crate::signin::step_page(state, req, tenant, tx, &signin, Some(msg.into())).await
}

enum Outcome {
    Ok,
    Refused,
    Locked,
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
    let now = state.now();
    let rp = relying_party(&state, &tenant).ok_or_else(PageError::signin_expired)?;
    let result = passkey::finish_authentication(&rp, f.get("credential").unwrap_or_default(), &ceremony);
    let outcome = match &result {
        Ok(res) => crate::storage::modify_user(&state.store, &tenant.id, &auth.user_id, |u| {
            if u.mfa_lockout.is_locked(now) {
                return Outcome::Locked;
            }
            for m in u.passkeys.iter_mut() {
                match m.update(res) {
                    Update::Updated => return Outcome::Ok,
                    Update::CounterRegressed => return Outcome::Refused,
                    Update::OtherCredential => {}
                }
            }
            Outcome::Refused
        })
        .await?
        .map(|(_, o)| o),
        Err(e) => {
            tracing::info!(user = %auth.user_id, error = %e, "passkey assertion refused");
            Some(Outcome::Refused)
        }
    };
    match (outcome, result) {
        (Some(Outcome::Ok), Ok(res)) => {
            state.store.flush().await?;
            after_primary(&state, &req, &tenant, &tx, signin, with_passkey(auth, res.user_verified()), None).await
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
