//! PostgreSQL: any number of stateless nodes on one database (DESIGN §8). The only module
//! that imports tokio-postgres. Each record is a row whose `doc` is the same versioned JSON
//! as sled's; the other columns are what the database indexes or decides on.
//!
//! Everything that decides a single winner is one transaction with a conditional `UPDATE
//! … WHERE <still unused> … RETURNING` or a unique constraint ([`PgStore::transact`]);
//! serialization failures and deadlocks are retried inside the store, bounded, so none
//! reaches a client. A database that does not answer is `StoreError::Unavailable` within
//! the pool's timeouts. Writes of tenants, policies and keys `NOTIFY` every node (the
//! listener in `listen.rs`), which drops its caches. Static statements go through each
//! connection's statement cache ([`Cached`]): one round trip each once prepared.
mod batch;
mod counters;
mod directory;
mod guests;
mod listen;
mod mail_queue;
mod maintenance;
mod policy;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{Change, Result, StoreError, api};

/// The schema versions this binary knows, in order; `schema_N.sql` is applied as version N.
const MIGRATIONS: &[(i32, &str)] =
    &[(1, include_str!("schema_1.sql")), (2, include_str!("schema_2.sql")), (3, include_str!("schema_3.sql"))];
/// The advisory lock every migration runs under (two nodes starting together migrate once).
const MIGRATION_LOCK: i64 = 0x6761_7465_0001;
/// The channel every node listens on for cache invalidations.
const CHANNEL: &str = "gatehouse_changes";
/// How long a node waits for an instance-wide lock another node holds (migration, demo
/// seeding, first keys): past it, starting fails with a clear error rather than hanging.
const LOCK_WAIT: &str = "SET LOCAL statement_timeout = '120s'";
/// How often a transaction that lost a serialization race is tried again.
const TX_ATTEMPTS: usize = 8;

/// Options for the pool (from `Config`).
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub url: String,
    /// Connections per node: each worker thread keeps its share (`pool_size / threads`).
    pub pool_size: usize,
    /// The node's worker threads (actix workers).
    pub threads: usize,
    /// The bound on waiting for a connection, connecting, and any one statement.
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct PgStore {
    /// For threads of a multi-threaded runtime (the CLI, tests) and for start-up.
    pool: Pool,
    /// One pool per thread of a single-threaded runtime (each actix worker): see [`Self::conn`].
    local: Arc<LocalPools>,
    changes: tokio::sync::broadcast::Sender<Change>,
    ca_cache: Arc<policy::CaCache>,
    dir_cache: Arc<directory::DirCache>,
}

/// How the store builds a thread's own pool.
struct LocalPools {
    /// Tells this store's pools apart from other stores' in a thread's list.
    id: usize,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    size: usize,
    timeouts: deadpool_postgres::Timeouts,
}

static NEXT_STORE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

