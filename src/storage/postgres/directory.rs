//! Tenants, users (UPN and mail uniqueness by unique indexes, seats by the `seats` row) and applications.
//!
//! Tenants (by id and by slug) and applications are cached per node ([`DirCache`]), as
//! policies are: every write of either notifies `Change::Tenant` in its transaction, every
//! node's listener drops that tenant's entries when it hears it, and the writing node drops
//! its own at once (it reads its own write without waiting for the notification).
//!
//! Names are stored lower case (ASCII, as sled keys them) and an empty mail as NULL, so the
//! unique indexes decide concurrent creates. Every user write bumps `version` (what
//! [`Versioned`] carries) and moves the tenant's seat count in the same transaction.
use deadpool_postgres::Transaction;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::error::SqlState;

use super::{Cached, PgError, PgResult, PgStore, pg_error, row, transact};
use crate::model::*;
use crate::storage::*;

/// The columns of a user row derived from the record.
struct UserRow {
    tenant: String,
    id: String,
    upn: String,
    mail: Option<String>,
    user_type: &'static str,
    holds_seat: bool,
    doc: Vec<u8>,
}

impl UserRow {
    fn of(user: &User) -> Result<Self> {
        Ok(Self {
            tenant: user.tenant_id.to_string(),
            id: user.id.to_string(),
            upn: user.user_principal_name.to_ascii_lowercase(),
            mail: Some(user.mail.to_ascii_lowercase()).filter(|m| !m.is_empty()),
            user_type: user.user_type.as_str(),
            holds_seat: user.holds_seat(),
            doc: row::enc(user)?,
        })
    }
}

/// A name as the indexes hold it (what sled's lookups do to a login).
fn name_key(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

/// A unique violation on the users table as the `Conflict` sled reports for it.
fn user_conflict(e: tokio_postgres::Error, user: &User) -> PgError {
    if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
        return PgError::Pg(e);
    }
    let message = match e.as_db_error().and_then(|d| d.constraint()) {
        Some("users_upn") => {
            format!("{} is already used in this tenant", user.user_principal_name.to_ascii_lowercase())
        }
        Some("users_mail") => format!("{} is already used in this tenant", user.mail.to_ascii_lowercase()),
        _ => format!("a user with the id {} already exists", user.id),
    };
    PgError::Store(StoreError::Conflict(message))
}

/// Takes one Premium seat in `tenant`: with a limit, only while fewer than `limit` are held
/// (`false`, nothing changed, when none is left). The row lock of the upsert orders
/// concurrent takers, so the last seat has one winner. Shared with redemption.
pub(super) async fn take_seat(tx: &Transaction<'_>, tenant: &str, limit: Option<u32>) -> PgResult<bool> {
    let limit = limit.map_or(i64::MAX, i64::from);
    let taken = tx
        .q_opt(
            "INSERT INTO seats (tenant_id, used) SELECT $1, 1 WHERE $2::bigint > 0 \
             ON CONFLICT (tenant_id) DO UPDATE SET used = seats.used + 1 WHERE seats.used < $2::bigint \
             RETURNING used",
            &[&tenant, &limit],
        )
        .await?;
    Ok(taken.is_some())
}

/// Gives back one Premium seat of `tenant` (never below zero).
pub(super) async fn give_seat(tx: &Transaction<'_>, tenant: &str) -> PgResult<()> {
    tx.exec("UPDATE seats SET used = used - 1 WHERE tenant_id = $1 AND used > 0", &[&tenant]).await?;
    Ok(())
}

/// Moves the tenant's seat count by what a write from `before` to `after` changed.
async fn seat_change(tx: &Transaction<'_>, tenant: &str, before: bool, after: bool) -> PgResult<()> {
    match (before, after) {
        (false, true) => {
            take_seat(tx, tenant, None).await?;
        }
        (true, false) => give_seat(tx, tenant).await?,
        _ => {}
    }
    Ok(())
}

fn users_of(rows: Vec<tokio_postgres::Row>) -> Result<Vec<User>> {
    rows.iter().map(|r| row::doc(r, "doc")).collect()
}

#[async_trait::async_trait]
impl api::DirectoryStore for PgStore {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<()> {
        let doc = row::enc(tenant)?;
        let domains: Vec<String> = tenant.domains.iter().map(|d| d.to_ascii_lowercase()).collect();
        let id = tenant.id.to_string();
        transact!(self, tx => {
            tx.exec(
                "INSERT INTO tenants (id, slug, domains, doc) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, domains = excluded.domains, doc = excluded.doc",
                &[&id, &tenant.slug, &domains, &doc],
            )
            .await?;
            PgStore::notify(&tx, &Change::Tenant(tenant.id)).await?;
        })?;
        self.dir_cache.forget(&tenant.id);
        Ok(())
    }

