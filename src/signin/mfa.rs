//! MFA at the resource tenant (DESIGN §2.4): TOTP proof-up inside the sign-in, recovery
//! codes shown once, the TOTP challenge (a recovery code works too), replay and lockout.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::mfa::{self, TotpCheck, TotpMethod};
use crate::model::Tenant;
use crate::model::{Acr, Amr, Authentication, SignIn, Step};
use crate::secrets::digest;
use crate::signin::flow::after_primary;
use crate::signin::posted;
use crate::web::Data;
use crate::web::error::PageError;
use crate::web::pages::{RecoveryCodesPage, SignInContext, TotpChallengePage, TotpEnrollPage, render, render_status};

const LOCKED: &str = "Too many wrong codes. Multi-factor authentication is locked for 15 minutes for your account.";

pub fn enroll_page(
    state: &AppState,
    tenant: &Tenant,
    signin: &SignIn,
    ctx: SignInContext,
    secret_b32: &str,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let account = signin.login.clone().unwrap_or_default();
    let upn = match &signin.step {
        Step::MfaEnroll { .. } => account,
        _ => String::new(),
    };
    // The transaction keeps the seed sealed; it is opened only to show it.
    let secret_b32 = state.seal.open(secret_b32).ok_or_else(PageError::signin_expired)?;
    let uri = mfa::otpauth_uri(&secret_b32, &tenant.display_name, &upn);
    let page =
        TotpEnrollPage { ctx, secret: secret_b32, qr: mfa::qr_svg_data_uri(&uri).unwrap_or_default(), uri, error };
    render(&page, vec![])
}

pub fn enrolled_page(ctx: SignInContext) -> Result<HttpResponse, PageError> {
    // Recovery codes are shown once, in the answer to the enrolment; a reload shows none.
    render(&RecoveryCodesPage { ctx, codes: vec![] }, vec![])
}

pub fn challenge_page(ctx: SignInContext, error: Option<String>) -> Result<HttpResponse, PageError> {
    render(&TotpChallengePage { ctx, error }, vec![])
}

/// After a second factor: `otp` and `mfa` join what the primary authentication proved.
/// `now` is when: a `secondaryAuthentication` sign-in frequency counts from it.
fn with_mfa(mut auth: Authentication, now: i64) -> Authentication {
    for m in [Amr::Otp, Amr::Mfa] {
        if !auth.amr.contains(&m) {
            auth.amr.push(m);
        }
    }
    auth.acr = Acr::MultiFactor;
    auth.mfa_time = Some(now);
    auth
}

async fn log_lock(state: &AppState, req: &HttpRequest, tenant: &Tenant, signin: &SignIn, auth: &Authentication) {
    let user = state.store.user(&tenant.id, &auth.user_id).await.ok().flatten();
    let facts = crate::audit::LogFacts {
        tenant,
        user: user.as_ref(),
        app_id: signin.client_id().unwrap_or(crate::access::PORTAL_APP),
        ip: crate::web::net::client_ip(req, &state.config.trusted_proxies),
        device: None,
        idp: auth.idp.clone(),
        amr: auth.amr.clone(),
        interactive: true,
    };
    crate::telemetry::lockout(&tenant.slug, "mfa", Some(&auth.user_id));
    crate::audit::log(state, facts, None, Some(("mfa_locked", "5 wrong MFA codes: locked for 15 minutes".into())))
        .await;
}

