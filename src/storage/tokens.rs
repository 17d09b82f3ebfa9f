//! Sign-in transactions, sessions, codes, grants, refresh tokens, revoked token ids, key metadata.
//! Every key here that derives from a bearer secret is the secret's SHA-256.
use uuid::Uuid;

use super::{Result, Store, decode, encode, get, put, update, uuid_key};
use crate::oidc::keys::KeyMeta;
use crate::oidc::model::{AuthCode, Grant, RefreshToken, Session, SignIn};

/// Outcome of presenting an authorization code.
pub enum CodeUse {
    /// First use: the code is now spent; the grant and refresh token (if any) are stored.
    Redeemed(Box<AuthCode>),
    /// The code was already used; the grant it opened has been revoked.
    Replayed,
    Unknown,
}

/// Outcome of presenting a refresh token.
pub enum RefreshUse {
    Rotated(Box<RefreshToken>),
    /// A rotated token came back: the whole family is revoked now.
    Reused,
    Revoked,
    Unknown,
}

impl Store {
    pub fn put_signin(&self, id: &[u8; 32], signin: &SignIn) -> Result<()> {
        put(&self.signins, id, signin)
    }
    pub fn signin(&self, id: &[u8; 32]) -> Result<Option<SignIn>> {
        get(&self.signins, id)
    }
    /// Read-modify-write of a sign-in by compare-and-swap: one winner per change, so
    /// concurrent attempts on its counters are all counted.
    pub fn update_signin<R>(&self, id: &[u8; 32], f: impl FnMut(&mut SignIn) -> R) -> Result<Option<(SignIn, R)>> {
        update(&self.signins, id, f)
    }
    pub fn delete_signin(&self, id: &[u8; 32]) -> Result<()> {
        self.signins.remove(id)?;
        Ok(())
    }

    pub fn put_session(&self, id: &[u8; 32], session: &Session) -> Result<()> {
        put(&self.sessions, id, session)
    }
    pub fn session(&self, id: &[u8; 32]) -> Result<Option<Session>> {
        get(&self.sessions, id)
    }
    pub fn delete_session(&self, id: &[u8; 32]) -> Result<()> {
        self.sessions.remove(id)?;
        Ok(())
    }

    pub fn put_code(&self, id: &[u8; 32], code: &AuthCode) -> Result<()> {
        put(&self.codes, id, code)
    }

    /// Spends a code. On first use stores the grant and the first refresh token of its
    /// family; on a replay revokes that grant. The grant and token are written before the
    /// code is marked used (by compare-and-swap, which decides between concurrent uses): a
    /// crash in between leaves the code unspent and the token unknown to anyone.
    pub fn use_code(
        &self,
        id: &[u8; 32],
        grant: &Grant,
        refresh: Option<(&[u8; 32], &RefreshToken)>,
    ) -> Result<CodeUse> {
        loop {
            let Some(raw) = self.codes.get(id)? else { return Ok(CodeUse::Unknown) };
            let mut code: AuthCode = decode(&raw)?;
            if code.used {
                self.revoke_grant(&code.grant_id)?;
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

    pub fn code(&self, id: &[u8; 32]) -> Result<Option<AuthCode>> {
        get(&self.codes, id)
    }

    pub fn grant(&self, id: &Uuid) -> Result<Option<Grant>> {
        get(&self.grants, &uuid_key(id))
    }

    pub fn revoke_grant(&self, id: &Uuid) -> Result<()> {
        update(&self.grants, &uuid_key(id), |g: &mut Grant| g.revoked = true)?;
        Ok(())
    }

    pub fn refresh_token(&self, id: &[u8; 32]) -> Result<Option<RefreshToken>> {
        get(&self.refresh_tokens, id)
    }

    /// Rotates `old` to `new`; `make_new` builds the new token from the old. The new token
    /// is written first and the old one then marked rotated by compare-and-swap, which
    /// decides between concurrent uses: a crash in between leaves the old token usable.
    pub fn rotate_refresh(
        &self,
        old: &[u8; 32],
        new: &[u8; 32],
        now: i64,
        make_new: impl Fn(&RefreshToken) -> RefreshToken,
    ) -> Result<RefreshUse> {
        loop {
            let Some(raw) = self.refresh_tokens.get(old)? else { return Ok(RefreshUse::Unknown) };
            let mut rt: RefreshToken = decode(&raw)?;
            let Some(grant) = self.grant(&rt.grant_id)? else { return Ok(RefreshUse::Unknown) };
            if rt.rotated {
                self.revoke_grant(&rt.grant_id)?;
                return Ok(RefreshUse::Reused);
            }
            if grant.revoked || rt.expires_at < now || grant.expires_at < now {
                return Ok(RefreshUse::Revoked);
            }
            let next = make_new(&rt);
            put(&self.refresh_tokens, new, &next)?;
            rt.rotated = true;
            if self.refresh_tokens.compare_and_swap(old, Some(&raw), Some(encode(&rt)?))?.is_ok() {
                return Ok(RefreshUse::Rotated(Box::new(next)));
            }
            // Another request rotated it first: the next round sees a reuse.
            self.refresh_tokens.remove(new)?;
        }
    }

    pub fn revoke_jti(&self, jti: &str, exp: i64) -> Result<()> {
        put(&self.revoked_jti, jti.as_bytes(), &exp)
    }

    pub fn jti_revoked(&self, jti: &str) -> Result<bool> {
        Ok(self.revoked_jti.contains_key(jti.as_bytes())?)
    }

    pub fn key_metas(&self) -> Result<Vec<KeyMeta>> {
        self.keys.iter().values().map(|v| decode(&v?)).collect()
    }

    pub fn put_key_meta(&self, meta: &KeyMeta) -> Result<()> {
        put(&self.keys, meta.kid.as_bytes(), meta)
    }

    pub fn delete_key_meta(&self, kid: &str) -> Result<()> {
        self.keys.remove(kid.as_bytes())?;
        Ok(())
    }
}
