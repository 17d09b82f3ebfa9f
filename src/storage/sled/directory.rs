//! Tenants, users and applications.
use std::collections::HashMap;

use super::{Result, SledStore, StoreError, Versioned, api, decode, get, key2, put, uuid_key};
use crate::model::{Application, Tenant, TenantId, User, UserId, UserType};

#[async_trait::async_trait]
impl api::DirectoryStore for SledStore {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<()> {
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

    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        get(&self.tenants, &uuid_key(id))
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        match self.slug_tenant.get(slug.as_bytes())? {
            Some(id) => get(&self.tenants, &id),
            None => Ok(None),
        }
    }

    /// The tenant on this instance that verified `domain`, if any.
    async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>> {
        match self.domain_tenant.get(domain.as_bytes())? {
            Some(id) => get(&self.tenants, &id),
            None => Ok(None),
        }
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        self.tenants.iter().values().map(|v| decode(&v?)).collect()
    }

    /// Writes a user, replacing the record with the same id (updates and tests). Creates
    /// go through [`api::DirectoryStore::insert_user`], which refuses an existing id.
    async fn put_user(&self, user: &User) -> Result<()> {
        let _names = self.names_lock();
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
        let old: Option<User> = get(&self.users, &key2(&t, user.id.as_bytes()))?;
        if let Some(old) = &old {
            self.upn_user.remove(key2(&t, old.user_principal_name.to_ascii_lowercase().as_bytes()))?;
            self.mail_user.remove(key2(&t, old.mail.to_ascii_lowercase().as_bytes()))?;
        }
        let mut seats = self.seats_lock();
        put(&self.users, &key2(&t, user.id.as_bytes()), user)?;
        seat_change(&mut seats, &user.tenant_id, old.as_ref(), Some(user));
        drop(seats);
        self.upn_user.insert(key2(&t, upn.as_bytes()), &uuid_key(&user.id))?;
        self.mail_user.insert(key2(&t, mail.as_bytes()), &uuid_key(&user.id))?;
        Ok(())
    }

