//! Persistence. The only module that imports sled: one tree per relation, composite
//! keys joined by 0xff, values carry a version byte, bearer secrets are keyed by digest.
//!
//! No sled transactions or batches: in sled 0.34 the first one switches the whole process
//! to a global read-write lock that every later read, write and flush takes, so a flush
//! waiting on its fsync holds up every writer (refresh rotation ran at a third of its
//! speed). Instead each change decides concurrency with a compare-and-swap on one record
//! ([`update`]), and changes to several records write them in an order where stopping
//! between two writes (a crash) leaves a safe state; the handlers flush before answering.
mod counters;
mod directory;
mod export;
mod flusher;
mod guests;
mod mail_queue;
mod policy;
mod tokens;

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{Record, Result, StoreError, Versioned, api, decode, encode};

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match &e {
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => StoreError::Locked,
            sled::Error::Io(io) if io.to_string().contains("lock") => StoreError::Locked,
            _ => StoreError::Sled(e.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    flusher: std::sync::Arc<std::sync::OnceLock<flusher::Flusher>>,
    /// Serialises redemptions and ticket voids (rare, several records each).
    tickets_lock: std::sync::Arc<std::sync::Mutex<()>>,
    tenants: sled::Tree,
    slug_tenant: sled::Tree,
    domain_tenant: sled::Tree,
    users: sled::Tree,
    /// Held by every write of the UPN and mail indexes (creates, `put_user`, deletes). sled
    /// locks its directory to one process, so this in-process lock orders every writer:
    /// under it no create is ever between claiming a name and writing its record, so a name
    /// whose owner record is missing is a crash leftover and may be taken over. Creates
    /// are rare and do no disk sync, so one lock for all tenants costs nothing.
    names_lock: std::sync::Arc<std::sync::Mutex<()>>,
    upn_user: sled::Tree,
    mail_user: sled::Tree,
    apps: sled::Tree,
    signins: sled::Tree,
    /// Index of sign-ins by browser: browser digest ++ sign-in id -> creation sequence.
    signin_browser: sled::Tree,
    /// How many sign-in transactions are stored (counted at open, kept by every insert/remove).
    signin_count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Serialises creating sign-ins, so the per-browser cap is exact.
    signin_lock: std::sync::Arc<std::sync::Mutex<()>>,
    /// When a full store last swept expired sign-ins early (at most once a minute).
    signin_sweep_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
    sessions: sled::Tree,
    codes: sled::Tree,
    grants: sled::Tree,
    refresh_tokens: sled::Tree,
    revoked_jti: sled::Tree,
    keys: sled::Tree,
    /// Private keys sealed under the key-encryption key, when one is configured.
    key_sealed: sled::Tree,
    meta: sled::Tree,
    /// Cache invalidations (one process: only this node's own writes).
    changes: tokio::sync::broadcast::Sender<crate::storage::Change>,
    /// Instance-wide locks (`hold_lock`): one process, so one in-process lock.
    instance_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    invitations: sled::Tree,
    tickets: sled::Tree,
    outbox: sled::Tree,
    stub_accounts: sled::Tree,
    fed_states: sled::Tree,
    policies: sled::Tree,
    locations: sled::Tree,
    devices: sled::Tree,
    consents: sled::Tree,
    ca_cache: std::sync::Arc<policy::CaCache>,
    /// Premium seats held per tenant: counted at open, kept by every user write (sled is
    /// one process, so the count is exact; a crash between a write and its count is healed
    /// by the recount at the next open).
    seats: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<crate::model::TenantId, u32>>>,
    signin_log: sled::Tree,
    /// Failure and rate counters (`counters.rs`): in memory, this process being the only one.
    counters: counters::Counters,
}

/// Creates `path` (and parents) if missing and makes it 0700.
fn private_dir(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |e: std::io::Error| StoreError::Sled(format!("{}: {e}", path.display()));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

/// Directories under `path` 0700, files 0600.
fn private_tree(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let err = |e: std::io::Error| StoreError::Sled(format!("{}: {e}", path.display()));
    let meta = std::fs::symlink_metadata(path).map_err(err)?;
    if meta.is_dir() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        for entry in std::fs::read_dir(path).map_err(err)? {
            private_tree(&entry.map_err(err)?.path())?;
        }
    } else if meta.is_file() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    Ok(())
}

pub(crate) fn key2(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a);
    k.push(0xff);
    k.extend_from_slice(b);
    k
}

