//! Export and import (`gatehouse store copy`): every tree as typed items, and back.
//!
//! Index trees (`slug_tenant`, `domain_tenant`, `upn_user`, `mail_user`, `signin_browser`)
//! are not exported: an import rebuilds them by writing through the same paths as every
//! other write. Ids that sled's id generator hands out (sign-in log, outbox) are kept, and
//! the generator is moved past them so later appends sort after the imported entries.
use super::{Result, SledStore, StoreError, api, decode, encode, key2, put, uuid_key};
use crate::model::*;
use crate::storage::{Change, Item};

/// How far the id generator may be moved past its current value by an import (it moves
/// one step at a time; a larger gap means ids from elsewhere that sled cannot continue).
const MAX_ID_GAP: u64 = 1 << 30;

fn corrupt(tree: &str, key: &[u8]) -> StoreError {
    StoreError::Corrupt(format!("{tree}: unexpected key {key:02x?}"))
}

fn id32(tree: &str, key: &[u8]) -> Result<[u8; 32]> {
    key.try_into().map_err(|_| corrupt(tree, key))
}

/// The 16-byte id before the first separator of a composite key, and the rest.
fn split16<'k>(tree: &str, key: &'k [u8]) -> Result<(uuid::Uuid, &'k [u8])> {
    match key.split_at_checked(16) {
        Some((id, [0xff, rest @ ..])) => Ok((uuid::Uuid::from_slice(id).map_err(|_| corrupt(tree, key))?, rest)),
        _ => Err(corrupt(tree, key)),
    }
}

fn records<T: serde::de::DeserializeOwned>(tree: &sled::Tree) -> impl Iterator<Item = Result<(sled::IVec, T)>> {
    tree.iter().map(|item| {
        let (k, v) = item?;
        Ok((k, decode(&v)?))
    })
}

