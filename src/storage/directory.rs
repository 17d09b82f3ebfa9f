//! Tenants, users and applications.
use uuid::Uuid;

use super::{Result, Store, StoreError, decode, get, key2, put, uuid_key};
use crate::directory::{Application, Tenant, User};

impl Store {
    pub fn put_tenant(&self, tenant: &Tenant) -> Result<()> {
        if let Some(existing) = self.slug_tenant.get(tenant.slug.as_bytes())?
            && existing.as_ref() != tenant.id.as_bytes()
        {
            return Err(StoreError::Conflict(format!("tenant slug {} is taken", tenant.slug)));
        }
        put(&self.tenants, &uuid_key(&tenant.id), tenant)?;
        self.slug_tenant.insert(tenant.slug.as_bytes(), &uuid_key(&tenant.id))?;
        for d in &tenant.domains {
            self.domain_tenant.insert(d.as_bytes(), &uuid_key(&tenant.id))?;
        }
        Ok(())
    }

    pub fn tenant(&self, id: &Uuid) -> Result<Option<Tenant>> {
        get(&self.tenants, &uuid_key(id))
    }

    pub fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        match self.slug_tenant.get(slug.as_bytes())? {
            Some(id) => get(&self.tenants, &id),
            None => Ok(None),
        }
    }

    /// The tenant on this instance that verified `domain`, if any.
    pub fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>> {
        match self.domain_tenant.get(domain.as_bytes())? {
            Some(id) => get(&self.tenants, &id),
            None => Ok(None),
        }
    }

    pub fn tenants(&self) -> Result<Vec<Tenant>> {
        self.tenants.iter().values().map(|v| decode(&v?)).collect()
    }

    pub fn put_user(&self, user: &User) -> Result<()> {
        let t = uuid_key(&user.tenant_id);
        let upn = user.user_principal_name.to_ascii_lowercase();
        let mail = user.mail.to_ascii_lowercase();
        for (index, name) in [(&self.upn_user, &upn), (&self.mail_user, &mail)] {
            if let Some(owner) = index.get(key2(&t, name.as_bytes()))?
                && owner.as_ref() != user.id.as_bytes()
            {
                return Err(StoreError::Conflict(format!("{name} is already used in this tenant")));
            }
        }
        if let Some(old) = self.user(&user.tenant_id, &user.id)? {
            self.upn_user.remove(key2(&t, old.user_principal_name.to_ascii_lowercase().as_bytes()))?;
            self.mail_user.remove(key2(&t, old.mail.to_ascii_lowercase().as_bytes()))?;
        }
        put(&self.users, &key2(&t, user.id.as_bytes()), user)?;
        self.upn_user.insert(key2(&t, upn.as_bytes()), &uuid_key(&user.id))?;
        self.mail_user.insert(key2(&t, mail.as_bytes()), &uuid_key(&user.id))?;
        Ok(())
    }

    /// Read-modify-write of one user by compare-and-swap (the UPN and mail must not change),
    /// so concurrent MFA checks cannot both spend the same TOTP step or recovery code.
    pub fn update_user<R>(&self, tenant: &Uuid, id: &Uuid, f: impl FnMut(&mut User) -> R) -> Result<Option<(User, R)>> {
        super::update(&self.users, &key2(&uuid_key(tenant), id.as_bytes()), f)
    }

    pub fn user(&self, tenant: &Uuid, id: &Uuid) -> Result<Option<User>> {
        get(&self.users, &key2(&uuid_key(tenant), id.as_bytes()))
    }

    /// Finds a user of the tenant by UPN or mail (case-insensitive).
    pub fn user_by_login(&self, tenant: &Uuid, login: &str) -> Result<Option<User>> {
        let t = uuid_key(tenant);
        let login = login.trim().to_ascii_lowercase();
        let id = match self.upn_user.get(key2(&t, login.as_bytes()))? {
            Some(id) => Some(id),
            None => self.mail_user.get(key2(&t, login.as_bytes()))?,
        };
        match id {
            Some(id) => get(&self.users, &key2(&t, &id)),
            None => Ok(None),
        }
    }

    pub fn delete_user(&self, tenant: &Uuid, id: &Uuid) -> Result<()> {
        let t = uuid_key(tenant);
        if let Some(old) = self.user(tenant, id)? {
            self.upn_user.remove(key2(&t, old.user_principal_name.to_ascii_lowercase().as_bytes()))?;
            self.mail_user.remove(key2(&t, old.mail.to_ascii_lowercase().as_bytes()))?;
            self.users.remove(key2(&t, id.as_bytes()))?;
        }
        Ok(())
    }

    pub fn users(&self, tenant: &Uuid) -> Result<Vec<User>> {
        let mut prefix = uuid_key(tenant).to_vec();
        prefix.push(0xff);
        self.users.scan_prefix(prefix).values().map(|v| decode(&v?)).collect()
    }

    pub fn put_app(&self, app: &Application) -> Result<()> {
        put(&self.apps, &key2(&uuid_key(&app.tenant_id), app.client_id.as_bytes()), app)
    }

    pub fn app(&self, tenant: &Uuid, client_id: &str) -> Result<Option<Application>> {
        get(&self.apps, &key2(&uuid_key(tenant), client_id.as_bytes()))
    }

    pub fn apps(&self, tenant: &Uuid) -> Result<Vec<Application>> {
        let mut prefix = uuid_key(tenant).to_vec();
        prefix.push(0xff);
        self.apps.scan_prefix(prefix).values().map(|v| decode(&v?)).collect()
    }
}
