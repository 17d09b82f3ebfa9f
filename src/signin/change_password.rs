//! The change-password step (Graph `passwordProfile.forceChangePasswordNextSignIn`): right
//! after the current password is verified the member chooses a new one (the same policy as
//! an admin's; not the current one), and only then does the sign-in go on to conditional
//! access. Posting any other step's form meanwhile finds the transaction elsewhere.
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::app::AppState;
use crate::model::{Authentication, SignIn, Step, Tenant};
use crate::secrets::digest;
use crate::signin::flow::after_primary;
use crate::signin::{posted, signin_user, step_page, to_login_page};
use crate::web::Data;
use crate::web::error::PageError;
use crate::web::pages::{SignInContext, render};

#[derive(Template)]
#[template(path = "change_password.html")]
pub struct ChangePasswordPage {
    pub ctx: SignInContext,
    pub login: String,
    pub error: Option<String>,
}

/// Called where the password was just verified: the transaction waits for a new one.
pub async fn start(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    mut signin: SignIn,
    auth: Authentication,
) -> Result<HttpResponse, PageError> {
    signin.step = Step::ChangePassword { auth };
    state.store.put_signin(&digest(tx), &signin).await?;
    Ok(to_login_page(tenant, tx))
}

pub fn page(ctx: SignInContext, login: String, error: Option<String>) -> Result<HttpResponse, PageError> {
    render(&ChangePasswordPage { ctx, login, error }, vec![])
}

/// `POST /{tenant}/login/change-password`: fields `new_password`, `confirm_password`.
pub async fn change(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, signin) =
        posted(&req, &state, &path, &body, |s| matches!(s, Step::ChangePassword { .. })).await?;
    let Step::ChangePassword { auth } = signin.step.clone() else { return Err(PageError::signin_expired()) };
    let new = f.get("new_password").unwrap_or_default().to_string();
    let problem = if new != f.get("confirm_password").unwrap_or_default() {
        Some("The two passwords are not the same. Type the new password twice.")
    } else {
        crate::password::policy_problem(&new)
    };
    if let Some(p) = problem {
        return step_page(&state, &req, &tenant, &tx, &signin, Some(p.into())).await;
    }
    let user = signin_user(&state, &tenant, &signin).await?;
    match state.passwords.verify(new.clone(), user.password_hash.clone(), state.dummy_hash.clone()).await {
        Ok(false) => {}
        Ok(true) => {
            let same = "Choose a new password: this is the one you have now.";
            return step_page(&state, &req, &tenant, &tx, &signin, Some(same.into())).await;
        }
        Err(_) => {
            let busy = "We are handling a great many sign-ins right now. Wait a few seconds, then try again.";
            return step_page(&state, &req, &tenant, &tx, &signin, Some(busy.into())).await;
        }
    }
    let hash = crate::password::hash_blocking(new, state.config.argon2.clone()).await.map_err(PageError::internal)?;
    crate::storage::modify_user(&state.store, &tenant.id, &user.id, |u| {
        u.password_hash = Some(hash.clone());
        u.force_change_password = false;
    })
    .await?;
    state.store.flush().await?;
    tracing::info!(tenant = %tenant.slug, user = %user.id, "password changed at sign-in");
    after_primary(&state, &req, &tenant, &tx, signin, auth, None).await
}
