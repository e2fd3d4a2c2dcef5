use super::*;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
use std::borrow::Cow;
use std::sync::Mutex;
use std::time::SystemTime;

#[derive(Debug, Default, Clone)]
struct Recorder(Arc<Mutex<Vec<SpanData>>>);

impl SpanProcessor for Recorder {
    fn on_start(&self, _: &mut Span, _: &Context) {}
    fn on_end(&self, span: SpanData) {
        self.0.lock().expect("not poisoned").push(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[derive(Debug)]
struct Collector {
    up: bool,
}

impl SpanExporter for Collector {
    async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
        match self.up {
            true => Ok(()),
            false => Err(OTelSdkError::InternalFailure("connection refused".into())),
        }
    }
}

fn span(sampled: bool) -> SpanData {
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(1u128),
            SpanId::from(1u64),
            flags,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("s"),
        start_time: SystemTime::now(),
        end_time: SystemTime::now(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: Default::default(),
    }
}

fn count(metrics: &TraceMetrics, reason: &str) -> u64 {
    metrics.dropped.with_label_values(&["otlp", reason]).get()
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_an_export_frees_slots() {
    let metrics = TraceMetrics::register(&Registry::new()).expect("fresh registry");
    let recorder = Recorder::default();
    let (exporter, gate) = counted(Collector { up: true }, "otlp", &metrics);
    let queue = gate.around(recorder.clone(), 2);
    for _ in 0..5 {
        queue.on_end(span(true));
    }
    queue.on_end(span(false));
    assert_eq!(recorder.0.lock().expect("not poisoned").len(), 2);
    assert_eq!(
        count(&metrics, "queue_full"),
        3,
        "unsampled spans are not counted"
    );
    let batch = std::mem::take(&mut *recorder.0.lock().expect("not poisoned"));
    exporter.export(batch).await.expect("collector up");
    assert_eq!(metrics.exported.with_label_values(&["otlp"]).get(), 2);
    queue.on_end(span(true));
    assert_eq!(
        recorder.0.lock().expect("not poisoned").len(),
        1,
        "slots freed"
    );
    assert_eq!(count(&metrics, "queue_full"), 3);
}

#[tokio::test]
async fn failed_exports_are_counted() {
    let metrics = TraceMetrics::register(&Registry::new()).expect("fresh registry");
    let (exporter, _gate) = counted(Collector { up: false }, "otlp", &metrics);
    assert!(exporter.export(vec![span(true), span(true)]).await.is_err());
    assert_eq!(count(&metrics, "export_failed"), 2);
}
