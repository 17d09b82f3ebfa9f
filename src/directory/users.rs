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

/// Users read per store page by [`users_where`].
const SCAN_CHUNK: usize = 200;

/// Every user of the tenant that `keep` accepts, read a page at a time (group members,
/// acceptances of an agreement: properties each user carries).
pub async fn users_where(
    store: &Store,
    tenant: &Tenant,
    keep: impl Fn(&User) -> bool,
) -> Result<Vec<User>, StoreError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (chunk, more) = store.users_page(&tenant.id, None, after.as_ref(), SCAN_CHUNK).await?;
        out.extend(chunk.into_iter().filter(|u| keep(u)));
        match more {
            Some(cursor) => after = Some(cursor),
            None => return Ok(out),
        }
    }
}

/// Which sign-in [`record_sign_in`] records (Graph `signInActivity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInKind {
    /// A sign-in that ended with a code or a portal session (SSO reuse included).
    Interactive,
    /// A refresh-token grant.
    NonInteractive,
}

/// How much older than now the recorded refresh time must be before a refresh writes it
/// again: the token endpoint then writes a user at most once a minute, not on every refresh.
pub const NON_INTERACTIVE_BOUND_SECS: i64 = 60;

/// Records a successful sign-in at `now` on the user when the stored time is older than the
/// kind's bound (interactive: any older second). `user` is the record the sign-in read, so
/// an up-to-date one costs no read and no write. One compare-and-swap: when another writer
/// came first the time is skipped (it is approximate, as in Entra) and the sign-in goes on;
/// a store error is logged, never the sign-in's failure.
pub async fn record_sign_in(store: &Store, user: &User, kind: SignInKind, now: i64) {
    let bound = match kind {
        SignInKind::Interactive => 0,
        SignInKind::NonInteractive => NON_INTERACTIVE_BOUND_SECS,
    };
    let slot = |u: &User| match kind {
        SignInKind::Interactive => u.last_sign_in,
        SignInKind::NonInteractive => u.last_non_interactive_sign_in,
    };
    let stale = |u: &User| slot(u).is_none_or(|t| now - t > bound);
    if !stale(user) {
        return;
    }
    let written = async {
        let Some(current) = store.user_versioned(&user.tenant_id, &user.id).await? else { return Ok(false) };
        if !stale(&current.value) {
            return Ok(false);
        }
        let mut next = current.value.clone();
        match kind {
            SignInKind::Interactive => next.last_sign_in = Some(now),
            SignInKind::NonInteractive => next.last_non_interactive_sign_in = Some(now),
        }
        store.replace_user(&current, &next, None).await
    };
    if let Err(e) = written.await {
        tracing::warn!(user = %user.id, error = %e, "sign-in activity not recorded");
    }
}
