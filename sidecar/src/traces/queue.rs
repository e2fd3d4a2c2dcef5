//! A bound on the spans waiting for export, and counters for the spans lost. The SDK's batch
//! processor also bounds its queue but only logs what it drops; this gate in front of it counts
//! each span it refuses (`queue_full`) and each span whose export failed (`export_failed`) in the
//! sidecar's Prometheus registry, so a dead or slow collector shows up on a dashboard while
//! requests never wait for it.

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use prometheus::{IntCounterVec, Opts, Registry};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The spans one exporter may hold, waiting or being exported.
pub const MAX_QUEUED_SPANS: usize = 2048;

/// `tandem_trace_spans_dropped_total{exporter, reason}` and `tandem_trace_spans_exported_total{exporter}`.
#[derive(Clone, Debug)]
pub struct TraceMetrics {
    dropped: IntCounterVec,
    exported: IntCounterVec,
}

impl TraceMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let dropped = IntCounterVec::new(
            Opts::new(
                "tandem_trace_spans_dropped_total",
                "Spans not exported: the export queue was full, or the export failed",
            ),
            &["exporter", "reason"],
        )?;
        let exported = IntCounterVec::new(
            Opts::new(
                "tandem_trace_spans_exported_total",
                "Spans the collector accepted",
            ),
            &["exporter"],
        )?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(exported.clone()))?;
        Ok(TraceMetrics { dropped, exported })
    }
}

/// Shared between the gate and the exporter it feeds: spans accepted but not yet handed to an
/// export.
#[derive(Debug, Clone)]
struct Pending(Arc<AtomicUsize>);

/// A span processor that passes at most `capacity` waiting spans to `inner` and drops (and
/// counts) the rest.
#[derive(Debug)]
pub struct BoundedQueue<P> {
    inner: P,
    pending: Pending,
    capacity: usize,
    name: &'static str,
    metrics: TraceMetrics,
}

/// The exporter side of a [`BoundedQueue`]: frees the queue slots of each batch it exports and
/// counts the outcome.
#[derive(Debug)]
pub struct CountedExporter<E> {
    inner: E,
    pending: Pending,
    name: &'static str,
    metrics: TraceMetrics,
}

/// The two ends of one exporter's bound, before the batch processor between them exists.
pub struct Gate {
    pending: Pending,
    name: &'static str,
    metrics: TraceMetrics,
}

/// Wraps `exporter` so that it frees queue slots, and returns the gate that takes them.
pub fn counted<E: SpanExporter>(
    exporter: E,
    name: &'static str,
    metrics: &TraceMetrics,
) -> (CountedExporter<E>, Gate) {
    let pending = Pending(Arc::new(AtomicUsize::new(0)));
    let exporter = CountedExporter {
        inner: exporter,
        pending: pending.clone(),
        name,
        metrics: metrics.clone(),
    };
    let gate = Gate {
        pending,
        name,
        metrics: metrics.clone(),
    };
    (exporter, gate)
}

impl Gate {
    /// Puts the gate in front of the batch processor that feeds the counted exporter.
    pub fn around<P: SpanProcessor>(self, inner: P, capacity: usize) -> BoundedQueue<P> {
        BoundedQueue {
            inner,
            pending: self.pending,
            capacity,
            name: self.name,
            metrics: self.metrics,
        }
    }
}

impl<P: SpanProcessor> SpanProcessor for BoundedQueue<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.pending.0.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.pending.0.fetch_sub(1, Ordering::AcqRel);
            self.metrics
                .dropped
                .with_label_values(&[self.name, "queue_full"])
                .inc();
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: SpanExporter> SpanExporter for CountedExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        self.pending.0.fetch_sub(n, Ordering::AcqRel);
        let result = self.inner.export(batch).await;
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        match &result {
            Ok(()) => self
                .metrics
                .exported
                .with_label_values(&[self.name])
                .inc_by(n),
            Err(_) => self
                .metrics
                .dropped
                .with_label_values(&[self.name, "export_failed"])
                .inc_by(n),
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests;
