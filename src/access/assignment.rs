//! Assignment (Entra's `appRoleAssignmentRequired`, AADSTS50105): an application that
//! requires it lets only the users assigned to it sign in. Checked in the sign-in path where
//! both the app and the user are known (the relying party gets nothing) and again on every
//! refresh (a user unassigned since gets `invalid_grant` and the grant ends).
use crate::app::AppState;
use crate::model::{Application, Tenant, User};
use crate::secrets::digest;
use crate::storage::StoreError;
use crate::web::error::PageError;

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{user} is not assigned to {app}")]
    NotAssigned { user: String, app: String, tenant: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `app` lets `user` in: it does not require assignment or `user` is assigned.
pub fn allows(app: &Application, user: &User) -> bool {
    !app.assignment_required || app.is_assigned(&user.id)
}

/// `Ok` when `app_id` does not require assignment (or is not an app: gatehouse's own pages)
/// or `user` is assigned; otherwise the sign-in transaction `tx` ends here.
pub async fn require(state: &AppState, tenant: &Tenant, user: &User, app_id: &str, tx: &str) -> Result<(), Refused> {
    let Some(app) = state.store.app(&tenant.id, app_id).await? else { return Ok(()) };
    if allows(&app, user) {
        return Ok(());
    }
    state.store.delete_signin(&digest(tx)).await?;
    tracing::info!(tenant = %tenant.slug, app = app_id, user = %user.id, "sign-in refused: not assigned to the app");
    Err(Refused::NotAssigned {
        user: user.user_principal_name.clone(),
        app: app.display_name,
        tenant: tenant.display_name.clone(),
    })
}

impl From<Refused> for PageError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::NotAssigned { user, app, tenant } => PageError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                "not_assigned",
                format!(
                    "Your account {user} is not assigned to {app}. {tenant} lets only the people it assigned use this application: ask its administrator to assign you."
                ),
            ),
            Refused::Store(e) => e.into(),
        }
    }
}
