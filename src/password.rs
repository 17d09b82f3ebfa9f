//! argon2id password hashing, always off the async threads.
use std::cell::RefCell;

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::Argon2Params;

thread_local! {
    /// On the argon2 threads: the memory blocks (19 MiB by default), allocated once and
    /// reused, so a hash never allocates and the allocator never keeps freed blocks around.
    static BLOCKS: RefCell<Option<Vec<Block>>> = const { RefCell::new(None) };
}

/// The raw argon2 output for `password` and the PHC `salt` into `out`: in this thread's
/// blocks on the argon2 threads, in blocks allocated for this call elsewhere (start-up, seeding).
fn raw_hash(argon: &Argon2, password: &[u8], salt: Salt, out: &mut [u8]) -> Result<(), String> {
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(|e| e.to_string())?;
    let needed = argon.params().block_count();
    BLOCKS
        .with_borrow_mut(|blocks| {
            let Some(blocks) = blocks else { return argon.hash_password_into(password, salt, out) };
            if blocks.len() < needed {
                blocks.resize(needed, Block::default());
            }
            argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..])
        })
        .map_err(|e| e.to_string())
}

/// While alive, every hash made on this thread (seeding many passwords) reuses one block
/// buffer, freed when the guard drops. Only a memory saving: a task that moves to another
/// thread in between just hashes with fresh memory there.
pub struct ReusedBlocks(Option<Vec<Block>>);

impl ReusedBlocks {
    pub fn start() -> Self {
        Self(BLOCKS.replace(Some(Vec::new())))
    }
}

impl Drop for ReusedBlocks {
    fn drop(&mut self) {
        BLOCKS.set(self.0.take());
    }
}

