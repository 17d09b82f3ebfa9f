//! Directory use cases on one user that several features share.
use crate::model::{Tenant, User};
use crate::storage::{Store, StoreError};

/// Removes one TOTP method or passkey (or all with `None`); with the last one go the recovery codes
/// and the MFA lockout, so the next MFA sign-in proofs up again. Used by the Graph API, the
/// admin page and (through Graph) the CLI.
pub async fn reset_method(store: &Store, tenant: &Tenant, user: &User, method: Option<&str>) -> Result<(), StoreError> {
    crate::storage::modify_user(store, &tenant.id, &user.id, |u| {
        u.totp_methods.retain(|m| method.is_some_and(|id| m.id != id));
        u.passkeys.retain(|m| method.is_some_and(|id| m.id != id));
        if !u.has_mfa_method() {
            u.recovery_code_hashes.clear();
            u.mfa_lockout.clear();
        }
    })
    .await?;
    store.flush().await?;
    tracing::info!(user = %user.id, "MFA methods reset by an admin");
    Ok(())
}
