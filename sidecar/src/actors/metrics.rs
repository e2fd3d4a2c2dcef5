//! `dapr_runtime_actor_*`: Dapr's actor metric names and labels (`app_id` comes from the registry,
//! then `actor_type`, and `operation`/`success`/`reason` where daprd has them). Labels stay
//! bounded: the types an app registers and fixed words, never actor ids.
//!
//! Tandem has no placement service, so daprd's placement metrics are mapped onto what a host does
//! instead (see [`StatusReport`] and [`ActorMetrics::table_operation`]); the shard churn itself is
//! counted in the Tandem-named `tandem_actor_shards_changed_total`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use std::time::Duration;

/// What a host "reports to placement" in Tandem: daprd streams its status to the placement
/// service; a Tandem host instead writes its heartbeat record and renews its shard leases in the
/// actor state store every placement round. Each write is one status report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusReport {
    /// The host record (address, types, heartbeat time) written at the start of a round.
    Heartbeat,
    /// One actor type's lease round: reading the leases, taking, renewing and releasing shards.
    Leases,
}

impl StatusReport {
    pub fn operation(self) -> &'static str {
        match self {
            StatusReport::Heartbeat => "heartbeat",
            StatusReport::Leases => "leases",
        }
    }
}

/// How the shards held here changed in one round (`tandem_actor_shards_changed_total{change}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardChange {
    Acquired,
    Releasing,
    Lost,
}

impl ShardChange {
    fn label(self) -> &'static str {
        match self {
            ShardChange::Acquired => "acquired",
            ShardChange::Releasing => "releasing",
            ShardChange::Lost => "lost",
        }
    }
}

/// The actor metrics of one sidecar.
#[derive(Clone)]
pub struct ActorMetrics {
    activated: IntCounterVec,
    deactivated: IntCounterVec,
    deactivated_failed: IntCounterVec,
    timers_fired: IntCounterVec,
    reminders_fired: IntCounterVec,
    rebalanced: IntCounterVec,
    status_reports: IntCounterVec,
    status_reports_failed: IntCounterVec,
    table_operations: IntCounterVec,
    shards_changed: IntCounterVec,
    pending_calls: IntGaugeVec,
    reminders: IntGaugeVec,
    timers: IntGaugeVec,
    call_latency: HistogramVec,
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGaugeVec, prometheus::Error> {
    let g = IntGaugeVec::new(Opts::new(name, help), &["actor_type"])?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

/// daprd's `success` label value.
fn success(ok: bool) -> &'static str {
    if ok { "true" } else { "false" }
}

impl ActorMetrics {
    pub fn new(registry: &Registry, buckets: &[f64]) -> Result<Self, prometheus::Error> {
        const TYPE: &[&str] = &["actor_type"];
        const FIRED: &[&str] = &["actor_type", "success"];
        let call_latency = HistogramVec::new(
            HistogramOpts::new(
                "dapr_runtime_actor_call_latency_ms",
                "Actor method calls run here, in ms (turn wait included)",
            )
            .buckets(buckets.to_vec()),
            TYPE,
        )?;
        registry.register(Box::new(call_latency.clone()))?;
        Ok(ActorMetrics {
            activated: counter(
                registry,
                "dapr_runtime_actor_activated_total",
                "Actors activated",
                TYPE,
            )?,
            deactivated: counter(
                registry,
                "dapr_runtime_actor_deactivated_total",
                "Actors deactivated with the app's confirmation",
                TYPE,
            )?,
            deactivated_failed: counter(
                registry,
                "dapr_runtime_actor_deactivated_failed_total",
                "Deactivations the app did not confirm",
                TYPE,
            )?,
            timers_fired: counter(
                registry,
                "dapr_runtime_actor_timers_fired_total",
                "Timer callbacks made (success: the app answered 2xx)",
                FIRED,
            )?,
            reminders_fired: counter(
                registry,
                "dapr_runtime_actor_reminders_fired_total",
                "Reminder callbacks made (success: the app answered 2xx)",
                FIRED,
            )?,
            rebalanced: counter(
                registry,
                "dapr_runtime_actor_rebalanced_total",
                "Actors deactivated because their shard moved to another host",
                TYPE,
            )?,
            status_reports: counter(
                registry,
                "dapr_runtime_actor_status_report_total",
                "Placement writes made: the host heartbeat and each type's lease round",
                &["operation"],
            )?,
            status_reports_failed: counter(
                registry,
                "dapr_runtime_actor_status_report_fail_total",
                "Placement writes that failed (the round is retried at the next tick)",
                &["operation", "reason"],
            )?,
            table_operations: counter(
                registry,
                "dapr_runtime_actor_table_operation_recv_total",
                "Placement rounds that changed the shards this host serves",
                &["actor_type", "operation"],
            )?,
            shards_changed: counter(
                registry,
                "tandem_actor_shards_changed_total",
                "Shards this host took, started handing off, or lost",
                &["actor_type", "change"],
            )?,
            pending_calls: gauge(
                registry,
                "dapr_runtime_actor_pending_actor_calls",
                "Actor calls waiting for the actor's turn here",
            )?,
            reminders: gauge(
                registry,
                "dapr_runtime_actor_reminders",
                "Reminders this host schedules",
            )?,
            timers: gauge(
                registry,
                "dapr_runtime_actor_timers",
                "Timers running on this host",
            )?,
            call_latency,
        })
    }

