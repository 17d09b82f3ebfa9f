//! Sign-in transactions, sessions, codes, grants, refresh tokens, revoked token ids, key metadata.
//! Every key here that derives from a bearer secret is the secret's SHA-256.
use sled::Transactional;
use sled::transaction::ConflictableTransactionError as Abort;
use uuid::Uuid;

use super::{Result, Store, decode, encode, get, put, uuid_key};
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

    /// Spends a code atomically. On first use stores the grant and the first refresh
    /// token of its family; on a replay revokes that grant.
    pub fn use_code(
        &self,
        id: &[u8; 32],
        grant: &Grant,
        refresh: Option<(&[u8; 32], &RefreshToken)>,
    ) -> Result<CodeUse> {
        let out = (&self.codes, &self.grants, &self.refresh_tokens).transaction(|(codes, grants, rts)| {
            let Some(raw) = codes.get(id)? else { return Ok(CodeUse::Unknown) };
            let mut code: AuthCode = decode(&raw).map_err(Abort::Abort)?;
            let gkey = uuid_key(&code.grant_id);
            if code.used {
                if let Some(g) = grants.get(gkey)? {
                    let mut g: Grant = decode(&g).map_err(Abort::Abort)?;
                    g.revoked = true;
                    grants.insert(&gkey, encode(&g).map_err(Abort::Abort)?)?;
                }
                return Ok(CodeUse::Replayed);
            }
            code.used = true;
            codes.insert(id, encode(&code).map_err(Abort::Abort)?)?;
            grants.insert(&gkey, encode(grant).map_err(Abort::Abort)?)?;
            if let Some((rid, rt)) = refresh {
                rts.insert(rid, encode(rt).map_err(Abort::Abort)?)?;
            }
            Ok(CodeUse::Redeemed(Box::new(code)))
        });
        Ok(out?)
    }

    pub fn code(&self, id: &[u8; 32]) -> Result<Option<AuthCode>> {
        get(&self.codes, id)
    }

    pub fn grant(&self, id: &Uuid) -> Result<Option<Grant>> {
        get(&self.grants, &uuid_key(id))
    }

    pub fn revoke_grant(&self, id: &Uuid) -> Result<()> {
        if let Some(mut g) = self.grant(id)? {
            g.revoked = true;
            put(&self.grants, &uuid_key(id), &g)?;
        }
        Ok(())
    }

    pub fn refresh_token(&self, id: &[u8; 32]) -> Result<Option<RefreshToken>> {
        get(&self.refresh_tokens, id)
    }

    /// Rotates `old` to `new` atomically. `make_new` builds the new token from the old.
    pub fn rotate_refresh(
        &self,
        old: &[u8; 32],
        new: &[u8; 32],
        now: i64,
        make_new: impl Fn(&RefreshToken) -> RefreshToken,
    ) -> Result<RefreshUse> {
        let out = (&self.refresh_tokens, &self.grants).transaction(|(rts, grants)| {
            let Some(raw) = rts.get(old)? else { return Ok(RefreshUse::Unknown) };
            let mut rt: RefreshToken = decode(&raw).map_err(Abort::Abort)?;
            let gkey = uuid_key(&rt.grant_id);
            let Some(graw) = grants.get(gkey)? else { return Ok(RefreshUse::Unknown) };
            let mut grant: Grant = decode(&graw).map_err(Abort::Abort)?;
            if rt.rotated {
                grant.revoked = true;
                grants.insert(&gkey, encode(&grant).map_err(Abort::Abort)?)?;
                return Ok(RefreshUse::Reused);
            }
            if grant.revoked || rt.expires_at < now || grant.expires_at < now {
                return Ok(RefreshUse::Revoked);
            }
            rt.rotated = true;
            rts.insert(old, encode(&rt).map_err(Abort::Abort)?)?;
            let next = make_new(&rt);
            rts.insert(new, encode(&next).map_err(Abort::Abort)?)?;
            Ok(RefreshUse::Rotated(Box::new(next)))
        });
        Ok(out?)
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