pub fn hash(password: &str, p: &Argon2Params) -> Result<String, String> {
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None).map_err(|e| e.to_string())?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::encode_b64(&crate::secrets::random_bytes::<16>()).map_err(|e| e.to_string())?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    raw_hash(&argon, password.as_bytes(), salt.as_salt(), &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` produces the PHC string `stored` (any argon2 variant and parameters).
fn matches(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else { return false };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) =
        (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let version = parsed.version.map(Version::try_from).transpose();
    let Ok(version) = version.map(Option::unwrap_or_default) else { return false };
    let argon = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        raw_hash(&argon, password.as_bytes(), salt, out).map_err(|_| argon2::password_hash::Error::Password)
    });
    // `Output`'s equality is constant-time.
    computed.is_ok_and(|c| c == expected)
}

/// Verifies against `stored`, or against a dummy hash with the same cost when there
/// is no user, so an unknown login takes as long as a wrong password.
pub fn verify(password: &str, stored: Option<&str>, dummy: &str) -> bool {
    match stored {
        Some(s) => matches(password, s),
        None => {
            matches(password, dummy);
            false
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;
type Queue = std::sync::Mutex<std::sync::mpsc::Sender<Job>>;

/// argon2 runs on its own threads, one per core: more hashes in flight would only queue,
/// and each thread keeps one block buffer (`BLOCKS`), so memory stays at cores × m
/// instead of growing with tokio's blocking pool.
fn pool() -> Option<&'static Queue> {
    static POOL: std::sync::OnceLock<Option<Queue>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                BLOCKS.set(Some(Vec::new()));
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

/// Longest password accepted (Entra's limit).
pub const PASSWORD_MAX: usize = 256;

/// Entra's password rule for members: 8 to 256 characters with three of lower case, upper
/// case, digits and symbols. `None` when `p` meets it, else what is wrong, in words.
pub fn policy_problem(p: &str) -> Option<&'static str> {
    let n = p.chars().count();
    if n < 8 {
        return Some("A password has at least 8 characters.");
    }
    if n > PASSWORD_MAX {
        return Some("A password has at most 256 characters.");
    }
    if p.chars().any(char::is_control) {
        return Some("A password must not contain control characters.");
    }
    let classes = [
        p.chars().any(|c| c.is_lowercase()),
        p.chars().any(|c| c.is_uppercase()),
        p.chars().any(|c| c.is_ascii_digit()),
        p.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 3 {
        return Some("A password needs three of: lower case letters, upper case letters, digits, symbols.");
    }
    None
}

/// The argon2 threads (one per core).
pub fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
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

/// Unbounded: for callers that have no page to shed load on (the stub IdPs).
pub async fn verify_blocking(password: String, stored: Option<String>, dummy: String) -> bool {
    run(move || verify(&password, stored.as_deref(), &dummy)).await.unwrap_or(false)
}

/// The sign-in page's password checks: at most `max` running or waiting at once, so a
/// flood is answered "busy" at once instead of making everyone wait behind it (FIFO).
pub struct Checker {
    max: usize,
    pending: std::sync::atomic::AtomicUsize,
    checks: std::sync::atomic::AtomicU64,
}

/// The queue was full: nothing was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Gives the slot back however the check ends (also when its future is dropped).
struct Slot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Checker {
    pub fn new(max: usize) -> Self {
        Self { max, pending: Default::default(), checks: Default::default() }
    }

    /// Hashes compared so far (for the sign-in log's tests and the lockout's proof).
    pub fn checks(&self) -> u64 {
        self.checks.load(std::sync::atomic::Ordering::Acquire)
    }

    fn take_slot(&self) -> Result<Slot<'_>, Busy> {
        use std::sync::atomic::Ordering;
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .map_err(|_| Busy)?;
        Ok(Slot(&self.pending))
    }

    /// Runs `work` on the argon2 threads if there is room in the queue.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let _slot = self.take_slot()?;
        run(work).await.map_err(|_| Busy)
    }

    /// `verify` on the argon2 threads, or `Busy` without checking anything.
    pub async fn verify(&self, password: String, stored: Option<String>, dummy: String) -> Result<bool, Busy> {
        let ok = self.run(move || verify(&password, stored.as_deref(), &dummy)).await?;
        self.checks.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    const P: Argon2Params = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };

    fn check(h: &str) {
        assert!(verify("correct horse", Some(h), h));
        assert!(!verify("wrong", Some(h), h));
        assert!(!verify("correct horse", None, h));
    }

    #[test]
    fn hashes_verify_and_unknown_users_fail() {
        let h = hash("correct horse", &P).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        check(&h);
        // The same on a thread that reuses its blocks, twice (the second run reuses them).
        BLOCKS.set(Some(Vec::new()));
        check(&h);
        check(&hash("correct horse", &P).unwrap());
    }

    #[test]
    fn agrees_with_the_argon2_crate_both_ways() {
        let ours = hash("correct horse", &P).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong", &parsed).is_err());
        // Theirs, with other parameters and variant: the parameters come from the string.
        let params = Params::new(2048, 2, 2, None).unwrap();
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        check(&theirs);
    }

    #[tokio::test]
    async fn a_full_queue_sheds_at_once_and_frees_its_slots() {
        let none = Checker::new(0);
        let h = hash("correct horse", &P).unwrap();
        assert_eq!(none.verify("correct horse".into(), Some(h.clone()), h.clone()).await, Err(Busy));
        assert_eq!(none.checks(), 0, "a shed check compares nothing");

        let one = std::sync::Arc::new(Checker::new(1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let held = {
            let one = one.clone();
            tokio::spawn(async move { one.run(move || wait.recv().is_ok()).await })
        };
        // Until the first job holds the only slot, a second one may still get in.
        for _ in 0..10_000 {
            if one.pending.load(std::sync::atomic::Ordering::Acquire) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(one.verify("x".into(), Some(h.clone()), h.clone()).await, Err(Busy));
        release.send(()).unwrap();
        assert_eq!(held.await.unwrap(), Ok(true));
        assert_eq!(one.verify("correct horse".into(), Some(h.clone()), h).await, Ok(true));
        assert_eq!((one.checks(), one.pending.load(std::sync::atomic::Ordering::Acquire)), (1, 0));
    }
}
