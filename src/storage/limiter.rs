//! A named limit on the store's counters ([`CounterStore`](super::api::CounterStore)): what
//! `AppState` holds for each lockout and rate limit. The counts live in the store, so on a
//! shared database a limit holds across every node; keys are namespaced by the limiter's
//! name (`"{name}:{key}"`), so two limiters never share a count.
use super::{Reserved, Result, Store};

pub struct Limiter {
    store: Store,
    name: &'static str,
    limit: u32,
    window: i64,
}

impl Limiter {
    /// At most `limit` events per key in any `window` seconds.
    pub fn new(store: Store, name: &'static str, limit: u32, window: i64) -> Self {
        Self { store, name, limit, window }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.name)
    }

    /// Checks and counts one attempt in one step: however many arrive at once (on any
    /// node), at most the limit are `Yes`. A reserved attempt that succeeds is `release`d.
    pub async fn try_reserve(&self, key: &str, now: i64) -> Result<Reserved> {
        self.store.reserve(&self.key(key), self.limit, self.window, now).await
    }

    /// Gives back one attempt reserved at `at` (it did not count as a failure).
    pub async fn release(&self, key: &str, at: i64) -> Result<()> {
        self.store.release(&self.key(key), at).await
    }

    /// Counts one failure without a check.
    pub async fn record_failure(&self, key: &str, now: i64) -> Result<()> {
        self.store.record(&self.key(key), self.window, now).await
    }

    /// Events counted for `key` in the window.
    pub async fn count(&self, key: &str, now: i64) -> Result<usize> {
        self.store.count(&self.key(key), self.window, now).await
    }

    /// `Some(seconds until a slot frees)` when `key` has used up its limit in the window.
    pub async fn retry_after(&self, key: &str, now: i64) -> Result<Option<i64>> {
        self.store.retry_after(&self.key(key), self.limit, self.window, now).await
    }

    /// Forgets every event of `key` (a success ends a run of failures).
    pub async fn clear(&self, key: &str) -> Result<()> {
        self.store.clear(&self.key(key)).await
    }
}
