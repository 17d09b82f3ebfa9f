//! Conditional access policies, named locations, registered devices and the sign-in log.

use super::{Result, SledStore, api, decode, get, key2, put, uuid_key};
use crate::model::SignInLogEntry;
use crate::model::{Consent, Device, TenantId, UserId};
use crate::policy::{NamedLocation, Policy};
use crate::storage::CaRecords;

fn scan<T: serde::de::DeserializeOwned>(tree: &sled::Tree, tenant: &TenantId) -> Result<Vec<T>> {
    tree.scan_prefix(prefix(tenant)).values().map(|v| decode(&v?)).collect()
}

fn prefix(tenant: &TenantId) -> Vec<u8> {
    let mut p = uuid_key(tenant).to_vec();
    p.push(0xff);
    p
}

/// A tenant's policies and named locations as decoded records, shared by every sign-in and
/// refresh that evaluates them (decoding them per request dominated a refresh). Any write to
/// either tree raises the generation and drops the tenant's entry; a reader that raced a
/// write (the generation moved while it read) does not store what it read.
#[derive(Default)]
pub(super) struct CaCache {
    generation: std::sync::atomic::AtomicU64,
    tenants: std::sync::RwLock<std::collections::HashMap<TenantId, CaRecords>>,
}

impl CaCache {
    fn changed(&self, tenant: &TenantId) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.tenants.write().unwrap_or_else(|p| p.into_inner()).remove(tenant);
    }
}

fn consent_key(tenant: &TenantId, user: &UserId, client_id: &str) -> Vec<u8> {
    key2(&key2(&uuid_key(tenant), user.as_bytes()), client_id.as_bytes())
}

#[async_trait::async_trait]
impl api::PolicyStore for SledStore {
    async fn ca_records(&self, tenant: &TenantId) -> Result<CaRecords> {
        let cache = &self.ca_cache;
        let seen = cache.generation.load(std::sync::atomic::Ordering::SeqCst);
        if let Some(r) = cache.tenants.read().unwrap_or_else(|p| p.into_inner()).get(tenant) {
            return Ok(r.clone());
        }
        let records = CaRecords {
            policies: std::sync::Arc::new(scan(&self.policies, tenant)?),
            locations: std::sync::Arc::new(scan(&self.locations, tenant)?),
        };
        let mut tenants = cache.tenants.write().unwrap_or_else(|p| p.into_inner());
        if cache.generation.load(std::sync::atomic::Ordering::SeqCst) == seen {
            tenants.insert(*tenant, records.clone());
        }
        Ok(records)
    }

    async fn policies(&self, tenant: &TenantId) -> Result<Vec<Policy>> {
        self.policies.scan_prefix(prefix(tenant)).values().map(|v| decode(&v?)).collect()
    }

    async fn put_policy(&self, tenant: &TenantId, p: &Policy) -> Result<()> {
        put(&self.policies, &key2(&uuid_key(tenant), p.id.as_bytes()), p)?;
        self.ca_cache.changed(tenant);
        Ok(())
    }

    async fn policy(&self, tenant: &TenantId, id: &str) -> Result<Option<Policy>> {
        get(&self.policies, &key2(&uuid_key(tenant), id.as_bytes()))
    }

    async fn delete_policy(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let removed = self.policies.remove(key2(&uuid_key(tenant), id.as_bytes()))?.is_some();
        self.ca_cache.changed(tenant);
        Ok(removed)
    }

    async fn named_locations(&self, tenant: &TenantId) -> Result<Vec<NamedLocation>> {
        self.locations.scan_prefix(prefix(tenant)).values().map(|v| decode(&v?)).collect()
    }

    async fn put_named_location(&self, tenant: &TenantId, l: &NamedLocation) -> Result<()> {
        put(&self.locations, &key2(&uuid_key(tenant), l.id.as_bytes()), l)?;
        self.ca_cache.changed(tenant);
        Ok(())
    }

    async fn named_location(&self, tenant: &TenantId, id: &str) -> Result<Option<NamedLocation>> {
        get(&self.locations, &key2(&uuid_key(tenant), id.as_bytes()))
    }

    async fn delete_named_location(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let removed = self.locations.remove(key2(&uuid_key(tenant), id.as_bytes()))?.is_some();
        self.ca_cache.changed(tenant);
        Ok(removed)
    }

    async fn devices(&self, tenant: &TenantId) -> Result<Vec<Device>> {
        self.devices.scan_prefix(prefix(tenant)).values().map(|v| decode(&v?)).collect()
    }

    async fn device(&self, tenant: &TenantId, id: &str) -> Result<Option<Device>> {
        get(&self.devices, &key2(&uuid_key(tenant), id.as_bytes()))
    }

    async fn put_device(&self, tenant: &TenantId, d: &Device) -> Result<()> {
        put(&self.devices, &key2(&uuid_key(tenant), d.id.as_bytes()), d)
    }

    async fn consent(&self, tenant: &TenantId, user: &UserId, client_id: &str) -> Result<Option<Consent>> {
        get(&self.consents, &consent_key(tenant, user, client_id))
    }

    async fn put_consent(&self, tenant: &TenantId, user: &UserId, client_id: &str, c: &Consent) -> Result<()> {
        put(&self.consents, &consent_key(tenant, user, client_id), c)
    }
}

#[async_trait::async_trait]
impl api::AuditStore for SledStore {
    async fn append_signin_log(&self, tenant: &TenantId, entry: &mut SignInLogEntry) -> Result<()> {
        let seq = self.db.generate_id()?;
        entry.seq = seq;
        put(&self.signin_log, &key2(&uuid_key(tenant), &seq.to_be_bytes()), entry)
    }

    async fn trim_signin_log(&self, before: i64, keep: usize) -> Result<usize> {
        let mut removed = 0;
        // Per tenant, the surviving entries oldest first: (key, anonymous failure).
        let mut per_tenant: std::collections::HashMap<Vec<u8>, Vec<(sled::IVec, bool)>> =
            std::collections::HashMap::new();
        for item in self.signin_log.iter() {
            let (k, v) = item?;
            let entry = decode::<SignInLogEntry>(&v).ok();
            if entry.as_ref().is_some_and(|e| e.created_at < before) {
                self.signin_log.remove(&k)?;
                removed += 1;
                continue;
            }
            let anonymous = entry.is_some_and(|e| e.user_id.is_none() && e.status.error_code != 0);
            let tenant = k.get(..16).map(<[u8]>::to_vec).unwrap_or_default();
            per_tenant.entry(tenant).or_default().push((k, anonymous));
        }
        for entries in per_tenant.values() {
            let mut excess = entries.len().saturating_sub(keep);
            for pass_anonymous in [true, false] {
                for (k, anonymous) in entries {
                    if excess == 0 {
                        break;
                    }
                    if *anonymous == pass_anonymous {
                        self.signin_log.remove(k)?;
                        removed += 1;
                        excess -= 1;
                    }
                }
            }
        }
        Ok(removed)
    }

    async fn signin_log_len(&self, tenant: &TenantId) -> usize {
        self.signin_log.scan_prefix(prefix(tenant)).count()
    }

    async fn signin_log(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SignInLogEntry>> {
        self.signin_log.scan_prefix(prefix(tenant)).values().rev().take(limit).map(|v| decode(&v?)).collect()
    }
}
