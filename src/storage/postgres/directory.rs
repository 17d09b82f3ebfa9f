//! Tenants, users (UPN and mail uniqueness by unique indexes, seats by the tenant row) and applications.
#![allow(unused_variables, unused_imports)]
use uuid::Uuid;

use super::{PgStore, pg_error, row, transact};
use crate::model::*;
use crate::policy::{NamedLocation, Policy};
use crate::storage::*;

#[async_trait::async_trait]
impl api::DirectoryStore for PgStore {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<()> {
        let doc = row::enc(tenant)?;
        let domains: Vec<String> = tenant.domains.iter().map(|d| d.to_ascii_lowercase()).collect();
        let id = tenant.id.to_string();
        transact!(self, tx => {
            tx.execute(
                "INSERT INTO tenants (id, slug, domains, doc) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, domains = excluded.domains, doc = excluded.doc",
                &[&id, &tenant.slug, &domains, &doc],
            )
            .await?;
            PgStore::notify(&tx, &Change::Tenant(tenant.id)).await?;
        })
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let c = self.conn().await?;
        let found = c.query_opt("SELECT doc FROM tenants WHERE id = $1", &[&id.to_string()]).await.map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        todo!()
    }

    async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>> {
        todo!()
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        todo!()
    }

    async fn put_user(&self, user: &User) -> Result<()> {
        todo!()
    }

    async fn insert_user(&self, user: &User) -> Result<()> {
        todo!()
    }

    async fn user_versioned(&self, tenant: &TenantId, id: &UserId) -> Result<Option<Versioned<User>>> {
        todo!()
    }

    async fn replace_user(&self, old: &Versioned<User>, new: &User, seat_limit: Option<u32>) -> Result<bool> {
        todo!()
    }

    async fn user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>> {
        todo!()
    }

    async fn user_by_login(&self, tenant: &TenantId, login: &str) -> Result<Option<User>> {
        todo!()
    }

    async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> Result<()> {
        todo!()
    }

    async fn users(&self, tenant: &TenantId) -> Result<Vec<User>> {
        todo!()
    }

    async fn user_by_upn(&self, tenant: &TenantId, upn: &str) -> Result<Option<User>> {
        todo!()
    }

    async fn user_by_mail(&self, tenant: &TenantId, mail: &str) -> Result<Option<User>> {
        todo!()
    }

    async fn users_page(
        &self,
        tenant: &TenantId,
        user_type: Option<UserType>,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<(Vec<User>, Option<UserId>)> {
        todo!()
    }

    async fn seats_used(&self, tenant: &TenantId) -> Result<u32> {
        todo!()
    }

    async fn put_app(&self, app: &Application) -> Result<()> {
        todo!()
    }

    async fn app(&self, tenant: &TenantId, client_id: &str) -> Result<Option<Application>> {
        todo!()
    }

    async fn apps(&self, tenant: &TenantId) -> Result<Vec<Application>> {
        todo!()
    }
}
