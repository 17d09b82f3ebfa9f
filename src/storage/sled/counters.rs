//! Failure and rate counters of the embedded store: in this process's memory
//! ([`MemoryCounters`]). sled locks its data dir to one process, so every attempt passes
//! through here and the in-memory lock makes each check-and-count exact; a restart forgets
//! the counts, which one node can afford (the lockouts are minutes long).
use crate::ratelimit::MemoryCounters;
use crate::storage::{Reserved, Result, api};

use super::SledStore;

/// The counters one store holds (shared by its clones).
pub(super) type Counters = std::sync::Arc<MemoryCounters>;

#[async_trait::async_trait]
impl api::CounterStore for SledStore {
    async fn reserve(&self, key: &str, limit: u32, window: i64, now: i64) -> Result<Reserved> {
        Ok(self.counters.reserve(key, limit, window, now))
    }

    async fn release(&self, key: &str, at: i64) -> Result<()> {
        self.counters.release(key, at);
        Ok(())
    }

    async fn record(&self, key: &str, window: i64, now: i64) -> Result<()> {
        self.counters.record(key, window, now);
        Ok(())
    }

    async fn count(&self, key: &str, window: i64, now: i64) -> Result<usize> {
        Ok(self.counters.count(key, window, now))
    }

    async fn retry_after(&self, key: &str, limit: u32, window: i64, now: i64) -> Result<Option<i64>> {
        Ok(self.counters.retry_after(key, limit, window, now))
    }

    async fn clear(&self, key: &str) -> Result<()> {
        self.counters.clear(key);
        Ok(())
    }
}
