//! Sign-in transactions, sessions, codes, grants, refresh tokens, revoked token ids, key metadata.
//! Every key here that derives from a bearer secret is the secret's SHA-256.
use std::sync::atomic::Ordering;

use uuid::Uuid;

use super::{Result, SledStore, Versioned, api, decode, encode, get, put, update, uuid_key};
use crate::model::{AuthCode, Grant, KeyMeta, RefreshToken, Session, SignIn};
use crate::storage::{Change, CodeUse, RefreshRules, RefreshUse, SignInAdmission};

/// The per-browser index key of a sign-in: browser digest, then sign-in id.
fn browser_key(browser: &[u8; 32], id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    k.extend_from_slice(browser);
    k.extend_from_slice(id);
    k
}

#[async_trait::async_trait]
impl api::TokenStore for SledStore {
    async fn open_signin(
        &self,
        id: &[u8; 32],
        signin: &SignIn,
        per_browser: usize,
        total: usize,
        now: i64,
    ) -> Result<SignInAdmission> {
        let _guard = self.signin_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let per_browser = per_browser.max(1);
        // Decided before anything changes: the browser's oldest over its cap go to make room
        // for this one, so they count as free room for the total; Full changes nothing.
        let mut evict = self.browser_excess(&signin.browser, per_browser)?;
        if self.signin_count.load(Ordering::SeqCst).saturating_sub(live(&evict)) >= total {
            self.sweep_signins_early(now)?;
            evict = self.browser_excess(&signin.browser, per_browser)?;
            if self.signin_count.load(Ordering::SeqCst).saturating_sub(live(&evict)) >= total {
                return Ok(SignInAdmission::Full);
            }
        }
        for (k, _) in evict {
            if let Some(old) = k.get(32..) {
                self.remove_signin(old)?;
            }
            self.signin_browser.remove(k)?;
        }
        self.store_signin(id, signin)?;
        Ok(SignInAdmission::Stored)
    }

    async fn put_signin(&self, id: &[u8; 32], signin: &SignIn) -> Result<()> {
        self.store_signin(id, signin)
    }

    async fn signin(&self, id: &[u8; 32]) -> Result<Option<SignIn>> {
        get(&self.signins, id)
    }

    async fn signin_versioned(&self, id: &[u8; 32]) -> Result<Option<Versioned<SignIn>>> {
        super::versioned(&self.signins, id)
    }

    async fn replace_signin(&self, id: &[u8; 32], old: &Versioned<SignIn>, new: &SignIn) -> Result<bool> {
        super::replace(&self.signins, id, old, new)
    }

    async fn delete_signin(&self, id: &[u8; 32]) -> Result<()> {
        self.remove_signin(id)?;
        Ok(())
    }

    async fn rebind_signins(&self, old: &[u8; 32], new: &[u8; 32]) -> Result<()> {
        for item in self.signin_browser.scan_prefix(old) {
            let (k, seq) = item?;
            let Some(id) = k.get(32..) else { continue };
            let moved = update(&self.signins, id, |s: &mut SignIn| s.browser = *new)?;
            if moved.is_some() {
                self.signin_browser.insert(browser_key(new, id), seq)?;
            }
            self.signin_browser.remove(&k)?;
        }
        Ok(())
    }

    async fn signin_count(&self) -> usize {
        self.signin_count.load(Ordering::SeqCst)
    }

    async fn put_session(&self, id: &[u8; 32], session: &Session) -> Result<()> {
        put(&self.sessions, id, session)
    }

    async fn session(&self, id: &[u8; 32]) -> Result<Option<Session>> {
        get(&self.sessions, id)
    }

    async fn delete_session(&self, id: &[u8; 32]) -> Result<()> {
        self.sessions.remove(id)?;
        Ok(())
    }

    async fn put_code(&self, id: &[u8; 32], code: &AuthCode) -> Result<()> {
        put(&self.codes, id, code)
    }