impl SledStore {
    /// Every record as an item: metadata and keys first, then the directory, guests, tokens,
    /// policies, the sign-in log and the outbox. Sign-ins come in their browser index's
    /// creation order, the log and the outbox in id order (oldest first).
    pub(super) fn export_items(&self) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        for item in self.meta.iter() {
            let (k, v) = item?;
            out.push(Item::Meta(String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        for r in records::<KeyMeta>(&self.keys) {
            let (_, meta) = r?;
            let sealed = self.key_sealed.get(meta.kid.as_bytes())?.map(|v| v.to_vec());
            out.push(Item::Key(Box::new(meta), sealed));
        }
        for r in records::<Tenant>(&self.tenants) {
            out.push(Item::Tenant(Box::new(r?.1)));
        }
        for r in records::<User>(&self.users) {
            out.push(Item::User(Box::new(r?.1)));
        }
        for r in records::<Application>(&self.apps) {
            out.push(Item::App(Box::new(r?.1)));
        }
        for r in records::<Invitation>(&self.invitations) {
            out.push(Item::Invitation(Box::new(r?.1)));
        }
        for r in records::<Ticket>(&self.tickets) {
            let (k, t) = r?;
            out.push(Item::Ticket(id32("tickets", &k)?, Box::new(t)));
        }
        for r in records::<StubAccount>(&self.stub_accounts) {
            let (k, acct) = r?;
            let stub = k.split(|b| *b == 0xff).next().unwrap_or_default();
            out.push(Item::StubAccount(String::from_utf8_lossy(stub).into_owned(), Box::new(acct)));
        }
        for item in self.fed_states.iter() {
            let (k, v) = item?;
            // An unreadable state can never be used (`fed_state` answers none): nothing to copy.
            if let Ok(f) = decode::<FedState>(&v) {
                out.push(Item::FedState(String::from_utf8_lossy(&k).into_owned(), Box::new(f)));
            }
        }
        out.extend(self.export_signins()?);
        for r in records::<Session>(&self.sessions) {
            let (k, s) = r?;
            out.push(Item::Session(id32("sessions", &k)?, Box::new(s)));
        }
        for r in records::<AuthCode>(&self.codes) {
            let (k, c) = r?;
            out.push(Item::Code(id32("codes", &k)?, Box::new(c)));
        }
        for r in records::<Grant>(&self.grants) {
            let (k, g) = r?;
            let id = uuid::Uuid::from_slice(&k).map_err(|_| corrupt("grants", &k))?;
            out.push(Item::Grant(id, Box::new(g)));
        }
        for r in records::<RefreshToken>(&self.refresh_tokens) {
            let (k, rt) = r?;
            out.push(Item::Refresh(id32("refresh_tokens", &k)?, Box::new(rt)));
        }
        for r in records::<i64>(&self.revoked_jti) {
            let (k, exp) = r?;
            out.push(Item::RevokedJti(String::from_utf8_lossy(&k).into_owned(), exp));
        }
        for r in records::<crate::policy::Policy>(&self.policies) {
            let (k, p) = r?;
            out.push(Item::Policy(split16("tenant_policies", &k)?.0.into(), Box::new(p)));
        }
        for r in records::<crate::policy::NamedLocation>(&self.locations) {
            let (k, l) = r?;
            out.push(Item::NamedLocation(split16("tenant_named_locations", &k)?.0.into(), Box::new(l)));
        }
        for r in records::<Device>(&self.devices) {
            let (k, d) = r?;
            out.push(Item::Device(split16("tenant_devices", &k)?.0.into(), Box::new(d)));
        }
        for r in records::<Consent>(&self.consents) {
            let (k, c) = r?;
            let (tenant, rest) = split16("tenant_consents", &k)?;
            let (user, client_id) = split16("tenant_consents", rest)?;
            let client_id = String::from_utf8_lossy(client_id).into_owned();
            out.push(Item::Consent(tenant.into(), user.into(), client_id, Box::new(c)));
        }
        let mut log = Vec::new();
        for r in records::<SignInLogEntry>(&self.signin_log) {
            let (k, mut entry) = r?;
            let (tenant, seq) = split16("tenant_signin_log", &k)?;
            let seq: [u8; 8] = seq.try_into().map_err(|_| corrupt("tenant_signin_log", &k))?;
            entry.seq = u64::from_be_bytes(seq);
            log.push((TenantId::from(tenant), entry));
        }
        log.sort_by_key(|(_, e)| e.seq);
        out.extend(log.into_iter().map(|(t, e)| Item::SignInLog(t, Box::new(e))));
        for r in records::<OutboxMessage>(&self.outbox) {
            out.push(Item::Outbox(Box::new(r?.1)));
        }
        Ok(out)
    }

    /// Sign-ins ordered by their browser index's creation sequence (what per-browser
    /// eviction goes by); one without an index entry (a crash between two writes) last.
    fn export_signins(&self) -> Result<Vec<Item>> {
        let mut signins = Vec::new();
        for r in records::<SignIn>(&self.signins) {
            let (k, s) = r?;
            let id = id32("signins", &k)?;
            let seq = self
                .signin_browser
                .get(key2_flat(&s.browser, &id))?
                .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                .map_or(u64::MAX, u64::from_be_bytes);
            signins.push((seq, id, s));
        }
        signins.sort_by_key(|(seq, _, _)| *seq);
        Ok(signins.into_iter().map(|(_, id, s)| Item::SignIn(id, Box::new(s))).collect())
    }

    /// Writes every item through the store's own write paths (which keep the indexes and
    /// seat counts), replacing what has the same key; then makes the writes durable.
    pub(super) async fn import_items(&self, items: &[Item]) -> Result<()> {
        use api::{DirectoryStore, GuestStore, PolicyStore, TokenStore};
        let mut max_id = None::<u64>;
        let mut keys_changed = false;
        for item in items {
            match item {
                Item::Meta(key, value) => {
                    self.meta.insert(key.as_bytes(), value.as_slice())?;
                }
                Item::Key(meta, sealed) => {
                    // The sealed key first: metadata without its key would be a key nobody can load.
                    if let Some(sealed) = sealed {
                        self.key_sealed.insert(meta.kid.as_bytes(), sealed.as_slice())?;
                    }
                    put(&self.keys, meta.kid.as_bytes(), meta)?;
                    keys_changed = true;
                }
                Item::Tenant(t) => self.put_tenant(t).await?,
                Item::User(u) => self.put_user(u).await?,
                Item::App(a) => self.put_app(a).await?,
                Item::Invitation(inv) => self.put_invitation(inv).await?,
                Item::Ticket(id, t) => self.put_ticket(id, t).await?,
                Item::StubAccount(stub, acct) => self.put_stub_account(stub, acct).await?,
                Item::FedState(state, f) => self.put_fed_state(state, f).await?,
                Item::SignIn(id, s) => self.import_signin(id, s)?,
                Item::Session(id, s) => self.put_session(id, s).await?,
                Item::Code(id, c) => self.put_code(id, c).await?,
                Item::Grant(id, g) => put(&self.grants, &uuid_key(id), g.as_ref())?,
                Item::Refresh(id, rt) => put(&self.refresh_tokens, id, rt.as_ref())?,
                Item::RevokedJti(jti, exp) => self.revoke_jti(jti, *exp).await?,
                Item::Policy(t, p) => self.put_policy(t, p).await?,
                Item::NamedLocation(t, l) => self.put_named_location(t, l).await?,
                Item::Device(t, d) => self.put_device(t, d).await?,
                Item::Consent(t, user, client_id, c) => self.put_consent(t, user, client_id, c).await?,
                Item::SignInLog(t, entry) => {
                    put(&self.signin_log, &key2(&uuid_key(t), &entry.seq.to_be_bytes()), entry.as_ref())?;
                    max_id = max_id.max(Some(entry.seq));
                }
                Item::Outbox(msg) => {
                    put(&self.outbox, &msg.id.to_be_bytes(), msg.as_ref())?;
                    max_id = max_id.max(Some(msg.id));
                }
            }
        }
        if let Some(max) = max_id {
            self.ids_past(max)?;
        }
        if keys_changed {
            let _ = self.changes.send(Change::Keys);
        }
        api::Maintenance::flush(self).await
    }

    /// Stores a sign-in as `put_signin` does (count and browser index kept); one that is
    /// already stored under another browser moves to that browser's index.
    fn import_signin(&self, id: &[u8; 32], signin: &SignIn) -> Result<()> {
        match self.signins.insert(id, encode(signin)?)? {
            None => {
                self.signin_count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let seq = self.db.generate_id()?;
                self.signin_browser.insert(key2_flat(&signin.browser, id), &seq.to_be_bytes())?;
            }
            Some(old) => {
                if let Ok(old) = decode::<SignIn>(&old)
                    && old.browser != signin.browser
                    && let Some(seq) = self.signin_browser.remove(key2_flat(&old.browser, id))?
                {
                    self.signin_browser.insert(key2_flat(&signin.browser, id), seq)?;
                }
            }
        }
        Ok(())
    }

    /// Moves the id generator past `max`, so no later id equals (or sorts before) an imported one.
    fn ids_past(&self, max: u64) -> Result<()> {
        let mut next = self.db.generate_id()?;
        if max.saturating_sub(next) > MAX_ID_GAP {
            return Err(StoreError::Conflict(format!(
                "the imported ids reach {max}, too far past this store's {next} to continue from"
            )));
        }
        while next <= max {
            next = self.db.generate_id()?;
        }
        Ok(())
    }
}

/// The browser index key of a sign-in: browser digest, then sign-in id (no separator).
fn key2_flat(browser: &[u8; 32], id: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    k.extend_from_slice(browser);
    k.extend_from_slice(id);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_split_at_the_first_separator() {
        let t = uuid::Uuid::new_v4();
        let key = key2(t.as_bytes(), b"client\xffrest");
        let (id, rest) = split16("t", &key).unwrap();
        assert_eq!((id, rest), (t, b"client\xffrest".as_slice()));
        assert!(split16("t", &key[..10]).is_err());
        assert!(split16("t", t.as_bytes()).is_err());
    }
}
