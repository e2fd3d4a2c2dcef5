//! Pure translations between what the sidecar has (an HTTP invocation, a CloudEvent, a binding
//! event) and the `AppCallback` messages a gRPC app expects, following daprd: an invocation's
//! verb and query go in `http_extension`, headers become metadata (permanent HTTP header names
//! prefixed `dapr-`), and an app's error status becomes the HTTP status daprd gives it with the
//! status as JSON; a CloudEvent's fields are split out, its data decoded by content type, and
//! the fields that are not CloudEvent attributes travel as `extensions`.

use super::{BulkEventDelivery, EventDelivery, Outcome};
use crate::channels::hop_by_hop::strip_hop_by_hop;
use crate::channels::permanent_headers::{dapr_prefixed, is_permanent};
use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;
use std::collections::BTreeMap;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

/// daprd's HTTP status for a gRPC code (`HTTPStatusFromCode`).
pub fn http_status(code: tonic::Code) -> u16 {
    use tonic::Code as C;
    match code {
        C::Ok => 200,
        C::Cancelled => 408,
        C::InvalidArgument | C::FailedPrecondition | C::OutOfRange => 400,
        C::DeadlineExceeded => 504,
        C::NotFound => 404,
        C::AlreadyExists | C::Aborted => 409,
        C::PermissionDenied => 403,
        C::Unauthenticated => 401,
        C::ResourceExhausted => 429,
        C::Unimplemented => 501,
        C::Unavailable => 503,
        C::Unknown | C::Internal | C::DataLoss => 500,
    }
}

fn verb(method: &Method) -> common::http_extension::Verb {
    use common::http_extension::Verb as V;
    match *method {
        Method::GET => V::Get,
        Method::HEAD => V::Head,
        Method::POST => V::Post,
        Method::PUT => V::Put,
        Method::DELETE => V::Delete,
        Method::CONNECT => V::Connect,
        Method::OPTIONS => V::Options,
        Method::TRACE => V::Trace,
        Method::PATCH => V::Patch,
        _ => V::None,
    }
}

/// An invocation (its URI holds the method path and query) as `OnInvoke`'s request and metadata.
pub fn invoke_request(
    parts: &http::request::Parts,
    body: Bytes,
) -> (common::InvokeRequest, MetadataMap) {
    let path = parts.uri.path().trim_start_matches('/');
    let method = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    let mut metadata = MetadataMap::new();
    for (name, value) in &headers {
        let name = match name.as_str() {
            "content-length" | "content-type" | "host" => continue,
            n if n.starts_with("grpc-") || n.starts_with(':') => continue,
            _ if is_permanent(name) => match dapr_prefixed(name) {
                Some(prefixed) => prefixed,
                None => continue,
            },
            _ => name.clone(),
        };
        if let Some(bin) = name.as_str().strip_suffix("-bin") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(value.as_bytes());
            if let (Ok(key), Ok(bytes)) = (
                tonic::metadata::BinaryMetadataKey::from_bytes(format!("{bin}-bin").as_bytes()),
                decoded,
            ) {
                metadata.append_bin(key, MetadataValue::from_bytes(&bytes));
            }
        } else if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(name.as_str().as_bytes()),
            MetadataValue::try_from(value.as_bytes()),
        ) {
            metadata.append(key, value);
        }
    }
    let request = common::InvokeRequest {
        method,
        data: Some(prost_types::Any {
            type_url: String::new(),
            value: body.to_vec(),
        }),
        content_type,
        http_extension: Some(common::HttpExtension {
            verb: verb(&parts.method) as i32,
            querystring: parts.uri.query().unwrap_or_default().to_owned(),
        }),
    };
    (request, metadata)
}

