//! Prometheus metrics with Dapr's names. Labels are bounded: route templates (never raw paths),
//! component names, error kinds.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use std::time::Duration;

/// Dapr's default latency buckets, in milliseconds.
const LATENCY_BUCKETS_MS: &[f64] = &[
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0, 40.0, 50.0, 65.0, 80.0,
    100.0, 130.0, 160.0, 200.0, 250.0, 300.0, 400.0, 500.0, 650.0, 800.0, 1000.0, 2000.0, 5000.0,
    10000.0,
];

/// The sidecar's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    component_ops: IntCounterVec,
    component_latency: HistogramVec,
    invocations_sent: IntCounterVec,
    invocations_received: IntCounterVec,
    pubsub_ingress: IntCounterVec,
    pubsub_ingress_bulk: IntCounterVec,
    pubsub_ingress_bulk_events: IntCounterVec,
    input_bindings: IntCounterVec,
    health_probes: IntCounterVec,
    health_probe_latency: HistogramVec,
    output_bindings: IntCounterVec,
    actors: crate::actors::metrics::ActorMetrics,
    security: crate::security::metrics::SecurityMetrics,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Metrics {
    pub fn new(app_id: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(
            None,
            Some([("app_id".to_owned(), app_id.to_owned())].into()),
        )?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "dapr_http_server_request_count",
                "HTTP requests served, by route template",
            ),
            &["method", "path", "status"],
        )?;
        let http_latency = HistogramVec::new(
            HistogramOpts::new("dapr_http_server_latency", "HTTP server latency in ms")
                .buckets(LATENCY_BUCKETS_MS.to_vec()),
            &["method", "path", "status"],
        )?;
        let component_ops = IntCounterVec::new(
            Opts::new("dapr_component_state_count", "State store operations"),
            &["component", "operation", "success"],
        )?;
        let component_latency = HistogramVec::new(
            HistogramOpts::new(
                "dapr_component_state_latencies",
                "State store operation latency in ms",
            )
            .buckets(LATENCY_BUCKETS_MS.to_vec()),
            &["component", "operation", "success"],
        )?;
        let invocations_sent = IntCounterVec::new(
            Opts::new(
                "dapr_runtime_service_invocation_req_sent_total",
                "Invocations sent to other apps",
            ),
            &["dst_app_id", "type"],
        )?;
        let invocations_received = IntCounterVec::new(
            Opts::new(
                "dapr_runtime_service_invocation_req_recv_total",
                "Invocations received from other apps",
            ),
            &["src_app_id"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_latency.clone()))?;
        registry.register(Box::new(component_ops.clone()))?;
        registry.register(Box::new(component_latency.clone()))?;
        let pubsub_ingress = IntCounterVec::new(
            Opts::new(
                "dapr_component_pubsub_ingress_count",
                "Messages delivered to the app, by outcome",
            ),
            &["component", "topic", "process_status"],
        )?;
        registry.register(Box::new(pubsub_ingress.clone()))?;
        let pubsub_ingress_bulk = IntCounterVec::new(
            Opts::new(
                "dapr_component_pubsub_ingress_bulk_count",
                "Bulk subscribe requests made to the app",
            ),
            &["component", "topic"],
        )?;
        let pubsub_ingress_bulk_events = IntCounterVec::new(
            Opts::new(
                "dapr_component_pubsub_ingress_bulk_event_count",
                "Events delivered to the app by bulk subscribe, by outcome",
            ),
            &["component", "topic", "process_status"],
        )?;
        registry.register(Box::new(pubsub_ingress_bulk.clone()))?;
        registry.register(Box::new(pubsub_ingress_bulk_events.clone()))?;
        let input_bindings = IntCounterVec::new(
            Opts::new(
                "dapr_component_input_binding_count",
                "Input binding events delivered to the app, by outcome",
            ),
            &["component", "success"],
        )?;
        let output_bindings = IntCounterVec::new(
            Opts::new(
                "dapr_component_output_binding_count",
                "Output binding invocations, by operation and outcome",
            ),
            &["component", "operation", "success"],
        )?;
        registry.register(Box::new(input_bindings.clone()))?;
        let health_probes = IntCounterVec::new(
            Opts::new(
                "dapr_http_healthprobes_completed_count",
                "App health probes completed, by status",
            ),
            &["status"],
        )?;
        let health_probe_latency = HistogramVec::new(
            HistogramOpts::new(
                "dapr_http_healthprobes_roundtrip_latency",
                "App health probe round trip in ms",
            )
            .buckets(LATENCY_BUCKETS_MS.to_vec()),
            &["status"],
        )?;
        registry.register(Box::new(health_probes.clone()))?;
        registry.register(Box::new(health_probe_latency.clone()))?;
        registry.register(Box::new(output_bindings.clone()))?;
        registry.register(Box::new(invocations_sent.clone()))?;
        registry.register(Box::new(invocations_received.clone()))?;
        // process_resident_memory_bytes, CPU seconds, open fds.
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let actors = crate::actors::metrics::ActorMetrics::new(&registry, LATENCY_BUCKETS_MS)?;
        let security = crate::security::metrics::SecurityMetrics::new(&registry)?;
        Ok(Metrics {
            actors,
            security,
            registry,
            http_requests,
            http_latency,
            component_ops,
            component_latency,
            invocations_sent,
            invocations_received,
            pubsub_ingress,
            pubsub_ingress_bulk,
            pubsub_ingress_bulk_events,
            input_bindings,
            health_probes,
            health_probe_latency,
            output_bindings,
        })
    }

    pub fn http_request(&self, method: &str, path: &str, status: u16, took: Duration) {
        let status = status.to_string();
        let labels = [method, path, status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_latency
            .with_label_values(&labels)
            .observe(ms(took));
    }

    pub fn state_op(&self, component: &str, operation: &str, success: bool, took: Duration) {
        let labels = [component, operation, if success { "true" } else { "false" }];
        self.component_ops.with_label_values(&labels).inc();
        self.component_latency
            .with_label_values(&labels)
            .observe(ms(took));
    }

    /// One delivery outcome (`success`, `retry`, `drop`); topics come from configuration, so the
    /// label stays bounded.
    pub fn pubsub_ingress(&self, component: &str, topic: &str, status: &str) {
        self.pubsub_ingress
            .with_label_values(&[component, topic, status])
            .inc();
    }

    /// One bulk request to the app.
    pub fn pubsub_ingress_bulk(&self, component: &str, topic: &str) {
        self.pubsub_ingress_bulk
            .with_label_values(&[component, topic])
            .inc();
    }

    /// `count` entries of bulk requests that ended with `status` (success, retry, drop).
    pub fn pubsub_ingress_bulk_entries(
        &self,
        component: &str,
        topic: &str,
        status: &str,
        count: u64,
    ) {
        self.pubsub_ingress_bulk_events
            .with_label_values(&[component, topic, status])
            .inc_by(count);
    }

    /// One app health probe that ended with `status` (an HTTP status, `timeout` or `error`).
    pub fn app_health_probe(&self, status: &str, took: Duration) {
        self.health_probes.with_label_values(&[status]).inc();
        self.health_probe_latency
            .with_label_values(&[status])
            .observe(ms(took));
    }

    pub fn input_binding(&self, component: &str, success: bool) {
        self.input_bindings
            .with_label_values(&[component, if success { "true" } else { "false" }])
            .inc();
    }

    pub fn output_binding(&self, component: &str, operation: &str, success: bool) {
        self.output_bindings
            .with_label_values(&[component, operation, if success { "true" } else { "false" }])
            .inc();
    }

    pub fn invocation_sent(&self, dst_app_id: &str) {
        self.invocations_sent
            .with_label_values(&[dst_app_id, "http"])
            .inc();
    }

    pub fn invocation_received(&self, src_app_id: &str) {
        self.invocations_received
            .with_label_values(&[src_app_id])
            .inc();
    }

    /// The registry, for metrics kept by other modules (the trace export counters).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn actors(&self) -> &crate::actors::metrics::ActorMetrics {
        &self.actors
    }

    pub fn security(&self) -> &crate::security::metrics::SecurityMetrics {
        &self.security
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_dapr_names_with_app_id() {
        let m = Metrics::new("order").expect("metrics");
        m.http_request(
            "GET",
            "/v1.0/state/{store}/{key}",
            200,
            Duration::from_millis(3),
        );
        m.state_op("statestore", "get", true, Duration::from_millis(1));
        let text = m.render();
        let counted = text.lines().any(|l| {
            l.starts_with("dapr_http_server_request_count{")
                && [
                    "app_id=\"order\"",
                    "method=\"GET\"",
                    "path=\"/v1.0/state/{store}/{key}\"",
                    "status=\"200\"",
                ]
                .iter()
                .all(|p| l.contains(p))
                && l.ends_with(" 1")
        });
        assert!(counted, "{text}");
        assert!(text.contains("dapr_component_state_count"));
        assert!(text.contains("process_resident_memory_bytes"));
    }
}