pub async fn enroll(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, mut signin) =
        posted(&req, &state, &path, &body, |s| matches!(s, Step::MfaEnroll { .. })).await?;
    let Step::MfaEnroll { auth, secret_b32 } = signin.step.clone() else { return Err(PageError::signin_expired()) };
    let now = state.now();
    let ctx = crate::signin::context(&state, &req, &tenant, &tx, &signin).await?;
    let user = state.store.user(&tenant.id, &auth.user_id).await?.ok_or_else(PageError::signin_expired)?;
    if !user.passkeys.is_empty() {
        // A passkey was registered in another window: on to its challenge.
        return crate::signin::passkey::enrolled_elsewhere(&state, &req, &tenant, &tx, signin, &user, auth).await;
    }
    if user.has_mfa_method() {
        return already_enrolled(&state, &tx, signin, auth, ctx).await;
    }
    if user.mfa_lockout.is_locked(now) {
        return enroll_page(&state, &tenant, &signin, ctx, &secret_b32, Some(LOCKED.into()));
    }
    let clear = state.seal.open(&secret_b32).ok_or_else(PageError::signin_expired)?;
    let checked = mfa::check_totp(&clear, f.get("code").unwrap_or_default(), now, None);
    crate::telemetry::mfa_verification(&tenant.slug, "totp", matches!(checked, TotpCheck::Ok { .. }));
    let step = match checked {
        TotpCheck::Ok { step } => step,
        _ => {
            let locked = crate::storage::modify_user(&state.store, &tenant.id, &auth.user_id, |u| {
                u.mfa_lockout.record_failure(
                    now,
                    mfa::MFA_MAX_FAILURES,
                    mfa::MFA_FAILURE_WINDOW_SECS,
                    mfa::MFA_LOCK_SECS,
                )
            })
            .await?
            .is_some_and(|(_, locked)| locked);
            if locked {
                log_lock(&state, &req, &tenant, &signin, &auth).await;
            }
            let msg =
                if locked { LOCKED } else { "That code is not right. Enter the 6-digit code your app shows now." };
            return enroll_page(&state, &tenant, &signin, ctx, &secret_b32, Some(msg.into()));
        }
    };
    let (codes, hashes) = mfa::new_recovery_codes();
    let mut method = TotpMethod::new(secret_b32.clone(), now);
    method.last_step = Some(step);
    let enrolled =
        enroll_first_method(&state, &tenant, &auth.user_id, &hashes, |u| u.totp_methods = vec![method.clone()]).await?;
    if !enrolled {
        let now_held = state.store.user(&tenant.id, &auth.user_id).await?.ok_or_else(PageError::signin_expired)?;
        if !now_held.passkeys.is_empty() {
            return crate::signin::passkey::enrolled_elsewhere(&state, &req, &tenant, &tx, signin, &now_held, auth)
                .await;
        }
        return already_enrolled(&state, &tx, signin, auth, ctx).await;
    }
    state.store.flush().await?;
    signin.step = Step::MfaEnrolled { auth: with_mfa(auth, state.now()) };
    state.store.put_signin(&digest(&tx), &signin).await?;
    render(&RecoveryCodesPage { ctx, codes }, vec![])
}

/// The account got an authenticator app since this proof-up page was shown (another
/// browser or tab): nothing is replaced, and the sign-in continues to the MFA challenge.
async fn already_enrolled(
    state: &AppState,
    tx: &str,
    mut signin: SignIn,
    auth: Authentication,
    ctx: SignInContext,
) -> Result<HttpResponse, PageError> {
    signin.step = Step::MfaChallenge { auth };
    state.store.put_signin(&digest(tx), &signin).await?;
    let page = TotpChallengePage {
        ctx,
        error: Some(
            "Your account already has an authenticator app, set up in another window, so this one was not added. Enter the code from the app you set up there. To change apps, ask your administrator to reset your MFA methods.".into(),
        ),
    };
    render_status(StatusCode::CONFLICT, &page)
}

/// Writes a user's first MFA method (`set` puts it on the user) with its recovery codes, in
/// one compare-and-swap that decides: of two proof-up pages (two browsers) only the first
/// enrolment wins (`false` for a later one, which changes nothing), and the member's Premium
/// seat is checked in the same write, so two members cannot both take the last one.
pub(crate) async fn enroll_first_method(
    state: &AppState,
    tenant: &Tenant,
    user: &crate::model::UserId,
    recovery_hashes: &[String],
    mut set: impl FnMut(&mut crate::model::User),
) -> Result<bool, PageError> {
    let enrolled =
        crate::storage::modify_user_within_seats(&state.store, &tenant.id, user, Some(tenant.premium_seats), |u| {
            if u.has_mfa_method() {
                return false;
            }
            set(u);
            u.recovery_code_hashes = recovery_hashes.to_vec();
            u.mfa_lockout.clear();
            true
        })
        .await;
    match enrolled {
        Err(crate::storage::StoreError::NoSeat) => Err(crate::signin::seat_exhausted(tenant)),
        other => Ok(other?.is_some_and(|(_, enrolled)| enrolled)),
    }
}

