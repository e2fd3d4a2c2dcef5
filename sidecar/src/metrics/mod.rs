//! Prometheus metrics with Dapr's names, labels, units and buckets (`dapr_*`; Tandem's own
//! additions are `tandem_*`). Every series carries the sidecar's `app_id`. Labels are bounded by
//! default: HTTP paths only with `increasedCardinality` or through `pathMatching` patterns
//! ([`settings`], [`labels`]), gRPC methods only when they exist, component and app names from
//! configuration. Each front end and channel records in one place: [`http::record_server`] and
//! [`grpc::record_server`] (middleware), [`http::HttpMetrics::client_call`] (the HTTP clients)
//! and [`grpc::MeasuredChannel`] (the gRPC app channel). Label handles for a series are looked
//! up without allocating once the series exists.

pub mod body;
pub mod components;
pub mod grpc;
pub mod http;
pub mod invocation;
pub mod labels;
pub mod settings;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use settings::MetricSettings;
use std::sync::Arc;
use std::time::Duration;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> Result<HistogramVec, prometheus::Error> {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> Result<Histogram, prometheus::Error> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

/// The sidecar's metrics.
#[derive(Clone)]
pub struct Metrics {
    settings: Arc<MetricSettings>,
    registry: Registry,
    http: Arc<http::HttpMetrics>,
    grpc: Arc<grpc::GrpcMetrics>,
    components: components::ComponentMetrics,
    invocation: invocation::InvocationMetrics,
    actors: crate::actors::metrics::ActorMetrics,
    security: crate::security::metrics::SecurityMetrics,
}

impl Metrics {
    /// Metrics with Dapr's defaults (tests).
    pub fn new(app_id: &str) -> Result<Self, prometheus::Error> {
        Metrics::with_settings(app_id, None, MetricSettings::default())
    }

    pub fn with_settings(
        app_id: &str,
        namespace: Option<&str>,
        settings: MetricSettings,
    ) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(
            None,
            Some([("app_id".to_owned(), app_id.to_owned())].into()),
        )?;
        let buckets = &settings.latency_buckets_ms;
        if settings.enabled {
            // process_resident_memory_bytes, CPU seconds, open fds.
            registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))?;
        }
        Ok(Metrics {
            http: Arc::new(http::HttpMetrics::new(&registry, &settings)?),
            grpc: Arc::new(grpc::GrpcMetrics::new(&registry, &settings)?),
            components: components::ComponentMetrics::new(
                &registry,
                namespace.unwrap_or_default(),
                buckets,
            )?,
            invocation: invocation::InvocationMetrics::new(&registry, buckets)?,
            actors: crate::actors::metrics::ActorMetrics::new(&registry, buckets)?,
            security: crate::security::metrics::SecurityMetrics::new(&registry)?,
            settings: Arc::new(settings),
            registry,
        })
    }

    /// Whether metrics are kept at all (`spec.metric.enabled`).
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    pub fn http(&self) -> &Arc<http::HttpMetrics> {
        &self.http
    }

    pub fn grpc(&self) -> &Arc<grpc::GrpcMetrics> {
        &self.grpc
    }

    pub fn components(&self) -> &components::ComponentMetrics {
        &self.components
    }

    pub fn invocation(&self) -> &invocation::InvocationMetrics {
        &self.invocation
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

    /// The Prometheus text exposition (empty when metrics are off).
    pub fn render(&self) -> String {
        if !self.enabled() {
            return String::new();
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
