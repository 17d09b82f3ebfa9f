//! Signing keys: metadata in the store; the private keys either in PEM files in the keys
//! dir (mode 0600, the embedded default) or, on a shared database, in the store sealed
//! under the key-encryption key ([`KeyVault`]). Parsed into ready signers at start and
//! again whenever the store says the keys changed (a rotation on any node), so every node
//! serves the new JWKS without a restart. JWTs are assembled here so that the private key
//! is never re-parsed per token.
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{KeyMeta, SigningAlg};
use crate::secrets::b64url;
use crate::storage::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("keys dir {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("key {0}: {1}")]
    Bad(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

struct LoadedKey {
    meta: KeyMeta,
    pair: Pair,
    header_b64: String,
    /// RFC 9068 header for access tokens.
    header_at_b64: String,
    decoding: DecodingKey,
    jwk: serde_json::Value,
}

/// One loaded set of keys and its JWKS document.
struct Ring {
    keys: Vec<LoadedKey>,
    jwks: std::sync::Arc<str>,
}

/// The signing keys of this instance: replaced as a whole when the keys change.
pub struct KeyRing {
    ring: std::sync::RwLock<std::sync::Arc<Ring>>,
    vault: KeyVault,
    rng: SystemRandom,
    verified: Verified,
}

/// Tokens whose signature this instance has verified, by the SHA-256 of the whole token
/// (only the exact bytes hit): resource servers present one access token on every call, and
/// its ES256 check was most of userinfo's and introspection's cost. A hit skips only the
/// signature: the key must still be in the ring and the type the one asked for, the expiry
/// is checked again, and the caller's checks after the signature (issuer, revocation, the
/// grant and the user) all run as on a miss. Bounded: past `VERIFIED_MAX` entries the
/// expired go, then everything.
#[derive(Default)]
struct Verified(std::sync::Mutex<std::collections::HashMap<[u8; 32], VerifiedToken>>);

const VERIFIED_MAX: usize = 4096;

struct VerifiedToken {
    kid: String,
    typ: TokenType,
    exp: Option<i64>,
    /// The payload's JSON, as signed.
    payload: std::sync::Arc<[u8]>,
}

impl Verified {
    fn get(&self, digest: &[u8; 32], typ: TokenType) -> Option<(String, Option<i64>, std::sync::Arc<[u8]>)> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(digest).filter(|t| t.typ == typ).map(|t| (t.kid.clone(), t.exp, t.payload.clone()))
    }

    fn put(&self, digest: [u8; 32], token: VerifiedToken, now: i64) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= VERIFIED_MAX {
            map.retain(|_, t| t.exp.is_some_and(|e| e > now));
            if map.len() >= VERIFIED_MAX {
                map.clear();
            }
        }
        map.insert(digest, token);
    }
}

/// Where the private keys live.
pub enum KeyVault {
    /// PEM files in this directory (one process: the embedded store).
    Files(PathBuf),
    /// In the store, sealed under the key-encryption key (every node reads the same keys).
    Sealed(std::sync::Arc<crate::secrets::Kek>),
}

impl KeyVault {
    /// Sealed in the store on a shared database (the configuration requires a key-encryption
    /// key there), else files in the keys dir.
    pub fn from_config(config: &crate::config::Config) -> Result<Self, KeyError> {
        match (&config.database_url, &config.key_encryption_key) {
            (Some(_), Some(k)) => Ok(Self::Sealed(std::sync::Arc::new(
                crate::secrets::Kek::parse(k.expose()).map_err(|e| KeyError::Bad("key_encryption_key".into(), e))?,
            ))),
            (Some(_), None) => Err(KeyError::Bad("key_encryption_key".into(), "required with database_url".into())),
            (None, _) => Ok(Self::Files(config.keys_dir())),
        }
    }

    /// Seals a private key read from a PEM file for the store (`store copy` to a database).
    pub fn seal_file(kek: &crate::secrets::Kek, dir: &Path, meta: &KeyMeta) -> Result<Vec<u8>, KeyError> {
        let path = file_for(dir, meta);
        let text = std::fs::read_to_string(&path).map_err(|e| KeyError::Io(path.clone(), e))?;
        let der = pem::parse(&text).map_err(|e| KeyError::Bad(meta.kid.clone(), e.to_string()))?;
        kek.seal(&Self::sealed_name(&meta.kid), der.contents()).map_err(|e| KeyError::Bad(meta.kid.clone(), e))
    }

