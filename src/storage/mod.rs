//! Persistence behind traits (`api.rs`): `Store` is an `Arc<dyn Storage>`, opened from the
//! configuration. sled (`sled/`) is the embedded default; every backend passes the same
//! contract suite. Nothing above this module knows which database it talks to.
pub mod api;
mod codec;
mod limiter;
pub mod postgres;
pub mod sled;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use api::Storage;
pub use codec::{decode, encode};
pub use limiter::Limiter;

use crate::model::*;
use crate::policy::{NamedLocation, Policy};

/// The store every layer above uses.
pub type Store = Arc<dyn Storage>;

/// Opens the embedded sled store under `path` with a page cache of `cache_mib` MiB.
pub fn open(path: &std::path::Path, cache_mib: u64) -> Result<Store> {
    Ok(Arc::new(sled::SledStore::open(path, cache_mib)?))
}

/// Opens the store the configuration names: PostgreSQL when `database_url` is set
/// (migrating it first), else the embedded sled store in the data dir.
pub async fn open_configured(config: &crate::config::Config) -> Result<Store> {
    match &config.database_url {
        Some(url) => Ok(Arc::new(postgres::PgStore::open(postgres_options(config, url)).await?)),
        None => open(&config.data_dir, config.cache_mib),
    }
}

/// The pool options of `config` for the database at `url`.
pub fn postgres_options(config: &crate::config::Config, url: &crate::secrets::Secret) -> postgres::PgOptions {
    postgres::PgOptions {
        url: url.expose().to_string(),
        pool_size: config.database.pool_size,
        threads: config.worker_threads(),
        timeout: std::time::Duration::from_millis(config.database.timeout_ms),
    }
}

#[derive(Debug, Clone, thiserror::Error)]
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
    /// The database does not answer (down, unreachable, timed out): a 503 for the caller;
    /// nothing was written, or the write is all there.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
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

/// A rotated refresh token presented again sooner than this is a concurrent use, not a retry.
pub const REFRESH_RETRY_AFTER_MS: i64 = 1000;

/// What decides a refresh rotation: the time, the new token's life and the retry window.
#[derive(Debug, Clone, Copy)]
pub struct RefreshRules {
    pub now: i64,
    /// The same instant in milliseconds (the retry rule needs sub-second precision).
    pub now_ms: i64,
    pub life_secs: i64,
    /// How long after a rotation the previous token may come back once as a retry.
    pub grace_secs: i64,
    /// A token presented again sooner than this after its rotation is a concurrent use,
    /// never a retry: a client that lost an answer waits at least for its timeout, while
    /// copies presented at once (theft racing the owner) arrive within milliseconds.
    pub retry_after_ms: i64,
}

/// Outcome of presenting a refresh token.
pub enum RefreshUse {
    Rotated(Box<RefreshToken>),
    /// The previous token came back within the grace window (a lost answer): a fresh
    /// successor was issued and the unused one retired.
    Retried(Box<RefreshToken>),
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

/// A change that invalidates caches, published by the store on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Tenant(TenantId),
    /// Policies or named locations of the tenant.
    Policies(TenantId),
    /// Signing keys (rotation, retirement).
    Keys,
    /// Changes may have been missed (a node lost its listener connection): drop every cache.
    Everything,
}

pub use crate::ratelimit::Reserved;

/// One record of any relation, typed: what `export` gives and `import` takes, so a store
/// moves between backends whatever their layouts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Item {
    Meta(String, Vec<u8>),
    Tenant(Box<Tenant>),
    User(Box<User>),
    App(Box<Application>),
    Invitation(Box<Invitation>),
    Ticket([u8; 32], Box<Ticket>),
    StubAccount(String, Box<StubAccount>),
    FedState(String, Box<FedState>),
    SignIn([u8; 32], Box<SignIn>),
    Session([u8; 32], Box<Session>),
    Code([u8; 32], Box<AuthCode>),
    Grant(uuid::Uuid, Box<Grant>),
    Refresh([u8; 32], Box<RefreshToken>),
    RevokedJti(String, i64),
    /// Metadata and, when the store holds it, the sealed private key.
    Key(Box<KeyMeta>, Option<Vec<u8>>),
    Policy(TenantId, Box<Policy>),
    NamedLocation(TenantId, Box<NamedLocation>),
    Device(TenantId, Box<Device>),
    Consent(TenantId, UserId, String, Box<Consent>),
    SignInLog(TenantId, Box<SignInLogEntry>),
    Outbox(Box<OutboxMessage>),
}

/// What a refresh is decided on ([`api::TokenStore::refresh_context`]).
pub struct RefreshContext {
    pub token: crate::model::RefreshToken,
    /// The token's grant; `None` when it is gone.
    pub grant: Option<crate::model::Grant>,
    /// The user the token was issued to, when the store read it in the same step (`None`:
    /// not read, the caller reads it; `Some(None)`: there is no such user).
    pub user: Option<Option<crate::model::User>>,
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
