//! Random bearer secrets, their digests and constant-time comparison.
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use subtle::ConstantTimeEq;

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rng().fill_bytes(&mut buf);
    buf
}

/// A new bearer secret with 256 bits of randomness, base64url.
pub fn new_token() -> String {
    b64url(&random_bytes::<32>())
}

/// SHA-256 of a bearer secret: what the store keeps instead of the secret.
/// The secrets have >= 128 bits of randomness, so a fast digest is enough.
pub fn digest(secret: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn digest_hex(secret: &str) -> String {
    digest(secret).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HMAC-SHA256 keyed by the instance secret.
pub fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let tag = ctx.sign();
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// A secret that never shows itself in `Debug` output or logs.
#[derive(Clone, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_differ_and_compare_in_constant_time() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(ct_eq(&digest(&a), &digest(&a)));
        assert!(!ct_eq(&digest(&a), &digest(&b)));
        assert!(!ct_eq(b"ab", b"abc"));
    }

    #[test]
    fn secret_debug_hides_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}

/// A key that seals secrets the store must keep but never show in clear (TOTP seeds):
/// AES-256-GCM, kept in a file beside the signing keys, outside the store, so a copy of
/// the store alone does not reveal them.
pub struct SealKey(aws_lc_rs::aead::LessSafeKey);

const SEALED_PREFIX: &str = "s1.";
const SEAL_AAD: &[u8] = b"gatehouse sealed secret v1";

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(REDACTED)")
    }
}

impl SealKey {
    pub fn new(bytes: &[u8; 32]) -> Result<Self, String> {
        let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, bytes).map_err(|e| e.to_string())?;
        Ok(Self(aws_lc_rs::aead::LessSafeKey::new(key)))
    }

    /// Reads the key file, or creates it (32 random bytes, mode 0600) when it is missing.
    pub fn load_or_create(path: &std::path::Path) -> Result<Self, String> {
        let shown = |e: std::io::Error| format!("{}: {e}", path.display());
        let bytes: [u8; 32] = match std::fs::read(path) {
            Ok(b) => b.try_into().map_err(|_| format!("{}: not a 32-byte key", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(shown)?;
                }
                let key = random_bytes::<32>();
                let mut f =
                    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(shown)?;
                f.write_all(&key).and_then(|()| f.sync_all()).map_err(shown)?;
                key
            }
            Err(e) => return Err(shown(e)),
        };
        Self::new(&bytes)
    }

    /// `s1.` + base64url(nonce ‖ ciphertext ‖ tag), a fresh random nonce each time.
    pub fn seal(&self, plain: &str) -> String {
        let nonce = random_bytes::<12>();
        let mut data = plain.as_bytes().to_vec();
        let sealed = self.0.seal_in_place_append_tag(
            aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
            aws_lc_rs::aead::Aad::from(SEAL_AAD),
            &mut data,
        );
        match sealed {
            Ok(()) => format!("{SEALED_PREFIX}{}", b64url(&[&nonce[..], &data].concat())),
            // AES-GCM sealing of a short secret does not fail; never store it in clear if it did.
            Err(_) => String::new(),
        }
    }

    /// The clear value of `sealed`; a value without the prefix was stored before sealing
    /// existed and is returned as it is. `None` for a value this key did not seal.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let Some(body) = sealed.strip_prefix(SEALED_PREFIX) else { return Some(sealed.to_string()) };
        let raw = b64url_decode(body)?;
        if raw.len() < 12 {
            return None;
        }
        let (nonce, rest) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let mut data = rest.to_vec();
        let plain = self
            .0
            .open_in_place(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(SEAL_AAD),
                &mut data,
            )
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

#[cfg(test)]
mod seal_tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_their_key_only_and_never_show_the_clear_value() {
        let key = SealKey::new(&[7; 32]).unwrap();
        let sealed = key.seal("JBSWY3DPEHPK3PXP");
        assert!(sealed.starts_with("s1.") && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(sealed, key.seal("JBSWY3DPEHPK3PXP"), "a fresh nonce each time");
        assert_eq!(key.open(&sealed).as_deref(), Some("JBSWY3DPEHPK3PXP"));
        assert_eq!(SealKey::new(&[8; 32]).unwrap().open(&sealed), None, "another key");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(key.open(&tampered), None, "a changed value");
        assert_eq!(key.open("JBSWY3DPEHPK3PXP").as_deref(), Some("JBSWY3DPEHPK3PXP"), "stored before sealing");
    }
}

/// The key-encryption key (`key_encryption_key`): seals the private signing keys and the
/// TOTP seal key kept in a shared database (AES-256-GCM, a fresh nonce per value, the
/// value's name as associated data, so a sealed value cannot be moved to another name).
pub struct Kek(aws_lc_rs::aead::LessSafeKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(REDACTED)")
    }
}

impl Kek {
    /// From base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        use base64::Engine;
        let t = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(t)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')))
            .map_err(|_| "key_encryption_key must be base64 of 32 random bytes".to_string())?;
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|_| "key_encryption_key must be base64 of exactly 32 bytes".to_string())?;
        let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &bytes).map_err(|e| e.to_string())?;
        Ok(Self(aws_lc_rs::aead::LessSafeKey::new(key)))
    }

    /// nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>, String> {
        let nonce = random_bytes::<12>();
        let mut data = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(name.as_bytes()),
                &mut data,
            )
            .map_err(|_| "sealing failed".to_string())?;
        Ok([&nonce[..], &data].concat())
    }

    /// The clear bytes; an error for a value another key (or another name) sealed.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < 12 + 16 {
            return Err(format!("{name}: sealed value too short"));
        }
        let (nonce, rest) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| format!("{name}: bad nonce"))?;
        let mut data = rest.to_vec();
        let plain = self
            .0
            .open_in_place(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(name.as_bytes()),
                &mut data,
            )
            .map_err(|_| {
                format!("{name}: cannot be opened with this key_encryption_key (every node needs the same one)")
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod kek_tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_only_with_the_same_key_and_name() {
        let kek = Kek::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        let sealed = kek.seal("key:a", b"private").unwrap();
        assert_eq!(kek.open("key:a", &sealed).unwrap(), b"private");
        assert!(kek.open("key:b", &sealed).is_err(), "another name");
        let other = Kek::parse("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap();
        assert!(other.open("key:a", &sealed).is_err(), "another key");
        assert!(Kek::parse("c2hvcnQ=").is_err(), "too short");
    }
}

/// A TLS client configuration on aws-lc-rs that trusts the system's root certificates: for
/// the database and for HTTP clients (partners' identity providers, the admin CLI).
pub fn client_tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An HTTP client builder with TLS by [`client_tls_config`] (reqwest is built without a
/// crypto provider of its own: every client starts here).
pub fn http_client_builder() -> Result<reqwest::ClientBuilder, String> {
    let tls = client_tls_config().map_err(|e| format!("TLS: {e}"))?;
    Ok(reqwest::Client::builder().use_preconfigured_tls(tls))
}
