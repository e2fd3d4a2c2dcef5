//! A Zipkin v2 JSON exporter (`POST <endpoint>` with a JSON array of spans). Written here because
//! the kept crate does not fit: `opentelemetry-zipkin` 0.33 is deprecated upstream and its spans
//! carry no `localEndpoint.serviceName`, so Zipkin and Jaeger would list every sidecar as
//! "unknown". The mapping is a pure function; the exporter only posts.

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct ZipkinExporter {
    client: reqwest::Client,
    endpoint: String,
    service: String,
}

impl ZipkinExporter {
    pub fn new(client: reqwest::Client, endpoint: &str, service: &str) -> Self {
        ZipkinExporter {
            client,
            endpoint: endpoint.to_owned(),
            service: service.to_owned(),
        }
    }
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One span in Zipkin's v2 model.
pub fn zipkin_span(span: &SpanData, service: &str) -> Value {
    let mut tags = Map::new();
    for kv in &span.attributes {
        tags.insert(kv.key.to_string(), Value::String(kv.value.to_string()));
    }
    match &span.status {
        Status::Error { description } => {
            tags.insert("otel.status_code".into(), "ERROR".into());
            tags.insert("error".into(), Value::String(description.to_string()));
        }
        Status::Ok => {
            tags.insert("otel.status_code".into(), "OK".into());
        }
        Status::Unset => {}
    }
    let mut out = json!({
        "traceId": span.span_context.trace_id().to_string(),
        "id": span.span_context.span_id().to_string(),
        "name": span.name,
        "timestamp": micros(span.start_time),
        "duration": micros(span.end_time).saturating_sub(micros(span.start_time)).max(1),
        "localEndpoint": {"serviceName": service},
        "tags": tags,
    });
    let kind = match span.span_kind {
        SpanKind::Server => Some("SERVER"),
        SpanKind::Client => Some("CLIENT"),
        SpanKind::Producer => Some("PRODUCER"),
        SpanKind::Consumer => Some("CONSUMER"),
        SpanKind::Internal => None,
    };
    if let (Some(kind), Some(obj)) = (kind, out.as_object_mut()) {
        obj.insert("kind".into(), kind.into());
    }
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID
        && let Some(obj) = out.as_object_mut()
    {
        obj.insert("parentId".into(), span.parent_span_id.to_string().into());
    }
    out
}

impl SpanExporter for ZipkinExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans: Vec<Value> = batch
            .iter()
            .map(|s| zipkin_span(s, &self.service))
            .collect();
        let response = self
            .client
            .post(&self.endpoint)
            .json(&spans)
            .send()
            .await
            .map_err(|e| OTelSdkError::InternalFailure(format!("zipkin: {e}")))?;
        match response.status().is_success() {
            true => Ok(()),
            false => Err(OTelSdkError::InternalFailure(format!(
                "zipkin answered {}",
                response.status()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::Duration;

    #[test]
    fn spans_map_to_zipkin_v2() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let span = SpanData {
            span_context: SpanContext::new(
                TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").expect("hex"),
                SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from_hex("b7ad6b7169203331").expect("hex"),
            parent_span_is_remote: true,
            span_kind: SpanKind::Client,
            name: "CallLocal/b/orders".into(),
            start_time: start,
            end_time: start + Duration::from_millis(3),
            attributes: vec![KeyValue::new("net.peer.name", "b")],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::error("HTTP 503"),
            instrumentation_scope: Default::default(),
        };
        let z = zipkin_span(&span, "a");
        assert_eq!(z["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(z["id"], "00f067aa0ba902b7");
        assert_eq!(z["parentId"], "b7ad6b7169203331");
        assert_eq!(z["kind"], "CLIENT");
        assert_eq!(z["timestamp"], 1_700_000_000_000_000u64);
        assert_eq!(z["duration"], 3000);
        assert_eq!(z["localEndpoint"]["serviceName"], "a");
        assert_eq!(z["tags"]["net.peer.name"], "b");
        assert_eq!(z["tags"]["error"], "HTTP 503");
        let root = SpanData {
            parent_span_id: SpanId::INVALID,
            span_kind: SpanKind::Internal,
            ..span
        };
        let z = zipkin_span(&root, "a");
        assert!(
            z.get("parentId").is_none() && z.get("kind").is_none(),
            "{z}"
        );
    }
}
