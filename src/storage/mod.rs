//! Persistence behind traits (`api.rs`): `Store` is an `Arc<dyn Storage>`, opened from the
//! configuration. sled (`sled/`) is the embedded default; every backend passes the same
//! contract suite. Nothing above this module knows which database it talks to.
pub mod api;
mod codec;
pub mod sled;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use api::Storage;
pub use codec::{decode, encode};

use crate::model::{AuthCode, RefreshToken, SignIn, TenantId, User, UserId};
use crate::policy::{NamedLocation, Policy};

/// The store every layer above uses.
pub type Store = Arc<dyn Storage>;

/// Opens the embedded sled store under `path` with a page cache of `cache_mib` MiB.
pub fn open(path: &std::path::Path, cache_mib: u64) -> Result<Store> {
    Ok(Arc::new(sled::SledStore::open(path, cache_mib)?))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data dir is in use by another gatehouse process (stop it first)")]
    Locked,
    #[error("storage: {0}")]
    Sled(String),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Conflict(String),
    #[error("no Premium seat is left in this tenant")]
    NoSeat,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One stored record: tree name, key, value.
pub type Record = (String, Vec<u8>, Vec<u8>);

/// A record as read, with the version a conditional replace compares against (opaque to
/// callers: sled keeps the stored bytes, a SQL backend a row version).
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub version: Vec<u8>,
}

/// Outcome of opening a sign-in transaction.
#[derive(Debug, PartialEq, Eq)]
pub enum SignInAdmission {
    Stored,
    /// The instance holds its maximum of sign-in transactions: nothing was stored.
    Full,
}

/// Outcome of presenting an authorization code.
pub enum CodeUse {
    /// First use: the code is now spent; the grant and refresh token (if any) are stored.
    Redeemed(Box<AuthCode>),
    /// The code was already used; the grant it opened has been revoked.
    Replayed,
    Unknown,
}

/// Outcome of presenting a refresh token.
pub enum RefreshUse {
    Rotated(Box<RefreshToken>),
    /// A rotated token came back: the whole family is revoked now.
    Reused,
    Revoked,
    Unknown,
}
pub enum Redeemed {
    /// No Premium seat is left for this guest: nothing changed.
    NoSeat,
    Done(Box<User>),
    AlreadyRedeemed,
    Voided,
    Unknown,
}

/// What conditional access evaluates for one tenant.
#[derive(Clone)]
pub struct CaRecords {
    pub policies: std::sync::Arc<Vec<Policy>>,
    pub locations: std::sync::Arc<Vec<NamedLocation>>,
}

/// Read-modify-write of one user: `f` changes a copy, which replaces the stored user only if
/// nobody wrote it in between; otherwise it is read again and `f` runs again. `None` when
/// there is no such user. `f` must not change the id, tenant, UPN or mail (`Conflict`, nothing
/// written). The closure stays here, above the trait.
pub async fn modify_user<R>(
    store: &Store,
    tenant: &TenantId,
    id: &UserId,
    f: impl FnMut(&mut User) -> R,
) -> Result<Option<(User, R)>> {
    modify_user_within_seats(store, tenant, id, None, f).await
}

/// [`modify_user`] for a change that may make the user take a Premium seat: with
/// `seat_limit`, `Err(NoSeat)` (nothing written) when the tenant holds that many already.
pub async fn modify_user_within_seats<R>(
    store: &Store,
    tenant: &TenantId,
    id: &UserId,
    seat_limit: Option<u32>,
    mut f: impl FnMut(&mut User) -> R,
) -> Result<Option<(User, R)>> {
    loop {
        let Some(current) = store.user_versioned(tenant, id).await? else { return Ok(None) };
        let mut next = current.value.clone();
        let r = f(&mut next);
        if store.replace_user(&current, &next, seat_limit).await? {
            return Ok(Some((next, r)));
        }
    }
}

/// Read-modify-write of one sign-in transaction, as [`modify_user`].
pub async fn modify_signin<R>(
    store: &Store,
    id: &[u8; 32],
    mut f: impl FnMut(&mut SignIn) -> R,
) -> Result<Option<(SignIn, R)>> {
    loop {
        let Some(current) = store.signin_versioned(id).await? else { return Ok(None) };
        let mut next = current.value.clone();
        let r = f(&mut next);
        if store.replace_signin(id, &current, &next).await? {
            return Ok(Some((next, r)));
        }
    }
}

/// A typed instance-wide value.
pub async fn meta<T: DeserializeOwned>(store: &Store, key: &str) -> Result<Option<T>> {
    store.meta_raw(key).await?.map(|v| decode(&v)).transpose()
}

pub async fn put_meta<T: Serialize + Sync>(store: &Store, key: &str, value: &T) -> Result<()> {
    store.put_meta_raw(key, &encode(value)?).await
}

/// The existing value under `key`, or `fresh` stored now (the first writer wins).
pub async fn meta_or_insert<T: Serialize + DeserializeOwned + Sync>(store: &Store, key: &str, fresh: T) -> Result<T> {
    decode(&store.meta_or_insert_raw(key, &encode(&fresh)?).await?)
}