pub async fn proceed(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, _, tx, signin) = posted(&req, &state, &path, &body, |s| matches!(s, Step::MfaEnrolled { .. })).await?;
    let Step::MfaEnrolled { auth } = signin.step.clone() else { return Err(PageError::signin_expired()) };
    after_primary(&state, &req, &tenant, &tx, signin, auth, None).await
}

enum Answer {
    /// Proven by this method (`totp` or `recovery_code`).
    Ok(&'static str),
    Replayed,
    Wrong {
        locked: bool,
    },
    Locked,
}

pub async fn challenge(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, signin) =
        posted(&req, &state, &path, &body, |s| matches!(s, Step::MfaChallenge { .. })).await?;
    let Step::MfaChallenge { auth } = signin.step.clone() else { return Err(PageError::signin_expired()) };
    let now = state.now();
    let code = f.get("code").unwrap_or_default().trim().to_string();
    // Checked and recorded in one transaction: a TOTP step or a recovery code is spent once.
    let outcome = crate::storage::modify_user(&state.store, &tenant.id, &auth.user_id, |u| {
        if u.mfa_lockout.is_locked(now) {
            return Answer::Locked;
        }
        let mut replayed = false;
        for m in u.totp_methods.iter_mut() {
            let Some(secret) = state.seal.open(&m.sealed_secret) else { continue };
            match mfa::check_totp(&secret, &code, now, m.last_step) {
                TotpCheck::Ok { step } => {
                    m.last_step = Some(step);
                    u.mfa_lockout.clear();
                    return Answer::Ok("totp");
                }
                TotpCheck::Replayed => replayed = true,
                TotpCheck::Wrong => {}
            }
        }
        if replayed {
            return Answer::Replayed;
        }
        if let Some(i) = mfa::match_recovery_code(&code, &u.recovery_code_hashes) {
            u.recovery_code_hashes.remove(i);
            u.mfa_lockout.clear();
            return Answer::Ok("recovery_code");
        }
        let locked =
            u.mfa_lockout.record_failure(now, mfa::MFA_MAX_FAILURES, mfa::MFA_FAILURE_WINDOW_SECS, mfa::MFA_LOCK_SECS);
        Answer::Wrong { locked }
    })
    .await?;
    let ctx = crate::signin::context(&state, &req, &tenant, &tx, &signin).await?;
    let outcome = outcome.map(|(_, a)| a);
    match &outcome {
        Some(Answer::Ok(method)) => crate::telemetry::mfa_verification(&tenant.slug, method, true),
        Some(Answer::Wrong { .. } | Answer::Replayed) => {
            crate::telemetry::mfa_verification(&tenant.slug, "totp", false)
        }
        _ => {}
    }
    match outcome {
        Some(Answer::Ok(_)) => {
            state.store.flush().await?;
            after_primary(&state, &req, &tenant, &tx, signin, with_mfa(auth, now), None).await
        }
        Some(Answer::Replayed) => {
            challenge_page(ctx, Some("That code was already used. Wait for the next code and enter it.".into()))
        }
        Some(Answer::Wrong { locked: true }) => {
            log_lock(&state, &req, &tenant, &signin, &auth).await;
            challenge_page(ctx, Some(LOCKED.into()))
        }
        Some(Answer::Wrong { locked: false }) => challenge_page(ctx, Some("That code is not right. Try again.".into())),
        Some(Answer::Locked) => challenge_page(ctx, Some(LOCKED.into())),
        None => Err(PageError::new(StatusCode::BAD_REQUEST, "signin_expired", "The account is gone.")),
    }
}