thread_local! {
    /// This thread's pools, one per store it used, with a handle that tells whether the
    /// store is still alive (a dead store's pool is dropped at the next lookup).
    static THREAD_POOLS: std::cell::RefCell<Vec<(std::sync::Weak<LocalPools>, ThreadLocal)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// What a thread keeps for one store: its pool, and its task that batches rotations.
#[derive(Clone)]
struct ThreadLocal {
    pool: Pool,
    rotations: batch::Batcher,
}

impl LocalPools {
    fn build(&self) -> Result<Pool> {
        let manager = Manager::from_config(
            self.config.clone(),
            self.tls.clone(),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        Pool::builder(manager)
            .max_size(self.size)
            .timeouts(self.timeouts)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Sled(format!("database pool: {e}")))
    }
}

/// Statements through the connection's statement cache: the first use of a SQL text on a
/// connection prepares it (one round trip), every later use only binds and executes it, so
/// a static statement costs one round trip instead of two (parse, then execute). Only for
/// static SQL: each distinct text stays prepared for the connection's life.
pub(crate) trait Cached {
    fn q_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = std::result::Result<tokio_postgres::Row, tokio_postgres::Error>> + Send;
    fn q_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = std::result::Result<Option<tokio_postgres::Row>, tokio_postgres::Error>> + Send;
    fn q(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = std::result::Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>> + Send;
    /// The number of rows changed.
    fn exec(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = std::result::Result<u64, tokio_postgres::Error>> + Send;
}

/// [`Cached`] for a pooled connection and for a transaction on one (both carry the cache).
macro_rules! cached_for {
    ($t:ty) => {
        impl Cached for $t {
            async fn q_one(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> std::result::Result<tokio_postgres::Row, tokio_postgres::Error> {
                let statement = self.prepare_cached(sql).await?;
                self.query_one(&statement, params).await
            }

            async fn q_opt(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> std::result::Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
                let statement = self.prepare_cached(sql).await?;
                self.query_opt(&statement, params).await
            }

            async fn q(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> std::result::Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
                let statement = self.prepare_cached(sql).await?;
                self.query(&statement, params).await
            }

            async fn exec(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> std::result::Result<u64, tokio_postgres::Error> {
                let statement = self.prepare_cached(sql).await?;
                self.execute(&statement, params).await
            }
        }
    };
}
cached_for!(deadpool_postgres::Object);
cached_for!(deadpool_postgres::Transaction<'_>);

/// Errors inside a transaction: a database error (maybe retryable) or a store error.
#[derive(Debug)]
pub(crate) enum PgError {
    Pg(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError::Pg(e)
    }
}

impl From<StoreError> for PgError {
    fn from(e: StoreError) -> Self {
        PgError::Store(e)
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        PgError::Store(pool_error(e))
    }
}

pub(crate) type PgResult<T> = std::result::Result<T, PgError>;

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// A database error as the callers see it: a lost connection or a timeout is `Unavailable`;
/// a unique violation `Conflict`; anything else a storage error.
pub(super) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    // A server error's own text ("db error" alone says nothing).
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    match e.code() {
        None => StoreError::Unavailable(text),
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(text),
        Some(c) if *c == SqlState::QUERY_CANCELED || c.code().starts_with("08") || c.code().starts_with("57P") => {
            StoreError::Unavailable(text)
        }
        Some(_) => StoreError::Sled(text),
    }
}

fn retryable(e: &PgError) -> bool {
    match e {
        PgError::Pg(e) => {
            e.code().is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
        }
        PgError::Store(_) => false,
    }
}

fn finish(e: PgError) -> StoreError {
    match e {
        PgError::Pg(e) => pg_error(e),
        PgError::Store(e) => e,
    }
}

/// Runs `$body` in one READ COMMITTED transaction on `$tx`, again (bounded) when it lost a
/// serialization race or a deadlock; commit decides. Inside the body `?` takes database
/// and store errors alike (`PgError`); the body's value is the result (a `return` would
/// leave only the inner block: use a value instead). Evaluates to `Result<T, StoreError>`.
macro_rules! transact {
    ($store:expr, $tx:ident => $body:expr) => {{
        let mut attempt = 0usize;
        loop {
            attempt += 1;
            let mut client = $store.conn().await?;
            let outcome: $crate::storage::postgres::PgResult<_> = async {
                let $tx = client.transaction().await?;
                let value = $body;
                $tx.commit().await?;
                Ok(value)
            }
            .await;
            if let Some(result) = $crate::storage::postgres::settle(outcome, attempt).await {
                break result;
            }
        }
    }};
}
pub(crate) use transact;

/// What a transaction attempt came to: `None` to try again (after a short pause).
pub(crate) async fn settle<T>(outcome: PgResult<T>, attempt: usize) -> Option<Result<T>> {
    match outcome {
        Ok(v) => Some(Ok(v)),
        Err(e) if retryable(&e) && attempt < TX_ATTEMPTS => {
            tokio::time::sleep(Duration::from_millis(2 * attempt as u64)).await;
            None
        }
        Err(e) => Some(Err(finish(e))),
    }
}

fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let config = crate::secrets::client_tls_config().map_err(|e| StoreError::Sled(format!("TLS: {e}")))?;
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The URL with a bound on connecting and on every statement (unless the URL sets its own).
fn pg_config(options: &PgOptions) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config =
        options.url.parse().map_err(|e| StoreError::Sled(format!("database_url: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(options.timeout);
    }
    if config.get_options().is_none() {
        config.options(format!("-c statement_timeout={}", options.timeout.as_millis()));
    }
    config.keepalives(true).keepalives_idle(Duration::from_secs(30));
    if config.get_application_name().is_none() {
        config.application_name("gatehouse");
    }
    Ok(config)
}

impl PgStore {
    /// Connects, applies the migrations this binary has not yet applied (under an advisory
    /// lock), and refuses a schema newer than this binary knows.
    pub async fn open(options: PgOptions) -> Result<Self> {
        let config = pg_config(&options)?;
        let tls = tls()?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let timeouts = deadpool_postgres::Timeouts {
            wait: Some(options.timeout),
            create: Some(options.timeout),
            recycle: Some(options.timeout),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(2))
            .timeouts(timeouts)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Sled(format!("database pool: {e}")))?;
        let local = Arc::new(LocalPools {
            id: NEXT_STORE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            config: config.clone(),
            tls: tls.clone(),
            size: options.pool_size.div_ceil(options.threads.max(1)).max(2),
            timeouts,
        });
        let (changes, _) = tokio::sync::broadcast::channel(256);
        let store = Self { pool, local, changes, ca_cache: Default::default(), dir_cache: Default::default() };
        store.migrate().await?;
        listen::start(store.clone(), config, tls);
        Ok(store)
    }

    /// Applies every migration the database lacks, one transaction each, under the
    /// migration lock. Refuses (nothing changed) a database whose schema is newer.
    pub async fn migrate(&self) -> Result<i32> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // Another node may be migrating: wait for it longer than one statement's bound.
        tx.batch_execute(LOCK_WAIT).await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(pg_error)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)",
        )
        .await
        .map_err(pg_error)?;
        let row =
            tx.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).await.map_err(pg_error)?;
        let current: i32 = row.get(0);
        let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if current > known {
            return Err(StoreError::Conflict(format!(
                "the database schema is version {current}, newer than this gatehouse knows ({known}): \
                 upgrade gatehouse before running it against this database"
            )));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            tx.batch_execute(sql).await.map_err(pg_error)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, extract(epoch from now())::bigint)",
                &[version],
            )
            .await
            .map_err(pg_error)?;
            tracing::info!(version, "database schema migrated");
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(known)
    }

    /// A pooled connection, within the pool's timeouts.
    ///
    /// On a single-threaded runtime (an actix worker) the connection comes from the thread's
    /// own pool, whose connections that thread also drives: a statement then wakes no other
    /// thread on its way out and back, which on a busy node costs more than the statement.
    pub(super) async fn conn(&self) -> Result<deadpool_postgres::Object> {
        let pool = self.thread_local()?.map(|l| l.pool).unwrap_or_else(|| self.pool.clone());
        pool.get().await.map_err(pool_error)
    }

    /// This thread's pool and rotation task for this store, when the thread runs a
    /// single-threaded runtime.
    fn thread_local(&self) -> Result<Option<ThreadLocal>> {
        let single = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !single {
            return Ok(None);
        }
        THREAD_POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            if let Some((_, local)) =
                pools.iter().find(|(owner, _)| owner.upgrade().is_some_and(|o| o.id == self.local.id))
            {
                return Ok(Some(local.clone()));
            }
            pools.retain(|(owner, _)| owner.strong_count() > 0);
            let pool = self.local.build()?;
            let local = ThreadLocal { rotations: batch::Batcher::start(pool.clone()), pool };
            pools.push((Arc::downgrade(&self.local), local.clone()));
            Ok(Some(local))
        })
    }

    /// Publishes a change to every node (delivered when the surrounding transaction commits).
    pub(super) async fn notify(tx: &deadpool_postgres::Transaction<'_>, change: &Change) -> PgResult<()> {
        tx.exec("SELECT pg_notify($1, $2)", &[&CHANNEL, &listen::payload(change)]).await?;
        Ok(())
    }

    /// A change seen (from this node or another): caches drop what it touches.
    fn on_change(&self, change: &Change) {
        match change {
            Change::Policies(t) => self.ca_cache.forget(t),
            Change::Tenant(t) => self.dir_cache.forget(t),
            Change::Everything => {
                self.ca_cache.clear();
                self.dir_cache.clear();
            }
            Change::Keys => {}
        }
        let _ = self.changes.send(change.clone());
    }
}