    /// Creates a user; never replaces one. Fails with `Conflict` when the id, the UPN or
    /// the mail is already taken in the tenant, so no create path can overwrite a record.
    /// Creates run one at a time (`names_lock`), so of concurrent creates for one id or one
    /// address exactly one wins. The names are claimed first and the record written last: a
    /// crash in between leaves claimed names without a record, which the next create of
    /// them takes over.
    async fn insert_user(&self, user: &User) -> Result<()> {
        let names = self.names_lock();
        let t = uuid_key(&user.tenant_id);
        let key = key2(&t, user.id.as_bytes());
        let taken = || StoreError::Conflict(format!("a user with the id {} already exists", user.id));
        if self.users.contains_key(&key)? {
            return Err(taken());
        }
        let upn = user.user_principal_name.to_ascii_lowercase();
        let mail = user.mail.to_ascii_lowercase();
        let mut claimed: Vec<(&sled::Tree, Vec<u8>)> = Vec::new();
        let mut outcome = Ok(());
        for (index, name) in [(&self.upn_user, &upn), (&self.mail_user, &mail)] {
            let name_key = key2(&t, name.as_bytes());
            match self.claim_name(&names, index, &t, &name_key, &user.id) {
                Ok(true) => claimed.push((index, name_key)),
                Ok(false) => {
                    outcome = Err(StoreError::Conflict(format!("{name} is already used in this tenant")));
                    break;
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        if outcome.is_ok() {
            let mut seats = self.seats_lock();
            match self.users.compare_and_swap(&key, None as Option<&[u8]>, Some(super::encode(user)?))? {
                Ok(()) => {
                    seat_change(&mut seats, &user.tenant_id, None, Some(user));
                    return Ok(());
                }
                Err(_) => outcome = Err(taken()),
            }
        }
        for (index, name_key) in claimed {
            // Only our own claim is released; a name someone else holds stays theirs.
            let _ = index.compare_and_swap(name_key, Some(user.id.as_bytes().as_slice()), None as Option<&[u8]>)?;
        }
        outcome
    }

    /// Read-modify-write of one user by compare-and-swap (the id, tenant, UPN and mail do
    /// not change), so concurrent MFA checks cannot both spend the same TOTP step or recovery code.
    async fn user_versioned(&self, tenant: &TenantId, id: &UserId) -> Result<Option<Versioned<User>>> {
        super::versioned(&self.users, &key2(&uuid_key(tenant), id.as_bytes()))
    }

    /// Refuses (`Conflict`, nothing written) a change of the id, the tenant, the UPN or the
    /// mail: the record's key and the name indexes would no longer match it.
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
        let mut seats = self.seats_lock();
        if let Some(limit) = seat_limit
            && new.holds_seat()
            && !was.holds_seat()
            && seats.get(&new.tenant_id).copied().unwrap_or(0) >= limit
        {
            return Err(StoreError::NoSeat);
        }
        let swapped =
            super::replace(&self.users, &key2(&uuid_key(&old.value.tenant_id), old.value.id.as_bytes()), old, new)?;
        if swapped {
            seat_change(&mut seats, &new.tenant_id, Some(&old.value), Some(new));
        }
        Ok(swapped)
    }

    async fn user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>> {
        get(&self.users, &key2(&uuid_key(tenant), id.as_bytes()))
    }

    /// Finds a user of the tenant by UPN or mail (case-insensitive).
    async fn user_by_upn(&self, tenant: &TenantId, upn: &str) -> Result<Option<User>> {
        self.by_index(&self.upn_user, tenant, upn)
    }

    async fn user_by_mail(&self, tenant: &TenantId, mail: &str) -> Result<Option<User>> {
        self.by_index(&self.mail_user, tenant, mail)
    }

    async fn user_by_login(&self, tenant: &TenantId, login: &str) -> Result<Option<User>> {
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

    async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> Result<()> {
        // The record goes first, its names after: a create must not take them over between.
        let _names = self.names_lock();
        let t = uuid_key(tenant);
        let mut seats = self.seats_lock();
        if let Some(raw) = self.users.remove(key2(&t, id.as_bytes()))? {
            let old: User = decode(&raw)?;
            seat_change(&mut seats, tenant, Some(&old), None);
            drop(seats);
            self.upn_user.remove(key2(&t, old.user_principal_name.to_ascii_lowercase().as_bytes()))?;
            self.mail_user.remove(key2(&t, old.mail.to_ascii_lowercase().as_bytes()))?;
        }
        Ok(())
    }

    async fn users_page(
        &self,
        tenant: &TenantId,
        user_type: Option<UserType>,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<(Vec<User>, Option<UserId>)> {
        use std::ops::Bound;
        let t = uuid_key(tenant);
        let start = match after {
            Some(id) => Bound::Excluded(key2(&t, id.as_bytes())),
            None => Bound::Included(key2(&t, &[])),
        };
        let end = Bound::Excluded(key2(&t, &[0xff; 17]));
        let mut out = Vec::new();
        for item in self.users.range::<Vec<u8>, _>((start, end)) {
            let (_, v) = item?;
            let u: User = decode(&v)?;
            if user_type.is_none_or(|t| u.user_type == t) {
                if out.len() == limit {
                    let last = out.last().map(|x: &User| x.id);
                    return Ok((out, last));
                }
                out.push(u);
            }
        }
        Ok((out, None))
    }

    async fn seats_used(&self, tenant: &TenantId) -> Result<u32> {
        Ok(self.seats_lock().get(tenant).copied().unwrap_or(0))
    }

    async fn users(&self, tenant: &TenantId) -> Result<Vec<User>> {
        let mut prefix = uuid_key(tenant).to_vec();
        prefix.push(0xff);
        self.users.scan_prefix(prefix).values().map(|v| decode(&v?)).collect()
    }

    async fn put_app(&self, app: &Application) -> Result<()> {
        put(&self.apps, &key2(&uuid_key(&app.tenant_id), app.client_id.as_bytes()), app)
    }

    async fn app(&self, tenant: &TenantId, client_id: &str) -> Result<Option<Application>> {
        get(&self.apps, &key2(&uuid_key(tenant), client_id.as_bytes()))
    }

    async fn apps(&self, tenant: &TenantId) -> Result<Vec<Application>> {
        let mut prefix = uuid_key(tenant).to_vec();
        prefix.push(0xff);
        self.apps.scan_prefix(prefix).values().map(|v| decode(&v?)).collect()
    }

    async fn delete_app(&self, tenant: &TenantId, client_id: &str) -> Result<bool> {
        Ok(self.apps.remove(key2(&uuid_key(tenant), client_id.as_bytes()))?.is_some())
    }
}

impl SledStore {
    /// Points an index name at `id` if nobody holds it; `false` when another user does.
    /// A name whose owner record is missing was claimed by a create that never wrote its
    /// record (a crash in between) and is taken over. That is sound only under `names_lock`
    /// (the guard shows it is held): no create that claimed the name can still be on its way
    /// to writing its record.
    fn claim_name(
        &self,
        _names: &std::sync::MutexGuard<'_, ()>,
        index: &sled::Tree,
        tenant: &[u8],
        name_key: &[u8],
        id: &UserId,
    ) -> Result<bool> {
        if let Some(owner) = index.get(name_key)?
            && self.users.contains_key(key2(tenant, &owner))?
        {
            return Ok(false);
        }
        index.insert(name_key, id.as_bytes().as_slice())?;
        Ok(true)
    }
}

/// Moves the tenant's seat count by what this write changed.
pub(super) fn seat_change(
    seats: &mut HashMap<TenantId, u32>,
    tenant: &TenantId,
    old: Option<&User>,
    new: Option<&User>,
) {
    let before = old.is_some_and(User::holds_seat);
    let after = new.is_some_and(User::holds_seat);
    let n = seats.entry(*tenant).or_default();
    match (before, after) {
        (false, true) => *n += 1,
        (true, false) => *n = n.saturating_sub(1),
        _ => {}
    }
}

impl SledStore {
    /// Orders every writer of the UPN and mail indexes (see the field).
    fn names_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.names_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn seats_lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, u32>> {
        self.seats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn by_index(&self, index: &sled::Tree, tenant: &TenantId, name: &str) -> Result<Option<User>> {
        let t = uuid_key(tenant);
        match index.get(key2(&t, name.trim().to_ascii_lowercase().as_bytes()))? {
            Some(id) => get(&self.users, &key2(&t, &id)),
            None => Ok(None),
        }
    }

    /// Counts every tenant's seats (at open).
    pub(super) fn count_seats(&self) -> Result<()> {
        let mut seats = self.seats_lock();
        seats.clear();
        for v in self.users.iter().values() {
            let u: User = decode(&v?)?;
            if u.holds_seat() {
                *seats.entry(u.tenant_id).or_default() += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::api::DirectoryStore;

    /// A create killed between claiming its names and writing its record leaves the names
    /// pointing at a user that does not exist: the next create of those names takes them over.
    #[tokio::test]
    async fn names_left_by_a_crashed_create_are_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 8).unwrap();
        let tenant = TenantId::new();
        let t = uuid_key(&tenant);
        let crashed = UserId::new();
        store.upn_user.insert(key2(&t, b"ada@contoso.example"), crashed.as_bytes()).unwrap();
        store.mail_user.insert(key2(&t, b"ada@mail.contoso.example"), crashed.as_bytes()).unwrap();
        drop(store);

        let store = SledStore::open(dir.path(), 8).unwrap();
        let ada = User {
            id: UserId::new(),
            tenant_id: tenant,
            user_principal_name: "Ada@contoso.example".into(),
            mail: "ada@mail.contoso.example".into(),
            ..Default::default()
        };
        store.insert_user(&ada).await.unwrap();
        for login in ["ada@contoso.example", "ADA@mail.contoso.example"] {
            assert_eq!(store.user_by_login(&tenant, login).await.unwrap().as_ref(), Some(&ada), "{login}");
        }
        let again = User { id: UserId::new(), ..ada.clone() };
        assert!(matches!(store.insert_user(&again).await, Err(StoreError::Conflict(_))), "a live owner keeps them");
    }
}
