//! Sliding-window counters in memory: the events (failures, sends) of each key in the last
//! `window` seconds, checked and counted under one lock. This is the embedded store's
//! counter (`storage::sled`): sled locks its data dir to one process, so this process's
//! memory is the one place every attempt passes through, and a restart forgets the counts
//! (acceptable for one node). A shared database counts in its own tables instead
//! (`storage::postgres`); both answer the same `CounterStore` contract, with the limit
//! and the window given on every call.
use std::collections::HashMap;
use std::sync::Mutex;

/// Beyond this many keys, keys with no event left in their window are forgotten (at most
/// once a second), so a spray of distinct keys cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

/// What a reservation decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// The attempt is counted; `before` attempts were already counted in the window.
    Yes { before: usize },
    /// The limit is used up; the window frees a slot in `retry_after` seconds.
    No { retry_after: i64 },
}

/// Whether an event at `at` is still in the window at `now`.
pub fn in_window(at: i64, window: i64, now: i64) -> bool {
    now - at < window
}

/// Seconds until `events` (all in the window, at or over `limit`) drop below `limit`:
/// the event whose expiry brings the count under the limit, at least 1.
pub fn wait(events: &[i64], limit: u32, window: i64, now: i64) -> i64 {
    let over = events.len().saturating_sub(limit as usize);
    let mut sorted = events.to_vec();
    sorted.sort_unstable();
    sorted.get(over).map(|t| (t + window - now).max(1)).unwrap_or(1)
}

/// One key's events, with the window they were last counted in (for pruning).
#[derive(Default)]
struct Events {
    window: i64,
    at: Vec<i64>,
}

impl Events {
    /// Drops what left the window; the events still in it.
    fn recent(&mut self, window: i64, now: i64) -> usize {
        self.at.retain(|t| in_window(*t, window, now));
        self.at.len()
    }
}

#[derive(Default)]
struct Map {
    keys: HashMap<String, Events>,
    /// When keys were last pruned for the bound.
    pruned_at: Option<i64>,
}

impl Map {
    /// The events of `key`, created if missing, after keeping the map within its bound.
    fn entry(&mut self, key: &str, window: i64, now: i64) -> &mut Events {
        if self.keys.len() > MAX_KEYS && self.pruned_at != Some(now) {
            self.pruned_at = Some(now);
            self.keys.retain(|_, e| e.at.iter().any(|t| in_window(*t, e.window, now)));
        }
        let events = self.keys.entry(key.to_string()).or_default();
        events.window = window;
        events
    }
}

/// Every key's events, behind one lock.
#[derive(Default)]
pub struct MemoryCounters {
    map: Mutex<Map>,
}

impl MemoryCounters {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks and counts in one step (under one lock): concurrent attempts cannot all pass
    /// the check before any is counted. A reserved attempt that succeeds is `release`d.
    pub fn reserve(&self, key: &str, limit: u32, window: i64, now: i64) -> Reserved {
        let mut map = self.map();
        let events = map.entry(key, window, now);
        let before = events.recent(window, now);
        if before >= limit as usize {
            return Reserved::No { retry_after: wait(&events.at, limit, window, now) };
        }
        events.at.push(now);
        Reserved::Yes { before }
    }

    /// Gives back one attempt reserved at `at` (it did not count as a failure).
    pub fn release(&self, key: &str, at: i64) {
        let mut map = self.map();
        if let Some(events) = map.keys.get_mut(key)
            && let Some(i) = events.at.iter().rposition(|t| *t == at)
        {
            events.at.remove(i);
            if events.at.is_empty() {
                map.keys.remove(key);
            }
        }
    }

    /// Counts one event without a check.
    pub fn record(&self, key: &str, window: i64, now: i64) {
        let mut map = self.map();
        let events = map.entry(key, window, now);
        events.recent(window, now);
        events.at.push(now);
    }

