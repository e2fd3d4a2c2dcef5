//! App health checks, as daprd's `--enable-app-health-check`: the sidecar probes
//! `GET <path>` on the app through the app channel every interval; a 2xx within the timeout is
//! a success. The app starts unhealthy and turns healthy at its first success; `threshold`
//! failures in a row turn it unhealthy again (Dapr's `pkg/apphealth`). The result is a
//! `watch` channel of `bool` on the [`Sidecar`](crate::blocks::Sidecar): pub/sub delivery and
//! input bindings wait on it, and so can actor placement.

use super::AppChannel;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What to probe and how often (the `--app-health-*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppHealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failures in a row that make the app unhealthy.
    pub threshold: u32,
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// The app answered with this HTTP status.
    Answered(u16),
    /// No answer within the timeout.
    TimedOut,
    /// The request failed (nothing listening, connection reset).
    Failed(String),
}

impl ProbeResult {
    pub fn is_success(&self) -> bool {
        matches!(self, ProbeResult::Answered(status) if (200..300).contains(status))
    }

    /// The metric label: the status code, or `timeout` / `error` (bounded).
    pub fn label(&self) -> String {
        match self {
            ProbeResult::Answered(status) => status.to_string(),
            ProbeResult::TimedOut => "timeout".to_owned(),
            ProbeResult::Failed(_) => "error".to_owned(),
        }
    }
}

/// Failures in a row, and the health they mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    failures: u32,
    threshold: u32,
}

impl FailureCount {
    /// Unhealthy until the first success, as in Dapr.
    pub fn new(threshold: u32) -> FailureCount {
        let threshold = threshold.max(1);
        FailureCount {
            failures: threshold,
            threshold,
        }
    }

    pub fn healthy(&self) -> bool {
        self.failures < self.threshold
    }

    /// Counts one probe; the health after it.
    pub fn record(&mut self, success: bool) -> bool {
        self.failures = match success {
            true => 0,
            false => self.failures.saturating_add(1),
        };
        self.healthy()
    }
}

/// Probes the app until `stop`, publishing its health on `health` (only changes are sent).
pub async fn probe_app(
    app: Arc<dyn AppChannel>,
    check: AppHealthCheck,
    health: watch::Sender<bool>,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let mut count = FailureCount::new(check.threshold);
    let mut ticks = tokio::time::interval(check.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let started = Instant::now();
        let result = app.probe_health(&check.path, check.timeout).await;
        metrics
            .http()
            .health_probe(&result.label(), started.elapsed());
        let was = count.healthy();
        let now = count.record(result.is_success());
        if was != now {
            match now {
                true => tracing::info!(path = %check.path, "app entered healthy status"),
                false => {
                    tracing::warn!(path = %check.path, ?result, threshold = check.threshold, "app entered unhealthy status; pausing pub/sub and input-binding delivery")
                }
            }
        } else if !result.is_success() {
            tracing::debug!(path = %check.path, ?result, "app health probe failed");
        }
        health.send_if_modified(|healthy| std::mem::replace(healthy, now) != now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_failures_in_a_row_make_the_app_unhealthy() {
        // (probe succeeded, healthy after it), threshold 3, starting unhealthy.
        let steps = [
            (false, false),
            (true, true),
            (false, true),
            (false, true),
            (true, true),
            (false, true),
            (false, true),
            (false, false),
            (false, false),
            (true, true),
        ];
        let mut count = FailureCount::new(3);
        assert!(!count.healthy(), "unhealthy until the first success");
        for (i, (success, healthy)) in steps.into_iter().enumerate() {
            assert_eq!(count.record(success), healthy, "step {i}");
        }
        let mut once = FailureCount::new(0);
        assert!(once.record(true));
        assert!(!once.record(false), "a threshold of 0 counts as 1");
    }

    #[test]
    fn only_a_2xx_answer_is_healthy() {
        for (result, ok, label) in [
            (ProbeResult::Answered(200), true, "200"),
            (ProbeResult::Answered(204), true, "204"),
            (ProbeResult::Answered(301), false, "301"),
            (ProbeResult::Answered(500), false, "500"),
            (ProbeResult::TimedOut, false, "timeout"),
            (ProbeResult::Failed("refused".into()), false, "error"),
        ] {
            assert_eq!(result.is_success(), ok, "{result:?}");
            assert_eq!(result.label(), label);
        }
    }
}