    fn sealed_name(kid: &str) -> String {
        format!("signing-key:{kid}")
    }

    /// Keeps a new private key and records its metadata.
    async fn keep(&self, store: &Store, meta: &KeyMeta, der: Vec<u8>) -> Result<(), KeyError> {
        match self {
            Self::Files(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| KeyError::Io(dir.to_path_buf(), e))?;
                let path = file_for(dir, meta);
                let text = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
                write_private(&path, &text).map_err(|e| KeyError::Io(path.clone(), e))?;
                store.put_key_meta(meta).await?;
            }
            Self::Sealed(kek) => {
                let sealed =
                    kek.seal(&Self::sealed_name(&meta.kid), &der).map_err(|e| KeyError::Bad(meta.kid.clone(), e))?;
                store.put_key_sealed(meta, &sealed).await?;
            }
        }
        Ok(())
    }

    /// The PKCS#8 DER of a key.
    async fn private(&self, store: &Store, meta: &KeyMeta) -> Result<Vec<u8>, KeyError> {
        match self {
            Self::Files(dir) => {
                let path = file_for(dir, meta);
                let text = std::fs::read_to_string(&path).map_err(|e| KeyError::Io(path.clone(), e))?;
                let der = pem::parse(&text).map_err(|e| KeyError::Bad(meta.kid.clone(), e.to_string()))?;
                Ok(der.contents().to_vec())
            }
            Self::Sealed(kek) => {
                let sealed = store
                    .key_sealed(&meta.kid)
                    .await?
                    .ok_or_else(|| KeyError::Bad(meta.kid.clone(), "its private key is not in the store".into()))?;
                kek.open(&Self::sealed_name(&meta.kid), &sealed).map_err(|e| KeyError::Bad(meta.kid.clone(), e))
            }
        }
    }

    async fn remove(&self, store: &Store, meta: &KeyMeta) -> Result<(), KeyError> {
        store.delete_key_meta(&meta.kid).await?;
        if let Self::Files(dir) = self {
            let _ = std::fs::remove_file(file_for(dir, meta));
        }
        Ok(())
    }
}

fn file_for(dir: &Path, meta: &KeyMeta) -> PathBuf {
    dir.join(format!("{}.{}.pem", meta.kid, meta.alg.as_str().to_ascii_lowercase()))
}

fn write_private(path: &Path, pem_text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(pem_text.as_bytes())?;
    f.sync_all()
}

fn generate(alg: SigningAlg, now: i64, activates_at: i64) -> Result<(KeyMeta, Vec<u8>), KeyError> {
    let der = match alg {
        SigningAlg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|e| KeyError::Bad("new ES256".into(), e.to_string()))?
                .as_ref()
                .to_vec()
        }
        SigningAlg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .and_then(|k| k.as_der().map(|d| d.as_ref().to_vec()))
            .map_err(|e| KeyError::Bad("new RS256".into(), e.to_string()))?,
    };
    let kid = b64url(&crate::secrets::sha256(&der)[..12]);
    Ok((KeyMeta { kid, alg, created_at: now, activates_at, retires_at: None }, der))
}

fn load(der: &[u8], meta: KeyMeta) -> Result<LoadedKey, KeyError> {
    let bad = |e: String| KeyError::Bad(meta.kid.clone(), e);
    let (pair, decoding, jwk) = match meta.alg {
        SigningAlg::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map_err(|e| bad(e.to_string()))?;
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(bad("unexpected EC public key".into()));
            }
            let (x, y) = (b64url(&point[1..33]), b64url(&point[33..65]));
            let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| bad(e.to_string()))?;
            let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y,
                "kid": meta.kid, "alg": "ES256", "use": "sig"});
            (Pair::Ec(pair), decoding, jwk)
        }
        SigningAlg::RS256 => {
            let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| bad(e.to_string()))?;
            let public = pair.public_key();
            let n = public.modulus().big_endian_without_leading_zero().to_vec();
            let e = public.exponent().big_endian_without_leading_zero().to_vec();
            let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
            let jwk = serde_json::json!({"kty": "RSA", "n": b64url(&n), "e": b64url(&e),
                "kid": meta.kid, "alg": "RS256", "use": "sig"});
            (Pair::Rsa(pair), decoding, jwk)
        }
    };
    let header = |typ: &str| {
        let h = serde_json::json!({"alg": meta.alg.as_str(), "typ": typ, "kid": meta.kid});
        b64url(h.to_string().as_bytes())
    };
    let (header_b64, header_at_b64) = (header("JWT"), header("at+jwt"));
    Ok(LoadedKey { meta, pair, header_b64, header_at_b64, decoding, jwk })
}