    /// From this node's cache; a read that raced an invalidation is answered but not kept.
    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let seen = self.dir_cache.generation();
        if let Some(t) = self.dir_cache.lock().tenants.get(id) {
            return Ok(Some(t.clone()));
        }
        let c = self.conn().await?;
        let found = c.q_opt("SELECT doc FROM tenants WHERE id = $1", &[&id.to_string()]).await.map_err(pg_error)?;
        let tenant: Option<Tenant> = found.map(|r| row::doc(&r, "doc")).transpose()?;
        if let Some(t) = &tenant {
            self.dir_cache.keep(seen, |c| {
                c.tenants.insert(t.id, t.clone());
            });
        }
        Ok(tenant)
    }

    /// From this node's cache, as [`Self::tenant`].
    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let seen = self.dir_cache.generation();
        if let Some(t) = self.dir_cache.lock().slugs.get(slug) {
            return Ok(Some(t.clone()));
        }
        let c = self.conn().await?;
        let found = c.q_opt("SELECT doc FROM tenants WHERE slug = $1", &[&slug]).await.map_err(pg_error)?;
        let tenant: Option<Tenant> = found.map(|r| row::doc(&r, "doc")).transpose()?;
        if let Some(t) = &tenant {
            self.dir_cache.keep(seen, |c| {
                c.slugs.insert(slug.to_owned(), t.clone());
            });
        }
        Ok(tenant)
    }

    /// By the GIN index on `domains`; of two tenants claiming one domain, the first by id.
    async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>> {
        let c = self.conn().await?;
        let wanted = vec![domain.to_ascii_lowercase()];
        let found = c
            .q_opt("SELECT doc FROM tenants WHERE domains @> $1 ORDER BY id COLLATE \"C\" LIMIT 1", &[&wanted])
            .await
            .map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        let c = self.conn().await?;
        let rows = c.q("SELECT doc FROM tenants ORDER BY id COLLATE \"C\"", &[]).await.map_err(pg_error)?;
        rows.iter().map(|r| row::doc(r, "doc")).collect()
    }

    /// An upsert by id: a UPN or mail another user holds is `Conflict` (the unique indexes).
    /// The row is locked before it is replaced, so the seat count moves by what this write
    /// changed even when writers race.
    async fn put_user(&self, user: &User) -> Result<()> {
        let r = UserRow::of(user)?;
        transact!(self, tx => {
            loop {
                let old = tx
                    .q_opt(
                        "SELECT holds_seat FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                        &[&r.tenant, &r.id],
                    )
                    .await?;
                let before = match old {
                    Some(old) => {
                        tx.exec(
                            "UPDATE users SET upn = $3, mail = $4, user_type = $5, holds_seat = $6, \
                             version = version + CASE WHEN doc = $7 THEN 0 ELSE 1 END, doc = $7 \
                             WHERE tenant_id = $1 AND id = $2",
                            &[&r.tenant, &r.id, &r.upn, &r.mail, &r.user_type, &r.holds_seat, &r.doc],
                        )
                        .await
                        .map_err(|e| user_conflict(e, user))?;
                        old.get::<_, bool>(0)
                    }
                    None => {
                        let inserted = tx
                            .exec(
                                "INSERT INTO users (tenant_id, id, upn, mail, user_type, holds_seat, doc) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, id) DO NOTHING",
                                &[&r.tenant, &r.id, &r.upn, &r.mail, &r.user_type, &r.holds_seat, &r.doc],
                            )
                            .await
                            .map_err(|e| user_conflict(e, user))?;
                        // A concurrent create of this id committed first: replace it instead.
                        if inserted == 0 {
                            continue;
                        }
                        false
                    }
                };
                seat_change(&tx, &r.tenant, before, r.holds_seat).await?;
                break;
            }
        })
    }

    /// One INSERT: the primary key and the unique indexes on UPN and mail decide between
    /// concurrent creates, and a loser leaves nothing behind (its transaction rolls back).
    async fn insert_user(&self, user: &User) -> Result<()> {
        let r = UserRow::of(user)?;
        transact!(self, tx => {
            tx.exec(
                "INSERT INTO users (tenant_id, id, upn, mail, user_type, holds_seat, doc) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&r.tenant, &r.id, &r.upn, &r.mail, &r.user_type, &r.holds_seat, &r.doc],
            )
            .await
            .map_err(|e| user_conflict(e, user))?;
            seat_change(&tx, &r.tenant, false, r.holds_seat).await?;
        })
    }

    /// The version is the row's `version` column (8 bytes, big-endian).
    async fn user_versioned(&self, tenant: &TenantId, id: &UserId) -> Result<Option<Versioned<User>>> {
        let c = self.conn().await?;
        let found = c
            .q_opt(
                "SELECT version, doc FROM users WHERE tenant_id = $1 AND id = $2",
                &[&tenant.to_string(), &id.to_string()],
            )
            .await
            .map_err(pg_error)?;
        found
            .map(|r| {
                let version: i64 = r.get("version");
                Ok(Versioned { value: row::doc(&r, "doc")?, version: version.to_be_bytes().to_vec() })
            })
            .transpose()
    }

    /// `UPDATE … WHERE version = old` decides between writers; a seat this change takes is
    /// taken in the same transaction, and refusing it (`NoSeat`) rolls the update back.
    async fn replace_user(&self, old: &Versioned<User>, new: &User, seat_limit: Option<u32>) -> Result<bool> {
        let was = &old.value;
        if new.id != was.id
            || new.tenant_id != was.tenant_id
            || new.user_principal_name != was.user_principal_name
            || new.mail != was.mail
        {
            return Err(StoreError::Conflict(
                "a user's id, tenant, user principal name and mail cannot change by replace".into(),
            ));
        }
        // A version from another store (not 8 bytes) matches no row.
        let Ok(version) = <[u8; 8]>::try_from(old.version.as_slice()).map(i64::from_be_bytes) else {
            return Ok(false);
        };
        let r = UserRow::of(new)?;
        let before = was.holds_seat();
        transact!(self, tx => {
            let swapped = tx
                .exec(
                    // An unchanged record keeps its version (a no-op write changes nothing, as on sled).
                    "UPDATE users SET user_type = $3, holds_seat = $4, \
                     version = version + CASE WHEN doc = $5 THEN 0 ELSE 1 END, doc = $5 \
                     WHERE tenant_id = $1 AND id = $2 AND version = $6",
                    &[&r.tenant, &r.id, &r.user_type, &r.holds_seat, &r.doc, &version],
                )
                .await?
                == 1;
            if swapped && !before && r.holds_seat && !take_seat(&tx, &r.tenant, seat_limit).await? {
                // Leaves the transaction uncommitted: the update is rolled back.
                return Err(PgError::Store(StoreError::NoSeat));
            }
            if swapped && before && !r.holds_seat {
                give_seat(&tx, &r.tenant).await?;
            }
            swapped
        })
    }

    async fn user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>> {
        let c = self.conn().await?;
        let found = c
            .q_opt("SELECT doc FROM users WHERE tenant_id = $1 AND id = $2", &[&tenant.to_string(), &id.to_string()])
            .await
            .map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    /// The UPN first, then the mail (as sled looks in its two indexes).
    async fn user_by_login(&self, tenant: &TenantId, login: &str) -> Result<Option<User>> {
        let c = self.conn().await?;
        let found = c
            .q_opt(
                "SELECT doc FROM users WHERE tenant_id = $1 AND (upn = $2 OR mail = $2) \
                 ORDER BY upn = $2 DESC LIMIT 1",
                &[&tenant.to_string(), &name_key(login)],
            )
            .await
            .map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> Result<()> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        transact!(self, tx => {
            let gone = tx
                .q_opt("DELETE FROM users WHERE tenant_id = $1 AND id = $2 RETURNING holds_seat", &[&tenant, &id])
                .await?;
            if gone.is_some_and(|r| r.get::<_, bool>(0)) {
                give_seat(&tx, &tenant).await?;
            }
        })
    }

    async fn users(&self, tenant: &TenantId) -> Result<Vec<User>> {
        let c = self.conn().await?;
        let rows = c
            .q("SELECT doc FROM users WHERE tenant_id = $1 ORDER BY id", &[&tenant.to_string()])
            .await
            .map_err(pg_error)?;
        users_of(rows)
    }

    async fn user_by_upn(&self, tenant: &TenantId, upn: &str) -> Result<Option<User>> {
        let c = self.conn().await?;
        let found = c
            .q_opt("SELECT doc FROM users WHERE tenant_id = $1 AND upn = $2", &[&tenant.to_string(), &name_key(upn)])
            .await
            .map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn user_by_mail(&self, tenant: &TenantId, mail: &str) -> Result<Option<User>> {
        let c = self.conn().await?;
        let found = c
            .q_opt("SELECT doc FROM users WHERE tenant_id = $1 AND mail = $2", &[&tenant.to_string(), &name_key(mail)])
            .await
            .map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    /// One more row than the page is read to tell whether a next page exists.
    async fn users_page(
        &self,
        tenant: &TenantId,
        user_type: Option<UserType>,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<(Vec<User>, Option<UserId>)> {
        if limit == 0 {
            return Ok((Vec::new(), None));
        }
        let c = self.conn().await?;
        let user_type = user_type.map(UserType::as_str);
        let after = after.map(UserId::to_string);
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let rows = c
            .q(
                "SELECT doc FROM users WHERE tenant_id = $1 AND ($2::text IS NULL OR user_type = $2) \
                 AND ($3::text IS NULL OR id > $3) ORDER BY id LIMIT $4",
                &[&tenant.to_string(), &user_type, &after, &fetch],
            )
            .await
            .map_err(pg_error)?;
        let mut users = users_of(rows)?;
        if users.len() > limit {
            users.truncate(limit);
            let last = users.last().map(|u| u.id);
            return Ok((users, last));
        }
        Ok((users, None))
    }

    async fn seats_used(&self, tenant: &TenantId) -> Result<u32> {
        let c = self.conn().await?;
        let found =
            c.q_opt("SELECT used FROM seats WHERE tenant_id = $1", &[&tenant.to_string()]).await.map_err(pg_error)?;
        Ok(found.map_or(0, |r| u32::try_from(r.get::<_, i32>(0)).unwrap_or(0)))
    }

    /// Notifies `Change::Tenant` in its transaction: every node drops the tenant's cached apps.
    async fn put_app(&self, app: &Application) -> Result<()> {
        let doc = row::enc(app)?;
        let tenant = app.tenant_id.to_string();
        transact!(self, tx => {
            tx.exec(
                "INSERT INTO apps (tenant_id, client_id, doc) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, client_id) DO UPDATE SET doc = excluded.doc",
                &[&tenant, &app.client_id.as_str(), &doc],
            )
            .await?;
            PgStore::notify(&tx, &Change::Tenant(app.tenant_id)).await?;
        })?;
        self.dir_cache.forget(&app.tenant_id);
        Ok(())
    }

    /// From this node's cache, as [`Self::tenant`].
    async fn app(&self, tenant: &TenantId, client_id: &str) -> Result<Option<Application>> {
        let seen = self.dir_cache.generation();
        let key = (*tenant, client_id.to_owned());
        if let Some(a) = self.dir_cache.lock().apps.get(&key) {
            return Ok(Some(a.clone()));
        }
        let c = self.conn().await?;
        let found = c
            .q_opt("SELECT doc FROM apps WHERE tenant_id = $1 AND client_id = $2", &[&tenant.to_string(), &client_id])
            .await
            .map_err(pg_error)?;
        let app: Option<Application> = found.map(|r| row::doc(&r, "doc")).transpose()?;
        if let Some(a) = &app {
            self.dir_cache.keep(seen, |c| {
                c.apps.insert(key, a.clone());
            });
        }
        Ok(app)
    }

    async fn apps(&self, tenant: &TenantId) -> Result<Vec<Application>> {
        let c = self.conn().await?;
        let rows = c
            .q("SELECT doc FROM apps WHERE tenant_id = $1 ORDER BY client_id COLLATE \"C\"", &[&tenant.to_string()])
            .await
            .map_err(pg_error)?;
        rows.iter().map(|r| row::doc(r, "doc")).collect()
    }

    /// Notifies `Change::Tenant` as [`Self::put_app`] does.
    async fn delete_app(&self, tenant: &TenantId, client_id: &str) -> Result<bool> {
        let tid = tenant.to_string();
        let removed = transact!(self, tx => {
            let n = tx.exec("DELETE FROM apps WHERE tenant_id = $1 AND client_id = $2", &[&tid, &client_id]).await?;
            PgStore::notify(&tx, &Change::Tenant(*tenant)).await?;
            n > 0
        })?;
        self.dir_cache.forget(tenant);
        Ok(removed)
    }
}

/// What [`DirCache`] holds: tenants by id and by slug, applications by tenant and client id.
/// Only records found are kept (an unknown id is asked of the database each time).
#[derive(Default)]
pub(super) struct DirEntries {
    tenants: HashMap<TenantId, Tenant>,
    slugs: HashMap<String, Tenant>,
    apps: HashMap<(TenantId, String), Application>,
}

/// The per-node cache of tenants and applications. Every invalidation raises the
/// generation, so a reader that loaded from the database while an invalidation came in (it
/// may have read the state before the write) does not keep what it read.
#[derive(Default)]
pub(super) struct DirCache {
    generation: AtomicU64,
    entries: std::sync::Mutex<DirEntries>,
}

impl DirCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, DirEntries> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Applies `put`, for what was read after the generation was `seen`, unless an
    /// invalidation came since.
    fn keep(&self, seen: u64, put: impl FnOnce(&mut DirEntries)) {
        let mut entries = self.lock();
        if self.generation() == seen {
            put(&mut entries);
        }
    }

    /// Drops the tenant (by id and by any slug) and its applications.
    pub(super) fn forget(&self, tenant: &TenantId) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.tenants.remove(tenant);
        entries.slugs.retain(|_, t| t.id != *tenant);
        entries.apps.retain(|(t, _), _| t != tenant);
    }

    pub(super) fn clear(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        *entries = DirEntries::default();
    }
}
