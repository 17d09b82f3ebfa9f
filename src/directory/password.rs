//! argon2id password hashing, always off the async threads.
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::Argon2Params;

fn hasher(p: &Argon2Params) -> Result<Argon2<'static>, argon2::Error> {
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(p.memory_kib, p.iterations, p.parallelism, None)?))
}

pub fn hash(password: &str, p: &Argon2Params) -> Result<String, String> {
    let salt = SaltString::encode_b64(&crate::secrets::random_bytes::<16>()).map_err(|e| e.to_string())?;
    hasher(p)
        .map_err(|e| e.to_string())?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies against `stored`, or against a dummy hash with the same cost when there
/// is no user, so an unknown login takes as long as a wrong password.
pub fn verify(password: &str, stored: Option<&str>, dummy: &str, p: &Argon2Params) -> bool {
    let Ok(argon) = hasher(p) else { return false };
    let (target, real) = match stored {
        Some(s) => (s, true),
        None => (dummy, false),
    };
    let Ok(parsed) = PasswordHash::new(target) else { return false };
    argon.verify_password(password.as_bytes(), &parsed).is_ok() && real
}

/// Hashes in a blocking thread so argon2 never stalls the HTTP workers.
pub async fn hash_blocking(password: String, p: Argon2Params) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash(&password, &p)).await.map_err(|e| e.to_string())?
}

pub async fn verify_blocking(password: String, stored: Option<String>, dummy: String, p: Argon2Params) -> bool {
    tokio::task::spawn_blocking(move || verify(&password, stored.as_deref(), &dummy, &p)).await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_unknown_users_fail() {
        let p = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
        let h = hash("correct horse", &p).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&h), &h, &p));
        assert!(!verify("wrong", Some(&h), &h, &p));
        assert!(!verify("correct horse", None, &h, &p));
    }
}
