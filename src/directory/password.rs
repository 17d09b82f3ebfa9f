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

type Job = Box<dyn FnOnce() + Send>;
type Queue = std::sync::Mutex<std::sync::mpsc::Sender<Job>>;

/// argon2 runs on its own threads, one per core: more hashes in flight would only queue,
/// and each thread reuses its allocator arena for the memory blocks (19 MiB by default), so
/// memory stays near cores × m instead of growing with tokio's blocking pool.
fn pool() -> Option<&'static Queue> {
    static POOL: std::sync::OnceLock<Option<Queue>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                loop {
                    // The lock is held only while taking a job, not while running it.
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if spawned.is_err() {
                return None;
            }
        }
        Some(std::sync::Mutex::new(tx))
    })
    .as_ref()
}

async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    let pool = pool().ok_or("no argon2 threads")?;
    pool.lock().map_err(|e| e.to_string())?.send(job).map_err(|e| e.to_string())?;
    rx.await.map_err(|e| e.to_string())
}

/// Hashes off the async threads so argon2 never stalls the HTTP workers.
pub async fn hash_blocking(password: String, p: Argon2Params) -> Result<String, String> {
    run(move || hash(&password, &p)).await?
}

pub async fn verify_blocking(password: String, stored: Option<String>, dummy: String, p: Argon2Params) -> bool {
    run(move || verify(&password, stored.as_deref(), &dummy, &p)).await.unwrap_or(false)
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
