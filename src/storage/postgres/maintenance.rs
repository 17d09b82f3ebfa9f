//! The sign-in log, the outbox, signing keys, expiry sweeps, snapshot, export and import.
#![allow(unused_variables, unused_imports)]
use uuid::Uuid;

use super::PgStore;
use crate::model::*;
use crate::policy::{NamedLocation, Policy};
use crate::storage::*;

#[async_trait::async_trait]
impl api::AuditStore for PgStore {
    async fn append_signin_log(&self, tenant: &TenantId, entry: &mut SignInLogEntry) -> Result<()> {
        todo!()
    }

    async fn trim_signin_log(&self, before: i64, keep: usize) -> Result<usize> {
        todo!()
    }

    async fn signin_log_len(&self, tenant: &TenantId) -> usize {
        todo!()
    }

    async fn signin_log(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SignInLogEntry>> {
        todo!()
    }
}

#[async_trait::async_trait]
impl api::OutboxStore for PgStore {
    async fn push_outbox(&self, msg: OutboxMessage) -> Result<OutboxMessage> {
        todo!()
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxMessage>> {
        todo!()
    }
}

#[async_trait::async_trait]
impl api::KeyStore for PgStore {
    async fn key_metas(&self) -> Result<Vec<KeyMeta>> {
        todo!()
    }

    async fn put_key_meta(&self, meta: &KeyMeta) -> Result<()> {
        todo!()
    }

    async fn put_key_sealed(&self, meta: &KeyMeta, sealed: &[u8]) -> Result<()> {
        todo!()
    }

    async fn key_sealed(&self, kid: &str) -> Result<Option<Vec<u8>>> {
        todo!()
    }

    async fn delete_key_meta(&self, kid: &str) -> Result<()> {
        todo!()
    }
}

impl PgStore {
    /// Removes expired rows (see `SledStore::sweep` for what goes and what stays).
    pub(super) async fn sweep_expired(&self, now: i64) -> Result<usize> {
        todo!()
    }

    pub(super) async fn snapshot_rows(&self) -> Result<Vec<Record>> {
        todo!()
    }

    pub(super) async fn export_items(&self) -> Result<Vec<Item>> {
        todo!()
    }

    pub(super) async fn import_items(&self, items: &[Item]) -> Result<()> {
        todo!()
    }
}
