//! Spans when no exporter is configured (the default: a sampling rate but nowhere to send
//! spans). Nothing can read such a span's name or attributes, only the ids it puts on the wire,
//! so [`child`] makes those ids without the SDK's span: the same trace id, flags and
//! `tracestate` the SDK's tracer would give the span (its sampler decides), a new span id, and
//! no name, attributes or span object to build and drop. Building them cost a sidecar hop
//! about 10 000 instructions (callgrind, BENCHMARKS.md).

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};
use std::sync::{PoisonError, RwLock};

/// The sampler while nothing exports; `None` while an exporter is configured (then spans are
/// the SDK's).
static SAMPLER: RwLock<Option<Sampler>> = RwLock::new(None);

/// Sets the sampler to decide unexported spans with, or `None` when spans are exported.
pub fn set(sampler: Option<Sampler>) {
    *SAMPLER.write().unwrap_or_else(PoisonError::into_inner) = sampler;
}

/// A child of `parent` carrying only its ids, as the SDK's tracer would make it with the
/// current sampler; `None` when spans are exported (or tracing is not installed), so the
/// caller builds a real span.
pub fn child(parent: &Context, kind: &SpanKind) -> Option<Context> {
    let guard = SAMPLER.read().unwrap_or_else(PoisonError::into_inner);
    let sampler = guard.as_ref()?;
    let parent_span = parent.span();
    let valid_parent = Some(parent_span.span_context()).filter(|sc| sc.is_valid());
    let trace_id =
        valid_parent.map_or_else(|| TraceId::from_bytes(rand::random()), |sc| sc.trace_id());
    let decided = sampler.should_sample(Some(parent), trace_id, "", kind, &[], &[]);
    let parent_flags = valid_parent.map_or(TraceFlags::default(), SpanContext::trace_flags);
    let flags = match decided.decision {
        SamplingDecision::RecordAndSample => parent_flags.with_sampled(true),
        SamplingDecision::RecordOnly => parent_flags.with_sampled(false),
        SamplingDecision::Drop => TraceFlags::default(),
    };
    let span_id = SpanId::from_bytes(rand::random());
    let sc = SpanContext::new(trace_id, span_id, flags, false, decided.trace_state);
    Some(parent.with_remote_span_context(sc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traces::export::sampler;
    use opentelemetry::trace::{Span, TraceState, Tracer, TracerProvider};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    fn parents() -> Vec<Context> {
        let state = TraceState::from_key_value([("vendor", "abc")]).expect("valid");
        let sc = |flags: u8, remote: bool, state: TraceState| {
            SpanContext::new(
                TraceId::from_bytes(rand::random()),
                SpanId::from_bytes(rand::random()),
                TraceFlags::new(flags),
                remote,
                state,
            )
        };
        vec![
            Context::new(),
            Context::new().with_remote_span_context(sc(0x01, true, state.clone())),
            Context::new().with_remote_span_context(sc(0x00, true, state.clone())),
            Context::new().with_remote_span_context(sc(0x03, false, TraceState::default())),
            Context::new().with_remote_span_context(sc(0x02, false, state)),
        ]
    }

    /// Against the SDK's own span, for every kind of parent and the rates whose decision does
    /// not depend on a random trace id (0, 1), plus a ratio for children of a parent.
    #[test]
    fn gives_the_ids_the_sdk_tracer_gives() {
        let _serial = crate::traces::TEST_LOCK
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for rate in [0.0, 1.0, 0.5, 0.0001] {
            let provider = SdkTracerProvider::builder()
                .with_sampler(sampler(rate))
                .build();
            let tracer = provider.tracer("test");
            set(Some(sampler(rate)));
            for parent in parents() {
                let root = !parent.span().span_context().is_valid();
                if root && rate > 0.0 && rate < 1.0 {
                    continue; // decided on a trace id that is new on each side
                }
                let sdk = tracer
                    .span_builder("name")
                    .with_kind(SpanKind::Client)
                    .start_with_context(&tracer, &parent);
                let sdk = sdk.span_context().clone();
                let ours = child(&parent, &SpanKind::Client).expect("a sampler is set");
                let ours = ours.span().span_context().clone();
                assert!(ours.is_valid() && !ours.is_remote(), "rate {rate}");
                assert_ne!(ours.span_id(), parent.span().span_context().span_id());
                assert_eq!(ours.trace_flags(), sdk.trace_flags(), "rate {rate}");
                assert_eq!(ours.trace_state(), sdk.trace_state(), "rate {rate}");
                if !root {
                    assert_eq!(ours.trace_id(), sdk.trace_id(), "rate {rate}");
                }
            }
        }
        set(None);
        assert!(child(&Context::new(), &SpanKind::Server).is_none());
    }
}