/// The app's answer to `OnInvoke` as an HTTP response: 200 with the data and its content type,
/// or daprd's status for the error code with the status as JSON.
pub fn invoke_response(
    answer: Result<tonic::Response<common::InvokeResponse>, tonic::Status>,
) -> Response<Body> {
    match answer {
        Ok(answer) => {
            let (metadata, message, _) = answer.into_parts();
            let mut response = Response::new(Body::from(
                message.data.map(|d| d.value).unwrap_or_default(),
            ));
            let headers = response.headers_mut();
            for (name, value) in metadata.into_headers().iter() {
                if name.as_str().starts_with("grpc-") || name == header::CONTENT_TYPE {
                    continue;
                }
                headers.append(name.clone(), value.clone());
            }
            if let Ok(ct) = HeaderValue::from_str(&message.content_type)
                && !message.content_type.is_empty()
            {
                headers.insert(header::CONTENT_TYPE, ct);
            }
            response
        }
        Err(status) => {
            let body = serde_json::json!({
                "code": status.code() as i32,
                "message": status.message(),
                "details": [],
            });
            let mut response = Response::new(Body::from(body.to_string()));
            *response.status_mut() = StatusCode::from_u16(http_status(status.code()))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

/// The CloudEvent attributes `OnTopicEvent` carries in fields of its own.
const ATTRIBUTES: &[&str] = &[
    "id",
    "source",
    "type",
    "specversion",
    "datacontenttype",
    "data",
    "data_base64",
];

fn text(event: &Value, key: &str) -> String {
    event
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The event's data as bytes, decoded as daprd decodes it: `data_base64` as bytes, text for a
/// text or XML content type, the JSON text otherwise.
fn event_data(event: &Value, content_type: &str) -> Vec<u8> {
    if let Some(b64) = event.get("data_base64").and_then(Value::as_str) {
        return base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap_or_default();
    }
    match event.get("data") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s))
            if content_type.starts_with("text/") || content_type.contains("xml") =>
        {
            s.as_bytes().to_vec()
        }
        Some(data) => serde_json::to_vec(data).unwrap_or_default(),
    }
}

/// A JSON value as a protobuf `Value`.
fn proto_value(v: Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(proto_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.into_iter().map(|(k, v)| (k, proto_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A CloudEvent's attributes, its decoded data and its extensions.
fn cloud_event_request(cloud_event: &Value) -> rt::TopicEventCeRequest {
    let content_type = text(cloud_event, "datacontenttype");
    let extensions = cloud_event.as_object().map(|map| prost_types::Struct {
        fields: map
            .iter()
            .filter(|(k, _)| !ATTRIBUTES.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), proto_value(v.clone())))
            .collect(),
    });
    rt::TopicEventCeRequest {
        id: text(cloud_event, "id"),
        source: text(cloud_event, "source"),
        r#type: text(cloud_event, "type"),
        spec_version: text(cloud_event, "specversion"),
        data: event_data(cloud_event, &content_type),
        data_content_type: content_type,
        extensions,
    }
}

/// What a `TopicEventResponse` status means for the message: an unknown status is retried.
pub fn topic_outcome(status: i32) -> Outcome {
    use rt::topic_event_response::TopicEventResponseStatus as S;
    match S::try_from(status) {
        Ok(S::Success) => Outcome::Success,
        Ok(S::Drop) => Outcome::Drop,
        Ok(S::Retry) | Err(_) => Outcome::Retry,
    }
}

/// A pub/sub event (a serialised CloudEvent) as `OnTopicEvent`'s request.
pub fn topic_request(event: &EventDelivery<'_>) -> rt::TopicEventRequest {
    let cloud_event: Value = serde_json::from_slice(&event.body).unwrap_or(Value::Null);
    let ce = cloud_event_request(&cloud_event);
    rt::TopicEventRequest {
        id: ce.id,
        source: ce.source,
        r#type: ce.r#type,
        spec_version: ce.spec_version,
        data_content_type: ce.data_content_type,
        data: if cloud_event.is_object() {
            ce.data
        } else {
            event.body.to_vec()
        },
        // daprd: the topic the message came on, not the CloudEvent's (a dead-lettered event
        // keeps its original topic attribute).
        topic: event.topic.to_owned(),
        pubsub_name: event.pubsub.to_owned(),
        path: event.path.to_owned(),
        extensions: ce.extensions,
    }
}

/// A batch (Dapr's bulk envelope, serialised) as `OnBulkTopicEventAlpha1`'s request: each
/// CloudEvent entry split into its fields, each raw entry (base64 in the envelope) as bytes.
pub fn bulk_request(batch: &BulkEventDelivery<'_>) -> rt::TopicEventBulkRequest {
    use rt::topic_event_bulk_request_entry::Event;
    let envelope: Value = serde_json::from_slice(&batch.body).unwrap_or(Value::Null);
    let string_map = |v: Option<&Value>| {
        v.and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let entries = envelope
        .get("entries")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|entry| {
                    let event = match entry.get("event") {
                        Some(Value::String(b64)) => Event::Bytes(
                            base64::engine::general_purpose::STANDARD
                                .decode(b64)
                                .unwrap_or_default(),
                        ),
                        Some(ce) => Event::CloudEvent(cloud_event_request(ce)),
                        None => Event::Bytes(Vec::new()),
                    };
                    rt::TopicEventBulkRequestEntry {
                        entry_id: text(entry, "entryId"),
                        content_type: text(entry, "contentType"),
                        metadata: string_map(entry.get("metadata")),
                        event: Some(event),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    rt::TopicEventBulkRequest {
        id: text(&envelope, "id"),
        entries,
        metadata: string_map(envelope.get("metadata")),
        topic: text(&envelope, "topic"),
        pubsub_name: batch.pubsub.to_owned(),
        r#type: text(&envelope, "type"),
        path: batch.path.to_owned(),
    }
}

/// Each entry's outcome from the app's bulk answer, as for HTTP apps: SUCCESS and DROP as
/// given, anything else (RETRY, no status, an unknown id) retried.
pub fn bulk_outcomes(answer: &rt::TopicEventBulkResponse, entry_ids: &[String]) -> Vec<Outcome> {
    use rt::topic_event_response::TopicEventResponseStatus as S;
    entry_ids
        .iter()
        .map(|id| {
            let status = answer
                .statuses
                .iter()
                .find(|s| s.entry_id == *id)
                .map(|s| S::try_from(s.status));
            match status {
                Some(Ok(S::Success)) => Outcome::Success,
                Some(Ok(S::Drop)) => Outcome::Drop,
                _ => Outcome::Retry,
            }
        })
        .collect()
}

/// An input binding's event as `OnBindingEvent`'s request.
pub fn binding_request(
    name: &str,
    data: Bytes,
    metadata: &BTreeMap<String, String>,
) -> rt::BindingEventRequest {
    rt::BindingEventRequest {
        name: name.trim_start_matches('/').to_owned(),
        data: data.to_vec(),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