    async fn use_code(
        &self,
        id: &[u8; 32],
        grant: &Grant,
        refresh: Option<(&[u8; 32], &RefreshToken)>,
    ) -> Result<CodeUse> {
        loop {
            let Some(raw) = self.codes.get(id)? else { return Ok(CodeUse::Unknown) };
            let mut code: AuthCode = decode(&raw)?;
            if code.used {
                self.revoke_grant_now(&code.grant_id)?;
                return Ok(CodeUse::Replayed);
            }
            put(&self.grants, &uuid_key(&code.grant_id), grant)?;
            if let Some((rid, rt)) = refresh {
                put(&self.refresh_tokens, rid, rt)?;
            }
            code.used = true;
            if self.codes.compare_and_swap(id, Some(&raw), Some(encode(&code)?))?.is_ok() {
                return Ok(CodeUse::Redeemed(Box::new(code)));
            }
            // Another request spent it first: this token was never handed out, and the
            // next round revokes the grant (also undoing this round's write of it).
            if let Some((rid, _)) = refresh {
                self.refresh_tokens.remove(rid)?;
            }
        }
    }

    async fn code(&self, id: &[u8; 32]) -> Result<Option<AuthCode>> {
        get(&self.codes, id)
    }

    async fn grant(&self, id: &Uuid) -> Result<Option<Grant>> {
        get(&self.grants, &uuid_key(id))
    }

    async fn revoke_grant(&self, id: &Uuid) -> Result<()> {
        self.revoke_grant_now(id)
    }

    async fn refresh_token(&self, id: &[u8; 32]) -> Result<Option<RefreshToken>> {
        get(&self.refresh_tokens, id)
    }

    /// Not rotated: the successor is written first, then a compare-and-swap marks `old`
    /// rotated (a crash in between leaves an unknown token and `old` still usable). Rotated
    /// and within the retry rule: see [`SledStore::retry_refresh`]. Otherwise reuse.
    async fn rotate_refresh(&self, old: &[u8; 32], new: &[u8; 32], rules: &RefreshRules) -> Result<RefreshUse> {
        loop {
            let Some(raw) = self.refresh_tokens.get(old)? else { return Ok(RefreshUse::Unknown) };
            let mut rt: RefreshToken = decode(&raw)?;
            let Some(grant) = get::<Grant>(&self.grants, &uuid_key(&rt.grant_id))? else {
                return Ok(RefreshUse::Unknown);
            };
            let live = !grant.revoked && rt.expires_at >= rules.now && grant.expires_at >= rules.now;
            if rt.rotated {
                if !in_retry_window(&rt, rules) {
                    self.revoke_grant_now(&rt.grant_id)?;
                    return Ok(RefreshUse::Reused);
                }
                if !live {
                    return Ok(RefreshUse::Revoked);
                }
                match self.retry_refresh(old, &raw, rt, new, rules)? {
                    Some(outcome) => return Ok(outcome),
                    None => continue,
                }
            }
            if !live {
                return Ok(RefreshUse::Revoked);
            }
            let next = successor_of(&rt, rules);
            put(&self.refresh_tokens, new, &next)?;
            rt.rotated = true;
            rt.rotated_at_ms = rules.now_ms;
            rt.successor = Some(*new);
            if self.refresh_tokens.compare_and_swap(old, Some(&raw), Some(encode(&rt)?))?.is_ok() {
                return Ok(RefreshUse::Rotated(Box::new(next)));
            }
            // Another request rotated it first: the next round sees a reuse (or a retry).
            self.refresh_tokens.remove(new)?;
        }
    }

    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<()> {
        put(&self.revoked_jti, jti.as_bytes(), &exp)
    }

    async fn jti_revoked(&self, jti: &str) -> Result<bool> {
        Ok(self.revoked_jti.contains_key(jti.as_bytes())?)
    }
}

#[async_trait::async_trait]
impl api::KeyStore for SledStore {
    async fn key_metas(&self) -> Result<Vec<KeyMeta>> {
        self.keys.iter().values().map(|v| decode(&v?)).collect()
    }

    async fn put_key_meta(&self, meta: &KeyMeta) -> Result<()> {
        put(&self.keys, meta.kid.as_bytes(), meta)?;
        let _ = self.changes.send(Change::Keys);
        Ok(())
    }

    async fn put_key_sealed(&self, meta: &KeyMeta, sealed: &[u8]) -> Result<()> {
        // The sealed key first: metadata without its key would be a key nobody can load.
        self.key_sealed.insert(meta.kid.as_bytes(), sealed)?;
        self.put_key_meta_only(meta)
    }

