//! Conditional access policies and named locations (cached per node, invalidated by NOTIFY), devices, consents.
//!
//! Every write of a policy or a named location notifies `Change::Policies` in its
//! transaction; every node's listener (this one's too) drops the tenant's cache entry when
//! it hears it. The writing node also drops its own entry at once, so it reads its own
//! write without waiting for the notification.
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Cached, PgStore, pg_error, row, transact};
use crate::model::*;
use crate::policy::{NamedLocation, Policy};
use crate::storage::*;

/// Policies and named locations live in two tables of the same shape.
#[derive(Clone, Copy)]
enum CaTable {
    Policies,
    Locations,
}

impl CaTable {
    fn name(self) -> &'static str {
        match self {
            CaTable::Policies => "policies",
            CaTable::Locations => "named_locations",
        }
    }
}

// The SQL below is formatted from the two table names only: a fixed handful of texts, so
// it goes through the statement cache like static SQL.
impl PgStore {
    async fn ca_list<T: serde::de::DeserializeOwned>(&self, table: CaTable, tenant: &TenantId) -> Result<Vec<T>> {
        let c = self.conn().await?;
        let sql = format!("SELECT doc FROM {} WHERE tenant_id = $1 ORDER BY id COLLATE \"C\"", table.name());
        let rows = c.q(&sql, &[&tenant.to_string()]).await.map_err(pg_error)?;
        rows.iter().map(|r| row::doc(r, "doc")).collect()
    }

    async fn ca_get<T: serde::de::DeserializeOwned>(
        &self,
        table: CaTable,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<T>> {
        let c = self.conn().await?;
        let sql = format!("SELECT doc FROM {} WHERE tenant_id = $1 AND id = $2", table.name());
        let found = c.q_opt(&sql, &[&tenant.to_string(), &id]).await.map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn ca_put(&self, table: CaTable, tenant: &TenantId, id: &str, doc: Vec<u8>) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (tenant_id, id, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET doc = excluded.doc",
            table.name()
        );
        let t = tenant.to_string();
        transact!(self, tx => {
            tx.exec(&sql, &[&t, &id, &doc]).await?;
            PgStore::notify(&tx, &Change::Policies(*tenant)).await?;
        })?;
        self.ca_cache.forget(tenant);
        Ok(())
    }

    async fn ca_delete(&self, table: CaTable, tenant: &TenantId, id: &str) -> Result<bool> {
        let sql = format!("DELETE FROM {} WHERE tenant_id = $1 AND id = $2", table.name());
        let t = tenant.to_string();
        let removed = transact!(self, tx => {
            let removed = tx.exec(&sql, &[&t, &id]).await? > 0;
            PgStore::notify(&tx, &Change::Policies(*tenant)).await?;
            removed
        })?;
        self.ca_cache.forget(tenant);
        Ok(removed)
    }
}

#[async_trait::async_trait]
impl api::PolicyStore for PgStore {
    /// From this node's cache; a read that raced an invalidation is answered but not kept.
    async fn ca_records(&self, tenant: &TenantId) -> Result<CaRecords> {
        let seen = self.ca_cache.generation();
        if let Some(r) = self.ca_cache.get(tenant) {
            return Ok(r);
        }
        let records = CaRecords {
            policies: std::sync::Arc::new(self.ca_list(CaTable::Policies, tenant).await?),
            locations: std::sync::Arc::new(self.ca_list(CaTable::Locations, tenant).await?),
        };
        self.ca_cache.keep(tenant, &records, seen);
        Ok(records)
    }

    async fn policies(&self, tenant: &TenantId) -> Result<Vec<Policy>> {
        self.ca_list(CaTable::Policies, tenant).await
    }

    async fn put_policy(&self, tenant: &TenantId, p: &Policy) -> Result<()> {
        self.ca_put(CaTable::Policies, tenant, &p.id, row::enc(p)?).await
    }

    async fn policy(&self, tenant: &TenantId, id: &str) -> Result<Option<Policy>> {
        self.ca_get(CaTable::Policies, tenant, id).await
    }

    async fn delete_policy(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        self.ca_delete(CaTable::Policies, tenant, id).await
    }

    async fn named_locations(&self, tenant: &TenantId) -> Result<Vec<NamedLocation>> {
        self.ca_list(CaTable::Locations, tenant).await
    }

    async fn put_named_location(&self, tenant: &TenantId, l: &NamedLocation) -> Result<()> {
        self.ca_put(CaTable::Locations, tenant, &l.id, row::enc(l)?).await
    }

    async fn named_location(&self, tenant: &TenantId, id: &str) -> Result<Option<NamedLocation>> {
        self.ca_get(CaTable::Locations, tenant, id).await
    }

    async fn delete_named_location(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        self.ca_delete(CaTable::Locations, tenant, id).await
    }

    async fn devices(&self, tenant: &TenantId) -> Result<Vec<Device>> {
        let c = self.conn().await?;
        let rows = c
            .q("SELECT doc FROM devices WHERE tenant_id = $1 ORDER BY id COLLATE \"C\"", &[&tenant.to_string()])
            .await
            .map_err(pg_error)?;
        rows.iter().map(|r| row::doc(r, "doc")).collect()
    }

    async fn device(&self, tenant: &TenantId, id: &str) -> Result<Option<Device>> {
        let c = self.conn().await?;
        let found = c
            .q_opt("SELECT doc FROM devices WHERE tenant_id = $1 AND id = $2", &[&tenant.to_string(), &id])
            .await
            .map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn put_device(&self, tenant: &TenantId, d: &Device) -> Result<()> {
        let c = self.conn().await?;
        c.exec(
            "INSERT INTO devices (tenant_id, id, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET doc = excluded.doc",
            &[&tenant.to_string(), &d.id, &row::enc(d)?],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    async fn consent(&self, tenant: &TenantId, user: &UserId, client_id: &str) -> Result<Option<Consent>> {
        let c = self.conn().await?;
        let found = c
            .q_opt(
                "SELECT doc FROM consents WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3",
                &[&tenant.to_string(), &user.to_string(), &client_id],
            )
            .await
            .map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn put_consent(&self, tenant: &TenantId, user: &UserId, client_id: &str, c: &Consent) -> Result<()> {
        let conn = self.conn().await?;
        conn.exec(
            "INSERT INTO consents (tenant_id, user_id, client_id, doc) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, user_id, client_id) DO UPDATE SET doc = excluded.doc",
            &[&tenant.to_string(), &user.to_string(), &client_id, &row::enc(c)?],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }
}

/// The per-node cache of each tenant's policies and named locations. Every invalidation
/// raises the generation, so a reader that loaded from the database while an invalidation
/// came in (it may have read the state before the write) does not keep what it read.
#[derive(Default)]
pub(super) struct CaCache {
    generation: AtomicU64,
    map: std::sync::Mutex<std::collections::HashMap<TenantId, CaRecords>>,
}

impl CaCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<TenantId, CaRecords>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn get(&self, tenant: &TenantId) -> Option<CaRecords> {
        self.lock().get(tenant).cloned()
    }

    /// Keeps `records`, read after the generation was `seen`, unless an invalidation came since.
    fn keep(&self, tenant: &TenantId, records: &CaRecords, seen: u64) {
        let mut map = self.lock();
        if self.generation() == seen {
            map.insert(*tenant, records.clone());
        }
    }

    pub(super) fn forget(&self, tenant: &TenantId) {
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        map.remove(tenant);
    }

    pub(super) fn clear(&self) {
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        map.clear();
    }
}
