//! Passwordless sign-in with a passkey (DESIGN §10): the identify page offers a
//! discoverable-credential ceremony (`form#passwordless-signin`, `button#passkey-signin`) bound
//! to the sign-in transaction and spent by its first answer. A member's passkey with user
//! verification proves two factors (`hwk user mfa`); guests sign in at home instead.
use actix_web::http::header::{CONTENT_SECURITY_POLICY, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::mfa::passkey;
use crate::model::{Acr, Amr, Authentication, Ceremony, SignIn, Step, Tenant};
use crate::secrets::digest;
use crate::signin::flow::after_primary;
use crate::signin::passkey::{Outcome, accept_assertion, relying_party};
use crate::signin::posted;
use crate::web::Data;
use crate::web::error::PageError;
use crate::web::pages::{IdentifyPage, SignInContext, json_in_script, render};

const REFUSED: &str = "That passkey could not sign you in. Sign in with your email instead, or try again.";

/// The identify page; with a passwordless ceremony (started now and kept with the
/// transaction, unless one is waiting) where passkeys are possible.
pub async fn identify_page(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    signin: &SignIn,
    ctx: SignInContext,
    login: String,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let Some(rp) = relying_party(state, tenant) else {
        return render(&IdentifyPage { ctx, login, error, passwordless: None }, vec![]);
    };
    let ceremony = match &signin.passwordless {
        Some(c) => c.clone(),
        None => {
            let (options, ceremony_state) = passkey::start_passwordless(&rp).map_err(PageError::internal)?;
            let c = Ceremony { options, state: ceremony_state };
            let mut kept = signin.clone();
            kept.passwordless = Some(c.clone());
            state.store.put_signin(&digest(tx), &kept).await?;
            c
        }
    };
    let page = IdentifyPage { ctx, login, error, passwordless: Some(json_in_script(&ceremony.options)) };
    let mut resp = render(&page, vec![])?;
    let csp = crate::web::csp::passkey_page(&format!("{}/static/passkey.js", state.public_url));
    resp.headers_mut().insert(CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).map_err(PageError::internal)?);
    Ok(resp)
}

/// `form#passkey-signin`: the assertion names its user (the user handle) and credential;
/// it must be a member of this tenant holding that passkey, and verify against this
/// transaction's ceremony. The stored counter moves forward in the write that accepts it.
pub async fn sign_in(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, mut signin) = posted(&req, &state, &path, &body, |s| matches!(s, Step::Identify)).await?;
    let rp = relying_party(&state, &tenant).ok_or_else(PageError::signin_expired)?;
    // The ceremony is spent by this answer, whatever it is: the page shows a fresh one.
    let Some(ceremony) = signin.passwordless.take() else { return Err(PageError::signin_expired()) };
    state.store.put_signin(&digest(&tx), &signin).await?;
    let now = state.now();
    let refused = async |signin: &SignIn, msg: &str| {
        crate::signin::step_page(&state, &req, &tenant, &tx, signin, Some(msg.into())).await
    };
    let (cred, user_id, cred_id) = match passkey::passwordless_claim(&rp, f.get("credential").unwrap_or_default()) {
        Ok(claim) => claim,
        Err(e) => {
            tracing::info!(error = %e, "passwordless assertion refused");
            return refused(&signin, REFUSED).await;
        }
    };
    let user = state.store.user(&tenant.id, &user_id.into()).await?;
    let Some(method) = user.as_ref().and_then(|u| u.passkeys.iter().find(|m| m.has_id(&cred_id))).cloned() else {
        tracing::info!(user = %user_id, "passwordless assertion names no passkey held here");
        return refused(&signin, REFUSED).await;
    };
    let user = user.ok_or_else(PageError::signin_expired)?;
    if user.is_guest() {
        let msg = "Guests sign in with their home organisation's account: enter your email address. Your passkey here is your second step.";
        return refused(&signin, msg).await;
    }
    let result = match passkey::finish_passwordless(&rp, &cred, &ceremony.state, &method) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(user = %user.id, error = %e, "passwordless assertion refused");
            return refused(&signin, REFUSED).await;
        }
    };
    let outcome = accept_assertion(&state, &tenant, &user.id, &result).await?;
    match outcome {
        Some(Outcome::Ok) => {}
        Some(Outcome::Locked) => {
            let msg = "Too many wrong codes. Multi-factor authentication is locked for 15 minutes for your account.";
            return refused(&signin, msg).await;
        }
        _ => return refused(&signin, REFUSED).await,
    }
    state.store.flush().await?;
    let mut amr = vec![Amr::Hwk];
    if result.user_verified() {
        amr.push(Amr::User);
    }
    amr.push(Amr::Mfa);
    let auth = Authentication {
        user_id: user.id,
        auth_time: now,
        amr,
        acr: Acr::MultiFactor,
        idp: None,
        epoch: user.session_epoch,
        device_id: None,
        home: None,
        mfa_time: None,
    };
    signin.login = Some(user.mail.clone());
    signin.user_id = Some(user.id);
    after_primary(&state, &req, &tenant, &tx, signin, auth, None).await
}