    /// Events of `key` in the window.
    pub fn count(&self, key: &str, window: i64, now: i64) -> usize {
        self.map().keys.get_mut(key).map(|e| e.recent(window, now)).unwrap_or(0)
    }

    /// `Some(seconds until a slot frees)` when `key` has `limit` events in the window.
    pub fn retry_after(&self, key: &str, limit: u32, window: i64, now: i64) -> Option<i64> {
        let mut map = self.map();
        let events = map.keys.get_mut(key)?;
        (events.recent(window, now) >= limit as usize).then(|| wait(&events.at, limit, window, now))
    }

    /// Forgets every event of `key`.
    pub fn clear(&self, key: &str) {
        self.map().keys.remove(key);
    }

    /// Keys held (tests of the bound).
    pub fn len(&self) -> usize {
        self.map().keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_forgets_after_the_window() {
        let c = MemoryCounters::new();
        for t in 0..3 {
            assert_eq!(c.retry_after("a", 3, 60, t), None);
            c.record("a", 60, t);
        }
        assert_eq!(c.retry_after("a", 3, 60, 10), Some(50));
        assert_eq!(c.retry_after("a", 4, 60, 10), None, "the limit is per call");
        assert_eq!(c.retry_after("b", 3, 60, 10), None);
        assert_eq!(c.retry_after("a", 3, 60, 100), None);
    }

    #[test]
    fn reserve_counts_until_the_limit_and_says_when_to_retry() {
        let c = MemoryCounters::new();
        assert_eq!(c.reserve("a", 2, 60, 0), Reserved::Yes { before: 0 });
        assert_eq!(c.reserve("a", 2, 60, 10), Reserved::Yes { before: 1 });
        assert_eq!(c.reserve("a", 2, 60, 20), Reserved::No { retry_after: 40 });
        assert_eq!(c.reserve("b", 2, 60, 20), Reserved::Yes { before: 0 });
        assert_eq!(c.reserve("a", 2, 60, 60), Reserved::Yes { before: 1 });
    }

    #[test]
    fn retry_after_waits_for_the_count_to_drop_below_the_limit() {
        // Unchecked records can go past the limit: the wait is for the event that brings
        // the count back under it, not the oldest.
        let c = MemoryCounters::new();
        for t in [0, 10, 20, 30] {
            c.record("a", 60, t);
        }
        assert_eq!(c.retry_after("a", 2, 60, 30), Some(50));
    }

    #[test]
    fn reservations_never_exceed_the_limit_and_can_be_released() {
        let c = std::sync::Arc::new(MemoryCounters::new());
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || c.reserve("a", 5, 60, 0))
            })
            .collect();
        let results: Vec<Reserved> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let yes = results.iter().filter(|r| matches!(r, Reserved::Yes { .. })).count();
        assert_eq!(yes, 5, "{results:?}");
        assert_eq!(c.count("a", 60, 1), 5);
        assert_eq!(c.reserve("a", 5, 60, 1), Reserved::No { retry_after: 59 });
        c.release("a", 0);
        assert_eq!(c.reserve("a", 5, 60, 2), Reserved::Yes { before: 4 });
        assert_eq!(c.reserve("b", 5, 60, 2), Reserved::Yes { before: 0 });
        assert_eq!(c.reserve("a", 5, 60, 61), Reserved::Yes { before: 1 }, "the window forgets");
        c.clear("a");
        assert_eq!(c.count("a", 60, 61), 0);
    }

    #[test]
    fn a_spray_of_keys_is_forgotten_once_out_of_its_window() {
        let c = MemoryCounters::new();
        for i in 0..=MAX_KEYS {
            c.record(&format!("k{i}"), 60, 0);
        }
        c.record("late", 3600, 30);
        assert_eq!(c.len(), MAX_KEYS + 2, "everything is still in its window");
        c.record("later", 3600, 60);
        assert_eq!(c.len(), 2, "only keys with events in their own window stay");
        assert_eq!(c.count("late", 3600, 60), 1);
    }
}
