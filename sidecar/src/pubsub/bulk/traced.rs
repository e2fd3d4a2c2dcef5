//! Bulk delivery as daprd traces it: every entry whose CloudEvent carries a context
//! (`traceparent`, else `traceid`) gets a consumer span `pubsub/<topic>`, a child of that
//! context, so each publisher's trace shows its own delivery; entries without one get no span.
//! The request to the app names the last entry's span (daprd's choice), and since one request
//! mixes traces, that span also links to the other entries' spans. Each span ends with its own
//! entry's outcome.

use crate::channels::app::{Outcome, Unreachable};
use crate::pubsub::delivery::outcome_status;
use crate::traces::{context, spans};
use opentelemetry::Context;
use opentelemetry::trace::{Link, TraceContextExt};
use serde_json::Value;

/// The spans of one bulk request, one slot per entry in the request's order.
pub struct BatchSpans {
    spans: Vec<Option<Context>>,
}

/// The trace context an entry's event carries; `None` for a raw payload or an event without
/// a valid `traceparent`/`traceid`.
pub fn entry_context(event: &Value) -> Option<Context> {
    let text = |key: &str| event.get(key).and_then(Value::as_str);
    let traceparent = text("traceparent").or_else(|| text("traceid"))?;
    let cx = context::from_traceparent(Some(traceparent), text("tracestate"));
    cx.span().span_context().is_valid().then_some(cx)
}

impl BatchSpans {
    /// Starts the spans for a request carrying `events` (one per entry) to `route`.
    pub fn start<'a>(
        events: impl ExactSizeIterator<Item = &'a Value>,
        (pubsub, topic, route): (&str, &str, &str),
    ) -> BatchSpans {
        let size = events.len();
        let parents: Vec<Option<Context>> = events.map(entry_context).collect();
        let last = parents.iter().rposition(Option::is_some);
        let mut spans: Vec<Option<Context>> = Vec::with_capacity(size);
        for (i, parent) in parents.iter().enumerate() {
            let Some(parent) = parent else {
                spans.push(None);
                continue;
            };
            let links = || match Some(i) == last {
                true => spans
                    .iter()
                    .flatten()
                    .map(|cx| Link::with_context(cx.span().span_context().clone()))
                    .collect(),
                false => Vec::new(),
            };
            let target = (pubsub, topic, route);
            let span = spans::bulk_delivery(parent, target, size, links);
            spans.push(Some(span));
        }
        BatchSpans { spans }
    }

    /// The `traceparent` the app's request carries: the last traced entry's span.
    pub fn traceparent(&self) -> Option<String> {
        let last = self.spans.iter().rev().flatten().next()?;
        context::traceparent(last).map(|(traceparent, _)| traceparent)
    }

    /// Ends each span with its entry's outcome (`outcomes` in the entries' order).
    pub fn finish(self, outcomes: Result<&[Outcome], &Unreachable>) {
        for (i, cx) in self.spans.iter().enumerate() {
            let Some(cx) = cx else { continue };
            let status = match outcomes {
                Ok(outcomes) => outcomes
                    .get(i)
                    .map_or(Err("the app gave no outcome"), outcome_status),
                Err(Unreachable) => Err("the app is unreachable"),
            };
            spans::finish(cx, status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entry_context_reads_traceparent_then_traceid() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let id = |v: &Value| entry_context(v).map(|cx| cx.span().span_context().span_id());
        let cases = [
            (json!({"traceparent": tp}), true),
            (json!({"traceid": tp}), true),
            (json!({"traceparent": "garbage"}), false),
            (json!({"data": 1}), false),
            (json!("cmF3"), false),
        ];
        for (event, traced) in cases {
            assert_eq!(id(&event).is_some(), traced, "{event}");
        }
        assert_eq!(
            id(&json!({"traceparent": tp})).map(|s| s.to_string()),
            Some("b7ad6b7169203331".to_owned())
        );
    }

    #[test]
    fn untraced_batch_has_no_traceparent() {
        let events = [json!({"data": 1}), json!("cmF3")];
        let spans = BatchSpans::start(events.iter(), ("p", "t", "/t"));
        assert_eq!(spans.traceparent(), None);
        spans.finish(Ok(&[Outcome::Success, Outcome::Success]));
    }
}
