//! `dapr_runtime_actor_*`: Dapr's actor metric names, labelled by actor type (bounded: the types
//! an app registers).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use std::time::Duration;

/// The actor metrics of one sidecar.
#[derive(Clone)]
pub struct ActorMetrics {
    activated: IntCounterVec,
    deactivated: IntCounterVec,
    deactivated_failed: IntCounterVec,
    timers_fired: IntCounterVec,
    reminders_fired: IntCounterVec,
    rebalanced: IntCounterVec,
    table_updates: IntCounterVec,
    reminders: IntGaugeVec,
    timers: IntGaugeVec,
    call_latency: HistogramVec,
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), &["actor_type"])?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGaugeVec, prometheus::Error> {
    let g = IntGaugeVec::new(Opts::new(name, help), &["actor_type"])?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl ActorMetrics {
    pub fn new(registry: &Registry, buckets: &[f64]) -> Result<Self, prometheus::Error> {
        let call_latency = HistogramVec::new(
            HistogramOpts::new(
                "dapr_runtime_actor_call_latency_ms",
                "Actor method calls run here, in ms (turn wait included)",
            )
            .buckets(buckets.to_vec()),
            &["actor_type"],
        )?;
        registry.register(Box::new(call_latency.clone()))?;
        Ok(ActorMetrics {
            activated: counter(
                registry,
                "dapr_runtime_actor_activated_total",
                "Actors activated",
            )?,
            deactivated: counter(
                registry,
                "dapr_runtime_actor_deactivated_total",
                "Actors deactivated",
            )?,
            deactivated_failed: counter(
                registry,
                "dapr_runtime_actor_deactivated_failed_total",
                "Deactivations the app did not confirm",
            )?,
            timers_fired: counter(
                registry,
                "dapr_runtime_actor_timers_fired_total",
                "Timer callbacks made",
            )?,
            reminders_fired: counter(
                registry,
                "dapr_runtime_actor_reminders_fired_total",
                "Reminder callbacks made",
            )?,
            rebalanced: counter(
                registry,
                "dapr_runtime_actor_rebalanced_total",
                "Actors deactivated because their shard moved to another host",
            )?,
            table_updates: counter(
                registry,
                "dapr_runtime_actor_placement_table_updates_total",
                "Shards this host took or handed off",
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

    pub fn activated(&self, actor_type: &str) {
        self.activated.with_label_values(&[actor_type]).inc();
    }

    pub fn deactivated(&self, actor_type: &str, confirmed: bool) {
        self.deactivated.with_label_values(&[actor_type]).inc();
        if !confirmed {
            self.deactivated_failed
                .with_label_values(&[actor_type])
                .inc();
        }
    }

    pub fn rebalanced(&self, actor_type: &str) {
        self.rebalanced.with_label_values(&[actor_type]).inc();
    }

    pub fn table_update(&self, actor_type: &str, shards: usize) {
        self.table_updates
            .with_label_values(&[actor_type])
            .inc_by(u64::try_from(shards).unwrap_or(0));
    }

    pub fn timer_fired(&self, actor_type: &str) {
        self.timers_fired.with_label_values(&[actor_type]).inc();
    }

    pub fn reminder_fired(&self, actor_type: &str) {
        self.reminders_fired.with_label_values(&[actor_type]).inc();
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