    async fn key_sealed(&self, kid: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.key_sealed.get(kid.as_bytes())?.map(|v| v.to_vec()))
    }

    async fn delete_key_meta(&self, kid: &str) -> Result<()> {
        self.keys.remove(kid.as_bytes())?;
        self.key_sealed.remove(kid.as_bytes())?;
        let _ = self.changes.send(Change::Keys);
        Ok(())
    }
}

/// Whether a rotated token presented again may be the one retry of a client that lost the
/// answer: the window is open, it is not too soon (copies presented at once are concurrent
/// uses, never a retry), the retry is unspent and the token names its successor. Whether
/// that successor was used is decided against the successor record itself.
fn in_retry_window(rt: &RefreshToken, rules: &RefreshRules) -> bool {
    let since = rules.now_ms.saturating_sub(rt.rotated_at_ms);
    rules.grace_secs > 0
        && !rt.retried
        && rt.successor.is_some()
        && since >= rules.retry_after_ms
        && since <= rules.grace_secs.saturating_mul(1000)
}

/// The token that replaces `rt`: same family and authentication, a fresh life, not rotated.
fn successor_of(rt: &RefreshToken, rules: &RefreshRules) -> RefreshToken {
    RefreshToken {
        issued_at: rules.now,
        expires_at: rules.now + rules.life_secs,
        rotated: false,
        rotated_at_ms: 0,
        successor: None,
        retried: false,
        ..rt.clone()
    }
}

/// How many of the index entries to evict still have their sign-in (only those free room).
fn live(evict: &[(Vec<u8>, bool)]) -> usize {
    evict.iter().filter(|(_, stored)| *stored).count()
}

impl SledStore {
    fn put_key_meta_only(&self, meta: &KeyMeta) -> Result<()> {
        put(&self.keys, meta.kid.as_bytes(), meta)?;
        let _ = self.changes.send(Change::Keys);
        Ok(())
    }