/// ID tokens carry `typ: JWT`, access tokens `typ: at+jwt` (RFC 9068), so one is never taken for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Id,
    Access,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("{0}")]
    Invalid(String),
}

/// The lock under which nodes starting together create the first keys (once).
const CREATE_LOCK: &str = "signing-keys";

impl KeyRing {
    /// Loads the keys recorded in the store, adopts PEM files the store does not know,
    /// generates an ES256 and an RS256 key when none exists, and drops retired keys.
    /// Under an instance-wide lock: nodes starting together on one database create one key
    /// of each algorithm.
    pub async fn load_or_create(store: &Store, vault: KeyVault, now: i64) -> Result<Self, KeyError> {
        let lock = store.hold_lock(CREATE_LOCK).await?;
        let mut metas = store.key_metas().await?;
        if let KeyVault::Files(dir) = &vault {
            adopt_unknown_files(dir, &mut metas, store, now).await?;
        }
        for alg in [SigningAlg::ES256, SigningAlg::RS256] {
            if !metas.iter().any(|m| m.alg == alg) {
                let (meta, der) = generate(alg, now, now)?;
                vault.keep(store, &meta, der).await?;
                metas.push(meta);
            }
        }
        for meta in metas.iter().filter(|m| m.retires_at.is_some_and(|t| t < now)) {
            vault.remove(store, meta).await?;
        }
        store.flush().await?;
        drop(lock);
        let ring = Ring::load(store, &vault, now).await?;
        Ok(Self {
            ring: std::sync::RwLock::new(std::sync::Arc::new(ring)),
            vault,
            rng: SystemRandom::new(),
            verified: Verified::default(),
        })
    }

    /// Reads the keys again (another node rotated): the new set replaces the old at once.
    /// On an error the old set stays.
    pub async fn reload(&self, store: &Store, now: i64) -> Result<(), KeyError> {
        let ring = Ring::load(store, &self.vault, now).await?;
        *self.ring.write().unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(ring);
        Ok(())
    }

    fn current(&self) -> std::sync::Arc<Ring> {
        self.ring.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// `gatehouse keys rotate`: a new key of `alg`, published at once, signing after `grace`.
    /// The current key retires once tokens it signed have expired. Every node picks it up
    /// through the store's change notices.
    pub async fn rotate(
        store: &Store,
        vault: &KeyVault,
        alg: SigningAlg,
        now: i64,
        grace: i64,
        max_token_life: i64,
    ) -> Result<KeyMeta, KeyError> {
        let _lock = store.hold_lock(CREATE_LOCK).await?;
        let (meta, der) = generate(alg, now, now + grace)?;
        // The new key first: a crash in between leaves two published keys, never none.
        vault.keep(store, &meta, der).await?;
        for mut old in store.key_metas().await? {
            if old.alg == alg && old.retires_at.is_none() && old.kid != meta.kid {
                old.retires_at = Some(meta.activates_at + max_token_life);
                store.put_key_meta(&old).await?;
            }
        }
        store.flush().await?;
        Ok(meta)
    }

    pub fn jwks_json(&self) -> std::sync::Arc<str> {
        self.current().jwks.clone()
    }

    pub fn metas(&self) -> Vec<KeyMeta> {
        self.current().keys.iter().map(|k| k.meta.clone()).collect()
    }
}

impl Ring {
    /// The keys the store lists (retired ones past their date left out), sorted.
    async fn load(store: &Store, vault: &KeyVault, now: i64) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for meta in store.key_metas().await? {
            if meta.retires_at.is_some_and(|t| t < now) {
                continue;
            }
            let der = vault.private(store, &meta).await?;
            keys.push(load(&der, meta)?);
        }
        keys.sort_by(|a, b| {
            (a.meta.activates_at, a.meta.alg.as_str(), &a.meta.kid).cmp(&(
                b.meta.activates_at,
                b.meta.alg.as_str(),
                &b.meta.kid,
            ))
        });
        let jwks = serde_json::json!({"keys": keys.iter().map(|k| &k.jwk).collect::<Vec<_>>()}).to_string();
        Ok(Self { keys, jwks: jwks.into() })
    }