    /// Makes every per-type series exist (at 0) once a type is hosted here, as Prometheus's
    /// instrumentation guide advises for known label values: dashboards list actor types from
    /// the pending-calls gauge, and `rate()` over a counter sees its first increment.
    pub fn hosting(&self, actor_type: &str) {
        for gauge in [&self.pending_calls, &self.reminders, &self.timers] {
            gauge.with_label_values(&[actor_type]).add(0);
        }
        for counter in [
            &self.activated,
            &self.deactivated,
            &self.deactivated_failed,
            &self.rebalanced,
        ] {
            counter.with_label_values(&[actor_type]).inc_by(0);
        }
        for ok in [true, false] {
            self.timers_fired
                .with_label_values(&[actor_type, success(ok)])
                .inc_by(0);
            self.reminders_fired
                .with_label_values(&[actor_type, success(ok)])
                .inc_by(0);
        }
        self.table_operations
            .with_label_values(&[actor_type, "update"])
            .inc_by(0);
        for report in [StatusReport::Heartbeat, StatusReport::Leases] {
            self.status_reports
                .with_label_values(&[report.operation()])
                .inc_by(0);
            self.status_reports_failed
                .with_label_values(&[report.operation(), "store_error"])
                .inc_by(0);
        }
    }

    pub fn activated(&self, actor_type: &str) {
        self.activated.with_label_values(&[actor_type]).inc();
    }

    pub fn deactivated(&self, actor_type: &str, confirmed: bool) {
        if confirmed {
            self.deactivated.with_label_values(&[actor_type]).inc();
        } else {
            self.deactivated_failed
                .with_label_values(&[actor_type])
                .inc();
        }
    }

    pub fn rebalanced(&self, actor_type: &str) {
        self.rebalanced.with_label_values(&[actor_type]).inc();
    }

    /// One placement write, as daprd counts its status reports to the placement service.
    pub fn status_report(&self, report: StatusReport, ok: bool) {
        let op = report.operation();
        if ok {
            self.status_reports.with_label_values(&[op]).inc();
        } else {
            self.status_reports_failed
                .with_label_values(&[op, "store_error"])
                .inc();
        }
    }

    /// A placement round that changed the shards served here: daprd's "table update received".
    pub fn table_operation(&self, actor_type: &str) {
        self.table_operations
            .with_label_values(&[actor_type, "update"])
            .inc();
    }

    pub fn shards_changed(&self, actor_type: &str, change: ShardChange, shards: usize) {
        self.shards_changed
            .with_label_values(&[actor_type, change.label()])
            .inc_by(u64::try_from(shards).unwrap_or(0));
    }

    /// A call starts (`1`) or stops (`-1`) waiting for the actor's turn.
    pub fn pending_call(&self, actor_type: &str, delta: i64) {
        self.pending_calls
            .with_label_values(&[actor_type])
            .add(delta);
    }

    pub fn timer_fired(&self, actor_type: &str, ok: bool) {
        self.timers_fired
            .with_label_values(&[actor_type, success(ok)])
            .inc();
    }

    pub fn reminder_fired(&self, actor_type: &str, ok: bool) {
        self.reminders_fired
            .with_label_values(&[actor_type, success(ok)])
            .inc();
    }

    pub fn reminders_scheduled(&self, actor_type: &str, delta: i64) {
        self.reminders.with_label_values(&[actor_type]).add(delta);
    }

    pub fn timers_running(&self, actor_type: &str, delta: i64) {
        self.timers.with_label_values(&[actor_type]).add(delta);
    }

    pub fn call(&self, actor_type: &str, took: Duration) {
        self.call_latency
            .with_label_values(&[actor_type])
            .observe(took.as_secs_f64() * 1000.0);
    }
}

/// Counts one call in `dapr_runtime_actor_pending_actor_calls` while it lives (so a cancelled
/// wait is counted down too).
pub struct PendingCall(ActorMetrics, String);

impl PendingCall {
    pub fn new(metrics: &ActorMetrics, actor_type: &str) -> PendingCall {
        metrics.pending_call(actor_type, 1);
        PendingCall(metrics.clone(), actor_type.to_owned())
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        self.0.pending_call(&self.1, -1);
    }
}
