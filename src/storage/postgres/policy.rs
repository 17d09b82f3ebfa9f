//! Conditional access policies and named locations (cached per node, invalidated by NOTIFY), devices, consents.
#![allow(unused_variables, unused_imports)]
use uuid::Uuid;

use super::PgStore;
use crate::model::*;
use crate::policy::{NamedLocation, Policy};
use crate::storage::*;

#[async_trait::async_trait]
impl api::PolicyStore for PgStore {
    async fn ca_records(&self, tenant: &TenantId) -> Result<CaRecords> {
        todo!()
    }

    async fn policies(&self, tenant: &TenantId) -> Result<Vec<Policy>> {
        todo!()
    }

    async fn put_policy(&self, tenant: &TenantId, p: &Policy) -> Result<()> {
        todo!()
    }

    async fn policy(&self, tenant: &TenantId, id: &str) -> Result<Option<Policy>> {
        todo!()
    }

    async fn delete_policy(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        todo!()
    }

    async fn named_locations(&self, tenant: &TenantId) -> Result<Vec<NamedLocation>> {
        todo!()
    }

    async fn put_named_location(&self, tenant: &TenantId, l: &NamedLocation) -> Result<()> {
        todo!()
    }

    async fn named_location(&self, tenant: &TenantId, id: &str) -> Result<Option<NamedLocation>> {
        todo!()
    }

    async fn delete_named_location(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        todo!()
    }

    async fn devices(&self, tenant: &TenantId) -> Result<Vec<Device>> {
        todo!()
    }

    async fn device(&self, tenant: &TenantId, id: &str) -> Result<Option<Device>> {
        todo!()
    }

    async fn put_device(&self, tenant: &TenantId, d: &Device) -> Result<()> {
        todo!()
    }

    async fn consent(&self, tenant: &TenantId, user: &UserId, client_id: &str) -> Result<Option<Consent>> {
        todo!()
    }

    async fn put_consent(&self, tenant: &TenantId, user: &UserId, client_id: &str, c: &Consent) -> Result<()> {
        todo!()
    }
}

/// The per-node cache of each tenant's policies and named locations.
#[derive(Default)]
pub(super) struct CaCache {
    map: std::sync::Mutex<std::collections::HashMap<TenantId, CaRecords>>,
}

impl CaCache {
    pub(super) fn forget(&self, tenant: &TenantId) {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(tenant);
    }

    pub(super) fn clear(&self) {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}