    fn signing_key(&self, alg: SigningAlg, now: i64) -> Option<&LoadedKey> {
        // Among the keys of `alg` whose activation time has come, one that no rotation has
        // superseded (no retirement date) wins; then the latest to activate.
        self.keys
            .iter()
            .filter(|k| k.meta.alg == alg && k.meta.activates_at <= now)
            .max_by_key(|k| (k.meta.retires_at.is_none(), k.meta.activates_at, k.meta.created_at))
    }
}

impl KeyRing {
    /// Signs claims as a compact JWS with the active key of `alg`.
    pub fn sign<T: Serialize>(&self, alg: SigningAlg, typ: TokenType, now: i64, claims: &T) -> Result<String, String> {
        let ring = self.current();
        let key = ring.signing_key(alg, now).ok_or("no active signing key")?;
        let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let header = match typ {
            TokenType::Id => &key.header_b64,
            TokenType::Access => &key.header_at_b64,
        };
        let mut out = String::with_capacity(header.len() + payload.len() * 4 / 3 + 100);
        out.push_str(header);
        out.push('.');
        out.push_str(&b64url(&payload));
        let sig = match &key.pair {
            Pair::Ec(p) => p.sign(&self.rng, out.as_bytes()).map_err(|e| e.to_string())?.as_ref().to_vec(),
            Pair::Rsa(p) => {
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(&signature::RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig).map_err(|e| e.to_string())?;
                sig
            }
        };
        out.push('.');
        out.push_str(&b64url(&sig));
        Ok(out)
    }

    /// Verifies a JWT we signed (any published key) and decodes its claims.
    /// `exp` is checked against `now`; audience and issuer are the caller's to check.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: TokenType,
        now: i64,
        check_exp: bool,
    ) -> Result<T, VerifyError> {
        let digest = crate::secrets::sha256(token.as_bytes());
        if let Some((kid, exp, payload)) = self.verified.get(&digest, typ)
            && self.current().keys.iter().any(|k| k.meta.kid == kid)
        {
            if check_exp && exp.is_none_or(|e| e <= now) {
                return Err(VerifyError::Invalid("expired".into()));
            }
            return serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let expected_typ = match typ {
            TokenType::Id => "JWT",
            TokenType::Access => "at+jwt",
        };
        if header.typ.as_deref() != Some(expected_typ) {
            return Err(VerifyError::Invalid("wrong token type".into()));
        }
        let kid = header.kid.ok_or(VerifyError::Malformed)?;
        let ring = self.current();
        let key = ring.keys.iter().find(|k| k.meta.kid == kid).ok_or(VerifyError::UnknownKey)?;
        let alg = match key.meta.alg {
            SigningAlg::ES256 => Algorithm::ES256,
            SigningAlg::RS256 => Algorithm::RS256,
        };
        if header.alg != alg {
            return Err(VerifyError::Invalid("algorithm mismatch".into()));
        }
        let mut v = Validation::new(alg);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &v)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let exp = data.claims.get("exp").and_then(|e| e.as_i64());
        if check_exp && exp.is_none_or(|e| e <= now) {
            return Err(if exp.is_none() { VerifyError::Malformed } else { VerifyError::Invalid("expired".into()) });
        }
        // The signed payload exactly (the signature covers these bytes).
        let payload = token.split('.').nth(1).and_then(crate::secrets::b64url_decode).ok_or(VerifyError::Malformed)?;
        let claims = serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed)?;
        self.verified.put(digest, VerifiedToken { kid, typ, exp, payload: payload.into() }, now);
        Ok(claims)
    }
}

async fn adopt_unknown_files(dir: &Path, metas: &mut Vec<KeyMeta>, store: &Store, now: i64) -> Result<(), KeyError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".pem") else { continue };
        let Some((kid, alg)) = stem.rsplit_once('.') else { continue };
        let alg = match alg {
            "es256" => SigningAlg::ES256,
            "rs256" => SigningAlg::RS256,
            _ => continue,
        };
        if metas.iter().any(|m| m.kid == kid) {
            continue;
        }
        let meta = KeyMeta { kid: kid.to_string(), alg, created_at: now, activates_at: now, retires_at: None };
        store.put_key_meta(&meta).await?;
        metas.push(meta);
    }
    // Several adopted keys of one algorithm: only the newest file signs, the rest retire.
    Ok(())
}
