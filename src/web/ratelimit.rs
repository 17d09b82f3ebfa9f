//! Failure counters for password (and later OTP) attempts, per account and per client IP,
//! in a sliding window. In memory: a restart forgets them, which is acceptable for one node.
use std::collections::HashMap;
use std::sync::Mutex;

pub struct Limiter {
    max_failures: u32,
    window: i64,
    failures: Mutex<HashMap<String, Vec<i64>>>,
}

impl Limiter {
    pub fn new(max_failures: u32, window: i64) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    fn recent(list: &mut Vec<i64>, now: i64, window: i64) -> usize {
        list.retain(|t| now - t < window);
        list.len()
    }

    /// True when `key` has used up its failures in the window.
    pub fn is_limited(&self, key: &str, now: i64) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(key) {
            Some(list) => Self::recent(list, now, self.window) >= self.max_failures as usize,
            None => false,
        }
    }

    pub fn record_failure(&self, key: &str, now: i64) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
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
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
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
}