    /// The browser's oldest index entries that must go for one more to fit its cap of
    /// `per_browser`, each with whether its sign-in is still stored (an entry whose sign-in
    /// is gone is a crash leftover: removing it frees no room).
    fn browser_excess(&self, browser: &[u8; 32], per_browser: usize) -> Result<Vec<(Vec<u8>, bool)>> {
        let mut mine: Vec<(u64, Vec<u8>)> = Vec::new();
        for item in self.signin_browser.scan_prefix(browser) {
            let (k, v) = item?;
            let seq = <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes).unwrap_or(0);
            mine.push((seq, k.to_vec()));
        }
        let excess = (mine.len() + 1).saturating_sub(per_browser);
        mine.sort();
        let mut out = Vec::with_capacity(excess);
        for (_, k) in mine.into_iter().take(excess) {
            let stored = match k.get(32..) {
                Some(id) => self.signins.contains_key(id)?,
                None => false,
            };
            out.push((k, stored));
        }
        Ok(out)
    }

    fn store_signin(&self, id: &[u8; 32], signin: &SignIn) -> Result<()> {
        if self.signins.insert(id, encode(signin)?)?.is_none() {
            self.signin_count.fetch_add(1, Ordering::SeqCst);
            let seq = self.db.generate_id()?;
            self.signin_browser.insert(browser_key(&signin.browser, id), &seq.to_be_bytes())?;
        }
        Ok(())
    }

    /// The one retry of the rotated token `old` (read as `raw`, decoded as `rt`, inside the
    /// retry window): the fresh successor `new` replaces the unused one. `None` when a record
    /// changed under it (the caller reads again and decides anew).
    ///
    /// Each write below is safe to stop after (a crash: sled recovers a prefix of its log,
    /// and the handler flushes before it answers, so `new` reaches nobody before all three
    /// are durable):
    /// 1. `new` is written: a token nobody knows yet.
    /// 2. The unused successor is removed by compare-and-swap against the copy read here.
    ///    That decides against the successor's own rotation running at the same time: if it
    ///    was used first this is reuse after all (family revoked); if the removal wins, that
    ///    rotation finds no token. Stopping here leaves `old` with its retry unspent and no
    ///    successor: the retired token is dead as it would be after the retry, and the client,
    ///    which got no answer, may retry once more. This is why a successor that is gone
    ///    counts as unused: a used successor stays stored (rotated) until it expires, so
    ///    only this step (or expiry, days after the window closed) removes one.
    /// 3. `old` is marked retried, naming `new`, by compare-and-swap: of two retries at once
    ///    only one gets here first, the other finds the retry spent (reuse).
    ///
    /// So there are never two usable successors that anyone holds: the one handed out before
    /// is gone before `old` names another, and a thief replaying `old` afterwards is reuse.
    fn retry_refresh(
        &self,
        old: &[u8; 32],
        raw: &sled::IVec,
        mut rt: RefreshToken,
        new: &[u8; 32],
        rules: &RefreshRules,
    ) -> Result<Option<RefreshUse>> {
        let Some(unused) = rt.successor else {
            // Not reached (the window needs a successor); were it, nothing proves a lost answer.
            self.revoke_grant_now(&rt.grant_id)?;
            return Ok(Some(RefreshUse::Reused));
        };
        let next = successor_of(&rt, rules);
        put(&self.refresh_tokens, new, &next)?;
        if let Some(succ_raw) = self.refresh_tokens.get(unused)? {
            let succ: RefreshToken = decode(&succ_raw)?;
            if succ.rotated || succ.grant_id != rt.grant_id {
                // The successor was used: the previous token coming back now is theft.
                self.refresh_tokens.remove(new)?;
                self.revoke_grant_now(&rt.grant_id)?;
                return Ok(Some(RefreshUse::Reused));
            }
            if self.refresh_tokens.compare_and_swap(unused, Some(&succ_raw), None as Option<&[u8]>)?.is_err() {
                self.refresh_tokens.remove(new)?;
                return Ok(None);
            }
        }
        rt.successor = Some(*new);
        rt.retried = true;
        if self.refresh_tokens.compare_and_swap(old, Some(raw), Some(encode(&rt)?))?.is_ok() {
            return Ok(Some(RefreshUse::Retried(Box::new(next))));
        }
        self.refresh_tokens.remove(new)?;
        Ok(None)
    }

    fn revoke_grant_now(&self, id: &Uuid) -> Result<()> {
        update(&self.grants, &uuid_key(id), |g: &mut Grant| g.revoked = true)?;
        Ok(())
    }

    /// Removes one sign-in and its index entry; whether it was there.
    fn remove_signin(&self, id: &[u8]) -> Result<bool> {
        let Some(raw) = self.signins.remove(id)? else { return Ok(false) };
        self.count_removed();
        if let Ok(s) = decode::<SignIn>(&raw) {
            self.signin_browser.remove(browser_key(&s.browser, id))?;
        }
        Ok(true)
    }

    fn count_removed(&self) {
        let _ = self.signin_count.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| Some(c.saturating_sub(1)));
    }

    /// Removes expired sign-ins (only if unchanged since read) and index entries whose
    /// sign-in is gone (a crash between the two writes).
    pub(super) fn sweep_signins(&self, now: i64) -> Result<usize> {
        let mut removed = 0;
        for item in self.signins.iter() {
            let (k, v) = item?;
            // An unreadable record is kept for inspection rather than silently dropped.
            let Ok(rec) = decode::<SignIn>(&v) else { continue };
            if rec.expires_at < now && self.signins.compare_and_swap(&k, Some(&v), None as Option<&[u8]>)?.is_ok() {
                self.count_removed();
                self.signin_browser.remove(browser_key(&rec.browser, &k))?;
                removed += 1;
            }
        }
        for item in self.signin_browser.iter() {
            let (k, _) = item?;
            if k.get(32..).is_none_or(|id| !self.signins.contains_key(id).unwrap_or(true)) {
                self.signin_browser.remove(k)?;
            }
        }
        Ok(removed)
    }

    /// A full store sweeps expired sign-ins before refusing, at most once a minute.
    fn sweep_signins_early(&self, now: i64) -> Result<()> {
        let last = self.signin_sweep_at.load(Ordering::SeqCst);
        if now - last >= 60
            && self.signin_sweep_at.compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        {
            self.sweep_signins(now)?;
        }
        Ok(())
    }
}
