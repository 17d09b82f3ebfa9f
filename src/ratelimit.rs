//! Failure counters for password (and later OTP) attempts, per account and per client IP,
//! in a sliding window. In memory: a restart forgets them, which is acceptable for one node.
use std::collections::HashMap;
use std::sync::Mutex;

pub struct Limiter {
    max_failures: u32,
    window: i64,
    failures: Mutex<HashMap<String, Vec<i64>>>,
}

/// What `try_reserve` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// The attempt is counted; `before` attempts were already counted in the window.
    Yes { before: usize },
    /// The limit is used up; the window frees a slot in `retry_after` seconds.
    No { retry_after: i64 },
}

impl Limiter {
    pub fn new(max_failures: u32, window: i64) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    fn recent(list: &mut Vec<i64>, now: i64, window: i64) -> usize {
        list.retain(|t| now - t < window);
        list.len()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<i64>>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds until `list` (pruned, at or over the limit) drops below the limit.
    fn wait(&self, list: &[i64], now: i64) -> i64 {
        let over = list.len().saturating_sub(self.max_failures as usize);
        let mut sorted = list.to_vec();
        sorted.sort_unstable();
        sorted.get(over).map(|t| (t + self.window - now).max(1)).unwrap_or(1)
    }

    /// True when `key` has used up its failures in the window.
    pub fn is_limited(&self, key: &str, now: i64) -> bool {
        self.retry_after(key, now).is_some()
    }

    /// `Some(seconds until a slot frees)` when `key` has used up its failures in the window.
    pub fn retry_after(&self, key: &str, now: i64) -> Option<i64> {
        let mut map = self.map();
        let list = map.get_mut(key)?;
        if Self::recent(list, now, self.window) >= self.max_failures as usize {
            Some(self.wait(list, now))
        } else {
            None
        }
    }

    /// Failures counted for `key` in the window.
    pub fn count(&self, key: &str, now: i64) -> usize {
        let mut map = self.map();
        map.get_mut(key).map(|l| Self::recent(l, now, self.window)).unwrap_or(0)
    }

    /// Checks and counts in one step (under one lock): concurrent attempts cannot all pass
    /// the check before any is counted. A reserved attempt that succeeds is `release`d.
    pub fn try_reserve(&self, key: &str, now: i64) -> Reserved {
        let mut map = self.map();
        if map.len() > 100_000 {
            // Bound memory under a spray of distinct keys: forget entries outside the window.
            map.retain(|_, l| l.iter().any(|t| now - t < self.window));
        }
        let list = map.entry(key.to_string()).or_default();
        let before = Self::recent(list, now, self.window);
        if before >= self.max_failures as usize {
            return Reserved::No { retry_after: self.wait(list, now) };
        }
        list.push(now);
        Reserved::Yes { before }
    }

    /// Gives back one attempt reserved at `at` (it did not count as a failure).
    pub fn release(&self, key: &str, at: i64) {
        let mut map = self.map();
        if let Some(list) = map.get_mut(key)
            && let Some(i) = list.iter().rposition(|t| *t == at)
        {
            list.remove(i);
            if list.is_empty() {
                map.remove(key);
            }
        }
    }

    pub fn record_failure(&self, key: &str, now: i64) {
        let mut map = self.map();
        if map.len() > 100_000 {
            // Bound memory under a spray of distinct keys: forget entries outside the window.
            map.retain(|_, l| l.iter().any(|t| now - t < self.window));
        }
        map.entry(key.to_string()).or_default().push(now);
    }

    /// Counts one use of `key` unless it is used up: `Err(seconds until one is free)`.
    /// Check and count happen under one lock, so concurrent callers cannot overshoot.
    pub fn take(&self, key: &str, now: i64) -> Result<(), i64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, l| l.iter().any(|t| now - t < self.window));
        }
        let list = map.entry(key.to_string()).or_default();
        if Self::recent(list, now, self.window) >= self.max_failures as usize {
            let oldest = list.iter().min().copied().unwrap_or(now);
            return Err((oldest + self.window - now).max(1));
        }
        list.push(now);
        Ok(())
    }

    pub fn clear(&self, key: &str) {
        self.map().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_forgets_after_window() {
        let l = Limiter::new(3, 60);
        for t in 0..3 {
            assert!(!l.is_limited("a", t));
            l.record_failure("a", t);
        }
        assert!(l.is_limited("a", 10));
        assert_eq!(l.retry_after("a", 10), Some(50));
        assert!(!l.is_limited("b", 10));
        assert!(!l.is_limited("a", 100));
    }

    #[test]
    fn take_counts_until_the_limit_and_says_when_to_retry() {
        let l = Limiter::new(2, 60);
        assert_eq!(l.take("a", 0), Ok(()));
        assert_eq!(l.take("a", 10), Ok(()));
        assert_eq!(l.take("a", 20), Err(40));
        assert_eq!(l.take("b", 20), Ok(()));
        assert_eq!(l.take("a", 60), Ok(()));
    }

    #[test]
    fn reservations_never_exceed_the_limit_and_can_be_released() {
        let l = std::sync::Arc::new(Limiter::new(5, 60));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || l.try_reserve("a", 0))
            })
            .collect();
        let results: Vec<Reserved> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let yes = results.iter().filter(|r| matches!(r, Reserved::Yes { .. })).count();
        assert_eq!(yes, 5, "{results:?}");
        assert_eq!(l.count("a", 1), 5);
        assert_eq!(l.try_reserve("a", 1), Reserved::No { retry_after: 59 });
        l.release("a", 0);
        assert_eq!(l.try_reserve("a", 2), Reserved::Yes { before: 4 });
        assert_eq!(l.try_reserve("b", 2), Reserved::Yes { before: 0 });
        assert_eq!(l.try_reserve("a", 61), Reserved::Yes { before: 1 }, "the window forgets");
    }
}