/// A session-level advisory lock held on a connection taken out of the pool: dropping the
/// guard closes that connection, which releases the lock.
struct HeldLock(#[allow(dead_code)] deadpool_postgres::ClientWrapper);

/// The advisory lock id of a name.
fn lock_id(name: &str) -> i64 {
    let digest = crate::secrets::sha256(name.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

#[async_trait::async_trait]
impl api::Maintenance for PgStore {
    /// Every write commits before its call returns (durable at commit).
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    async fn sweep(&self, now: i64) -> Result<usize> {
        self.sweep_expired(now).await
    }

    async fn meta_raw(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let c = self.conn().await?;
        let row = c.q_opt("SELECT value FROM meta WHERE key = $1", &[&key]).await.map_err(pg_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put_meta_raw(&self, key: &str, value: &[u8]) -> Result<()> {
        let c = self.conn().await?;
        c.exec(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    async fn meta_or_insert_raw(&self, key: &str, value: &[u8]) -> Result<Vec<u8>> {
        let c = self.conn().await?;
        c.exec("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", &[&key, &value])
            .await
            .map_err(pg_error)?;
        let row = c.q_one("SELECT value FROM meta WHERE key = $1", &[&key]).await.map_err(pg_error)?;
        Ok(row.get(0))
    }

    async fn snapshot(&self) -> Result<Vec<super::Record>> {
        self.snapshot_rows().await
    }

    async fn export(&self) -> Result<Vec<super::Item>> {
        self.export_items().await
    }

    async fn import(&self, items: &[super::Item]) -> Result<()> {
        self.import_items(items).await
    }

    async fn is_empty(&self) -> Result<bool> {
        let c = self.conn().await?;
        let row = c
            .q_one(
                "SELECT NOT EXISTS (SELECT 1 FROM tenants) AND NOT EXISTS (SELECT 1 FROM signing_keys) \
                 AND NOT EXISTS (SELECT 1 FROM meta)",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get(0))
    }

    async fn ping(&self) -> Result<()> {
        let c = self.conn().await?;
        c.simple_query("SELECT 1").await.map_err(pg_error)?;
        Ok(())
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    async fn hold_lock(&self, name: &str) -> Result<Box<dyn Send + Sync>> {
        let obj = self.conn().await?;
        // The holder (another node seeding the demo) may take longer than one statement's
        // bound; this connection is closed with the guard, so the setting dies with it.
        obj.batch_execute(&LOCK_WAIT.replace(" LOCAL", "")).await.map_err(pg_error)?;
        obj.exec("SELECT pg_advisory_lock($1)", &[&lock_id(name)]).await.map_err(pg_error)?;
        Ok(Box::new(HeldLock(deadpool_postgres::Object::take(obj))))
    }
}

/// Row helpers shared by the files of this backend.
pub(super) mod row {
    use super::super::{Result, decode, encode};
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    pub fn doc<T: DeserializeOwned>(row: &tokio_postgres::Row, col: &str) -> Result<T> {
        decode(row.get::<_, &[u8]>(col))
    }

    /// A document column that may be NULL (the far side of an outer join).
    pub fn doc_opt<T: DeserializeOwned>(row: &tokio_postgres::Row, col: &str) -> Result<Option<T>> {
        row.get::<_, Option<&[u8]>>(col).map(decode).transpose()
    }

    pub fn enc<T: Serialize>(value: &T) -> Result<Vec<u8>> {
        encode(value)
    }
}
