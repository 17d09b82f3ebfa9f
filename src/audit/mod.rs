//! The sign-in log (Graph `signIn` shape), append-only. Writing it never fails a sign-in.
use uuid::Uuid;

use crate::model::SignInLogEntry;
use crate::storage::Store;

/// Appends; a storage problem is logged and swallowed: the sign-in goes on.
pub fn record(store: &Store, tenant: &Uuid, mut entry: SignInLogEntry) {
    if entry.id.is_empty() {
        entry.id = Uuid::new_v4().to_string();
    }
    if let Err(e) = store.append_signin_log(tenant, &mut entry) {
        tracing::warn!(error = %e, "could not write the sign-in log");
    }
}
