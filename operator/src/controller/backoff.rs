//! Per-object retry delays: a reconcile that fails is retried after a delay that doubles with each
//! consecutive failure of that object (1 s, 2 s, 4 s, … up to 5 min) and resets when it succeeds,
//! so one broken object neither hot-loops nor delays the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(300);

/// The delay before retrying after the `failures`-th consecutive failure (1-based).
pub fn retry_delay(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << exponent).min(MAX)
}

/// Consecutive failures per object key.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Counts a failure of `key` and returns how long to wait before retrying it.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key.to_owned()).or_default();
        *count = count.saturating_add(1);
        retry_delay(*count)
    }

    /// Forgets the failures of `key` after it reconciled.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let delays: Vec<u64> = (1..=10).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(retry_delay(u32::MAX), MAX);
        assert_eq!(retry_delay(0), FIRST);
    }

    #[test]
    fn failures_are_counted_per_object_and_reset_on_success() {
        let backoff = Backoff::default();
        assert_eq!(backoff.failed("a"), Duration::from_secs(1));
        assert_eq!(backoff.failed("a"), Duration::from_secs(2));
        assert_eq!(
            backoff.failed("b"),
            Duration::from_secs(1),
            "b is not slowed by a"
        );
        assert_eq!(backoff.failed("a"), Duration::from_secs(4));
        backoff.succeeded("a");
        assert_eq!(backoff.failed("a"), Duration::from_secs(1));
    }
}
