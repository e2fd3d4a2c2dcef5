//! `dapr_component_*` (what the sidecar asks of its components, and what they deliver) and
//! `dapr_runtime_component_*` (loading them), with Dapr's labels: `component` is the
//! component's name (its type for the init counters, as daprd does), `namespace` the sidecar's
//! (empty standalone), `success` `true`/`false`.

use super::{counter_vec, histogram_vec, ms};
use prometheus::{HistogramVec, IntCounter, IntCounterVec, Registry};
use std::time::Duration;

type PromResult<T> = Result<T, prometheus::Error>;

/// A count and a latency histogram over the same labels, as Dapr pairs them.
#[derive(Clone)]
struct Pair {
    count: IntCounterVec,
    latency: HistogramVec,
}

impl Pair {
    fn new(
        registry: &Registry,
        name: &str,
        what: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> PromResult<Pair> {
        Ok(Pair {
            count: counter_vec(registry, &format!("{name}_count"), what, labels)?,
            latency: histogram_vec(
                registry,
                &format!("{name}_latencies"),
                &format!("{what}: latency in ms"),
                labels,
                buckets,
            )?,
        })
    }

    fn record(&self, labels: &[&str], took: Option<Duration>) {
        self.count.with_label_values(labels).inc();
        // Like daprd, a latency is recorded only where one was measured.
        if let Some(took) = took.filter(|t| !t.is_zero()) {
            self.latency.with_label_values(labels).observe(ms(took));
        }
    }
}

fn success(ok: bool) -> &'static str {
    if ok { "true" } else { "false" }
}

#[derive(Clone)]
pub struct ComponentMetrics {
    namespace: String,
    state: Pair,
    secret: Pair,
    egress: Pair,
    egress_bulk: Pair,
    egress_bulk_events: IntCounterVec,
    ingress: Pair,
    ingress_bulk: Pair,
    ingress_bulk_events: IntCounterVec,
    input_binding: Pair,
    output_binding: Pair,
    loaded: IntCounter,
    init: IntCounterVec,
    init_fail: IntCounterVec,
}

impl ComponentMetrics {
    pub fn new(registry: &Registry, namespace: &str, buckets: &[f64]) -> PromResult<Self> {
        let ops = ["component", "namespace", "operation", "success"];
        let pair = |name: &str, what: &str, labels: &[&str]| {
            Pair::new(registry, name, what, labels, buckets)
        };
        let egress = ["component", "namespace", "success", "topic"];
        let ingress = [
            "component",
            "namespace",
            "process_status",
            "status",
            "topic",
        ];
        let bulk_ingress = ["component", "namespace", "process_status", "topic"];
        Ok(ComponentMetrics {
            namespace: namespace.to_owned(),
            state: pair("dapr_component_state", "State store operations", &ops)?,
            secret: pair("dapr_component_secret", "Secret store operations", &ops)?,
            egress: pair(
                "dapr_component_pubsub_egress",
                "Messages published to pub/sub components",
                &egress,
            )?,
            egress_bulk: pair(
                "dapr_component_pubsub_egress_bulk",
                "Bulk publish calls to pub/sub components",
                &egress,
            )?,
            egress_bulk_events: counter_vec(
                registry,
                "dapr_component_pubsub_egress_bulk_event_count",
                "Messages published by bulk publish",
                &egress,
            )?,
            ingress: pair(
                "dapr_component_pubsub_ingress",
                "Messages from pub/sub components delivered to the app, by outcome",
                &ingress,
            )?,
            ingress_bulk: pair(
                "dapr_component_pubsub_ingress_bulk",
                "Bulk deliveries to the app",
                &bulk_ingress,
            )?,
            ingress_bulk_events: counter_vec(
                registry,
                "dapr_component_pubsub_ingress_bulk_event_count",
                "Messages delivered to the app by bulk subscribe, by outcome",
                &bulk_ingress,
            )?,
            input_binding: pair(
                "dapr_component_input_binding",
                "Input binding events delivered to the app",
                &["component", "namespace", "success"],
            )?,
            output_binding: pair(
                "dapr_component_output_binding",
                "Output binding invocations",
                &ops,
            )?,
            loaded: {
                let c = IntCounter::new(
                    "dapr_runtime_component_loaded",
                    "Components loaded successfully",
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            init: counter_vec(
                registry,
                "dapr_runtime_component_init_total",
                "Components initialised, by type",
                &["component"],
            )?,
            init_fail: counter_vec(
                registry,
                "dapr_runtime_component_init_fail_total",
                "Component initialisations that failed, by type, reason and name",
                &["component", "reason", "componentName"],
            )?,
        })
    }

    pub fn state(&self, component: &str, operation: &str, ok: bool, took: Duration) {
        let labels = [component, &self.namespace, operation, success(ok)];
        self.state.record(&labels, Some(took));
    }

    pub fn secret(&self, component: &str, operation: &str, ok: bool, took: Duration) {
        let labels = [component, &self.namespace, operation, success(ok)];
        self.secret.record(&labels, Some(took));
    }

    pub fn publish(&self, component: &str, topic: &str, ok: bool, took: Duration) {
        let labels = [component, &self.namespace, success(ok), topic];
        self.egress.record(&labels, Some(took));
    }

    /// One bulk publish call; `published` entries of it made it to the broker.
    pub fn bulk_publish(
        &self,
        component: &str,
        topic: &str,
        ok: bool,
        published: u64,
        took: Duration,
    ) {
        let labels = [component, &self.namespace, success(ok), topic];
        self.egress_bulk.record(&labels, Some(took));
        if published > 0 {
            let labels = [component, &self.namespace, "true", topic];
            self.egress_bulk_events
                .with_label_values(&labels)
                .inc_by(published);
        }
    }

    /// One delivery to the app that ended with `outcome` (`success`, `retry`, `drop`).
    pub fn delivered(&self, component: &str, topic: &str, outcome: &str, took: Option<Duration>) {
        let labels = [component, &self.namespace, outcome, outcome, topic];
        self.ingress.record(&labels, took);
    }

    /// One bulk request to the app.
    pub fn bulk_delivered(
        &self,
        component: &str,
        topic: &str,
        outcome: &str,
        took: Option<Duration>,
    ) {
        let labels = [component, &self.namespace, outcome, topic];
        self.ingress_bulk.record(&labels, took);
    }

    /// `count` entries of bulk requests that ended with `outcome`.
    pub fn bulk_entries(&self, component: &str, topic: &str, outcome: &str, count: u64) {
        let labels = [component, &self.namespace, outcome, topic];
        self.ingress_bulk_events
            .with_label_values(&labels)
            .inc_by(count);
    }

    pub fn input_binding(&self, component: &str, ok: bool, took: Option<Duration>) {
        let labels = [component, &self.namespace, success(ok)];
        self.input_binding.record(&labels, took);
    }

    pub fn output_binding(&self, component: &str, operation: &str, ok: bool, took: Duration) {
        let labels = [component, &self.namespace, operation, success(ok)];
        self.output_binding.record(&labels, Some(took));
    }

    /// A component of `kind` (`state.redis`) named `name` finished initialising.
    pub fn initialised(&self, kind: &str, name: &str, ok: bool) {
        match ok {
            true => {
                self.init.with_label_values(&[kind]).inc();
                self.loaded.inc();
            }
            false => self
                .init_fail
                .with_label_values(&[kind, "init", name])
                .inc(),
        }
    }
}