impl SledStore {
    /// Opens (or creates) the store under `path` with a page cache of `cache_mib` MiB.
    pub fn open(path: &std::path::Path, cache_mib: u64) -> Result<Self> {
        private_dir(path)?;
        // A bounded page cache keeps memory in tens of MB; writes reach disk within 200 ms, and
        // the handlers that hand out or spend secrets flush before they answer.
        let db = sled::Config::new()
            .path(path.join("db"))
            .cache_capacity(cache_mib.max(1) * 1024 * 1024)
            .flush_every_ms(Some(200))
            .open()?;
        let t = |name: &str| db.open_tree(name);
        let signins = t("signins")?;
        let signin_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(signins.len()));
        Ok(Self {
            tenants: t("tenants")?,
            slug_tenant: t("slug_tenant")?,
            domain_tenant: t("domain_tenant")?,
            users: t("tenant_users")?,
            names_lock: Default::default(),
            upn_user: t("upn_user")?,
            mail_user: t("mail_user")?,
            apps: t("tenant_apps")?,
            signins,
            signin_browser: t("signin_browser")?,
            signin_count,
            signin_lock: Default::default(),
            signin_sweep_at: Default::default(),
            sessions: t("sessions")?,
            codes: t("codes")?,
            grants: t("grants")?,
            refresh_tokens: t("refresh_tokens")?,
            revoked_jti: t("revoked_jti")?,
            keys: t("keys")?,
            key_sealed: t("key_sealed")?,
            meta: t("meta")?,
            changes: tokio::sync::broadcast::channel(64).0,
            instance_lock: Default::default(),
            invitations: t("tenant_invitations")?,
            tickets: t("tickets")?,
            outbox: t("outbox")?,
            stub_accounts: t("stub_accounts")?,
            fed_states: t("fed_states")?,
            policies: t("tenant_policies")?,
            locations: t("tenant_named_locations")?,
            devices: t("tenant_devices")?,
            consents: t("tenant_consents")?,
            ca_cache: Default::default(),
            seats: Default::default(),
            signin_log: t("tenant_signin_log")?,
            counters: Default::default(),
            flusher: Default::default(),
            tickets_lock: Default::default(),
            db,
        })
        .and_then(|store| {
            // The store holds the instance secret, TOTP seeds and password hashes: readable by
            // this user only (the data dir is 0700 too, which covers files sled adds later).
            private_tree(&path.join("db"))?;
            store.count_seats()?;
            Ok(store)
        })
    }

    pub fn flush_blocking(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl api::Maintenance for SledStore {
    /// Waits until everything written so far is on disk; concurrent callers share one
    /// fsync (group commit), so durability does not cost one disk sync per request.
    async fn flush(&self) -> Result<()> {
        let flusher = self.flusher.get_or_init(|| flusher::Flusher::start(self.db.clone()));
        flusher.flush().await.map_err(StoreError::Sled)
    }

    async fn meta_raw(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    async fn put_meta_raw(&self, key: &str, value: &[u8]) -> Result<()> {
        self.meta.insert(key.as_bytes(), value)?;
        Ok(())
    }

    async fn meta_or_insert_raw(&self, key: &str, value: &[u8]) -> Result<Vec<u8>> {
        match self.meta.compare_and_swap(key.as_bytes(), None as Option<&[u8]>, Some(value))? {
            Ok(()) => Ok(value.to_vec()),
            Err(e) => Ok(e.current.ok_or_else(|| StoreError::Corrupt(key.into()))?.to_vec()),
        }
    }

    async fn snapshot(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name)?;
            let name = String::from_utf8_lossy(&name).to_string();
            for item in tree.iter() {
                let (k, v) = item?;
                out.push((name.clone(), k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }

    async fn export(&self) -> Result<Vec<crate::storage::Item>> {
        self.export_items()
    }

    async fn import(&self, items: &[crate::storage::Item]) -> Result<()> {
        self.import_items(items).await
    }

    async fn is_empty(&self) -> Result<bool> {
        Ok(self.tenants.is_empty() && self.keys.is_empty())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<crate::storage::Change> {
        self.changes.subscribe()
    }

    async fn hold_lock(&self, _name: &str) -> Result<Box<dyn Send + Sync>> {
        Ok(Box::new(self.instance_lock.clone().lock_owned().await))
    }

    /// Removes expired sign-ins, sessions, codes, grants, refresh tokens and federation states.
    ///
    /// A grant past its `expires_at` is dead whatever its tokens say (a refresh refuses it,
    /// an access token of it is refused), and its `expires_at` never changes, so it goes;
    /// a token of it left behind is unknown from then on and goes at its own expiry.
    /// Tickets are kept: a spent or voided ticket still tells its holder why the link no
    /// longer works ("already accepted", "replaced"), which an unknown ticket would not.
    async fn sweep(&self, now: i64) -> Result<usize> {
        let mut removed = 0;
        removed += self.sweep_signins(now)?;
        removed += sweep_tree::<crate::model::Session>(&self.sessions, now, |r| r.expires_at)?;
        removed += sweep_tree::<crate::model::AuthCode>(&self.codes, now, |r| r.expires_at)?;
        removed += sweep_tree::<crate::model::Grant>(&self.grants, now, |r| r.expires_at)?;
        removed += sweep_tree::<crate::model::RefreshToken>(&self.refresh_tokens, now, |r| r.expires_at)?;
        removed += api::GuestStore::sweep_fed_states(self, now).await?;
        // The sign-in log keeps 30 days; the per-tenant count cap is only a last resort.
        removed += api::AuditStore::trim_signin_log(
            self,
            now - crate::model::LOG_RETENTION_SECS,
            crate::model::LOG_MAX_ENTRIES_PER_TENANT,
        )
        .await?;
        for item in self.revoked_jti.iter() {
            let (k, v) = item?;
            let exp: i64 = decode(&v)?;
            if exp < now {
                self.revoked_jti.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn sweep_tree<T: DeserializeOwned>(tree: &sled::Tree, now: i64, exp: impl Fn(&T) -> i64) -> Result<usize> {
    let mut removed = 0;
    for item in tree.iter() {
        let (k, v) = item?;
        // An unreadable record is kept for inspection rather than silently dropped.
        if let Ok(rec) = decode::<T>(&v)
            && exp(&rec) < now
        {
            tree.remove(k)?;
            removed += 1;
        }
    }
    Ok(removed)
}

pub(crate) fn get<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>> {
    tree.get(key)?.map(|v| decode(&v)).transpose()
}

pub(crate) fn put<T: Serialize>(tree: &sled::Tree, key: &[u8], value: &T) -> Result<()> {
    tree.insert(key, encode(value)?)?;
    Ok(())
}

/// Read-modify-write of one record by compare-and-swap, retried when another writer changed
/// it in between (so `f` may run more than once). `None` when there is no such record.
pub(crate) fn update<T: Serialize + DeserializeOwned, R>(
    tree: &sled::Tree,
    key: &[u8],
    mut f: impl FnMut(&mut T) -> R,
) -> Result<Option<(T, R)>> {
    loop {
        let Some(raw) = tree.get(key)? else { return Ok(None) };
        let mut value: T = decode(&raw)?;
        let r = f(&mut value);
        if tree.compare_and_swap(key, Some(&raw), Some(encode(&value)?))?.is_ok() {
            return Ok(Some((value, r)));
        }
    }
}

/// The record under `key` with its stored bytes as the version.
pub(crate) fn versioned<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<Versioned<T>>> {
    let Some(raw) = tree.get(key)? else { return Ok(None) };
    Ok(Some(Versioned { value: decode(&raw)?, version: raw.to_vec() }))
}

/// Writes `new` under `key` only if the stored bytes are still `old`'s.
pub(crate) fn replace<T: Serialize>(tree: &sled::Tree, key: &[u8], old: &Versioned<T>, new: &T) -> Result<bool> {
    Ok(tree.compare_and_swap(key, Some(old.version.as_slice()), Some(encode(new)?))?.is_ok())
}

/// Anything keyed by a 16-byte id: a raw uuid, a tenant id, a user id.
pub(crate) trait Key16 {
    fn key16(&self) -> [u8; 16];
}

impl Key16 for Uuid {
    fn key16(&self) -> [u8; 16] {
        *self.as_bytes()
    }
}

impl Key16 for crate::model::TenantId {
    fn key16(&self) -> [u8; 16] {
        *self.as_bytes()
    }
}

impl Key16 for crate::model::UserId {
    fn key16(&self) -> [u8; 16] {
        *self.as_bytes()
    }
}

pub(crate) fn uuid_key(id: &impl Key16) -> [u8; 16] {
    id.key16()
}
