//! Exponential back-off: the delay starts at `min`, grows by `factor` after each wait, stops
//! growing at `max`, and goes back to `min` on [`Backoff::reset`] (after a success). `jitter`
//! randomises each delay downwards by up to that fraction, so sidecars that failed together do
//! not all retry in the same instant; it is off unless asked for.

use rand::Rng;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The delays of one retry loop. Cheap to copy: keep the policy in a `const` and copy it into
/// each loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    /// How much the delay grows after each wait (1 or more).
    factor: f64,
    /// The fraction (0 to 1) by which a delay may be shortened at random.
    jitter: f64,
    /// The delay the next wait takes, before jitter.
    current: Duration,
}

impl Backoff {
    /// Delays from `min`, doubling, up to `max`, without jitter. A `max` below `min` is taken
    /// as `min`.
    pub const fn new(min: Duration, max: Duration) -> Self {
        let max = if max.as_nanos() < min.as_nanos() {
            min
        } else {
            max
        };
        Backoff {
            min,
            max,
            factor: 2.0,
            jitter: 0.0,
            current: min,
        }
    }

    /// Grows the delay by `factor` (at least 1: a delay never shrinks) instead of doubling it.
    #[allow(
        dead_code,
        reason = "for the Resiliency policies; every loop migrated so far doubles"
    )]
    pub const fn with_factor(mut self, factor: f64) -> Self {
        self.factor = if factor >= 1.0 { factor } else { 1.0 };
        self
    }

    /// Shortens each delay by a random fraction of up to `jitter` (clamped to 0..=1): a delay
    /// `d` becomes one in `d × (1 − jitter) ..= d`, so jitter never waits past `max`.
    #[allow(
        dead_code,
        reason = "for the Resiliency policies; the migrated loops keep their exact delays"
    )]
    pub const fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter >= 0.0 {
            if jitter <= 1.0 { jitter } else { 1.0 }
        } else {
            0.0 // also NaN
        };
        self
    }

    /// The delay to wait now; the one after it is `factor` times longer, up to `max`.
    pub fn next(&mut self) -> Duration {
        let delay = self.current;
        // In nanoseconds: exact for the integer factors every caller uses today, and the `as`
        // casts saturate instead of panicking on an absurd `max`.
        let grown = self.current.as_nanos() as f64 * self.factor;
        self.current = Duration::from_nanos(grown as u64).clamp(self.min, self.max);
        if self.jitter > 0.0 {
            delay.mul_f64(1.0 - rand::rng().random_range(0.0..=self.jitter))
        } else {
            delay
        }
    }

    /// Starts over at `min` (after a success).
    pub fn reset(&mut self) {
        self.current = self.min;
    }

    /// Waits the [`next`](Backoff::next) delay; `false` (at once) when `stop` fires first.
    pub async fn sleep(&mut self, stop: &CancellationToken) -> bool {
        let delay = self.next();
        tokio::select! {
            biased;
            () = stop.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn delays(backoff: &mut Backoff, n: usize) -> Vec<u128> {
        (0..n).map(|_| backoff.next().as_millis()).collect()
    }

    #[test]
    fn delays_grow_by_the_factor_up_to_the_cap() {
        let cases: &[(Backoff, &[u128])] = &[
            (
                Backoff::new(ms(100), ms(2_000)),
                &[100, 200, 400, 800, 1_600, 2_000, 2_000],
            ),
            (
                Backoff::new(ms(5), ms(500)),
                &[5, 10, 20, 40, 80, 160, 320, 500],
            ),
            (
                Backoff::new(ms(250), ms(10_000)),
                &[250, 500, 1_000, 2_000, 4_000, 8_000, 10_000],
            ),
            (
                Backoff::new(ms(100), ms(1_000)).with_factor(1.5),
                &[100, 150, 225, 337, 506, 759, 1_000],
            ),
            (
                Backoff::new(ms(100), ms(1_000)).with_factor(0.5),
                &[100, 100, 100],
            ),
            (Backoff::new(ms(300), ms(100)), &[300, 300, 300]),
        ];
        for (backoff, want) in cases {
            let mut backoff = *backoff;
            assert_eq!(delays(&mut backoff, want.len()), *want, "{backoff:?}");
        }
    }

    #[test]
    fn absurd_settings_neither_panic_nor_pass_the_cap() {
        let mut huge = Backoff::new(ms(1), Duration::from_secs(3_600)).with_factor(f64::MAX);
        assert_eq!(delays(&mut huge, 3), [1, 3_600_000, 3_600_000]);
        let mut endless = Backoff::new(ms(1), Duration::MAX).with_factor(f64::INFINITY);
        assert_eq!(endless.next(), ms(1));
        assert!(endless.next() > Duration::from_secs(365 * 24 * 3_600));
        let mut nan = Backoff::new(ms(10), ms(40)).with_factor(f64::NAN);
        assert_eq!(delays(&mut nan, 3), [10, 10, 10], "NaN grows nothing");
    }

    #[test]
    fn reset_starts_over_at_min() {
        let mut backoff = Backoff::new(ms(100), ms(2_000));
        delays(&mut backoff, 4);
        backoff.reset();
        assert_eq!(delays(&mut backoff, 3), [100, 200, 400]);
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let policy = Backoff::new(ms(1_000), ms(8_000)).with_jitter(0.25);
        let mut plain = Backoff::new(ms(1_000), ms(8_000));
        let mut jittered = policy;
        let mut all_equal = true;
        for _ in 0..200 {
            let (d, j) = (plain.next(), jittered.next());
            assert!(
                j <= d && j >= d.mul_f64(0.75),
                "{j:?} not in 75–100 % of {d:?}"
            );
            all_equal &= j == d;
        }
        assert!(!all_equal, "jitter changed nothing in 200 delays");
        assert_eq!(Backoff::new(ms(1), ms(2)).with_jitter(7.0).jitter, 1.0);
        assert_eq!(Backoff::new(ms(1), ms(2)).with_jitter(-1.0).jitter, 0.0);
        assert_eq!(Backoff::new(ms(1), ms(2)).with_jitter(f64::NAN).jitter, 0.0);
    }

    #[tokio::test]
    async fn sleep_waits_the_next_delay() {
        let stop = CancellationToken::new();
        let mut backoff = Backoff::new(ms(20), ms(2_000));
        let start = tokio::time::Instant::now();
        assert!(backoff.sleep(&stop).await);
        assert!(backoff.sleep(&stop).await);
        assert!(
            start.elapsed() >= ms(60),
            "20 ms then 40 ms: {:?}",
            start.elapsed()
        );
        assert_eq!(backoff.next(), ms(80), "each sleep took one step");
    }

    #[tokio::test]
    async fn sleep_returns_promptly_when_stopped() {
        let stop = CancellationToken::new();
        let mut backoff = Backoff::new(Duration::from_secs(3_600), Duration::from_secs(3_600));
        let canceller = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ms(20)).await;
            canceller.cancel();
        });
        let start = std::time::Instant::now();
        assert!(!backoff.sleep(&stop).await);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(!backoff.sleep(&stop).await, "a fired stop returns at once");
    }
}
