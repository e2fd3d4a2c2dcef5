//! `POST|PUT /v1.0/publish/{pubsub}/{topic…}`: wraps the body in a CloudEvent (or sends it as is
//! with `metadata.rawPayload=true`) and hands it to the broker; 204 once the broker holds it.
//! Bulk publish (`/v1.0-alpha1/publish/bulk/…`) does the same per entry.

use super::body::RawBody;
use super::path::ApiPath;
use super::state_request::query_metadata;
use crate::components::pubsub::{Message, PubSub};
use crate::components::registry::Lookup;
use crate::error::ApiError;
use crate::pubsub::cloudevent::{self, PublishInput};
use crate::runtime::SharedRuntime;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use tandem_crds::annotations::headers as dapr;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

fn broker(rt: &SharedRuntime, pubsub: &str) -> Result<Arc<dyn PubSub>, ApiError> {
    let registry = rt.registry();
    let (_, broker) = registry.pubsub(pubsub).map_err(|why| match why {
        Lookup::NoneConfigured => {
            ApiError::bad_request("ERR_PUBSUB_NOT_CONFIGURED", "no pubsub is configured")
                .with_reason("DAPR_PUBSUB_NOT_CONFIGURED")
        }
        Lookup::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_NOT_FOUND",
            format!("pubsub {pubsub} is not found"),
        )
        .with_reason("DAPR_PUBSUB_NOT_FOUND"),
        Lookup::NotReady(status) => ApiError::internal(
            "ERR_PUBSUB_NOT_CONFIGURED",
            format!("pubsub {pubsub} is not ready: {status:?}"),
        ),
    })?;
    Ok(Arc::clone(broker))
}

fn topic_empty(pubsub: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ERR_TOPIC_NAME_EMPTY",
        format!("topic is empty in pubsub {pubsub}"),
    )
    .with_reason("DAPR_PUBSUB_TOPIC_NAME_EMPTY")
}

/// Where and what to publish.
struct Target<'a> {
    pubsub: &'a str,
    topic: &'a str,
}

/// What a publish carries: the body itself with rawPayload, else its CloudEvent.
fn message_data(
    rt: &SharedRuntime,
    to: &Target<'_>,
    body: Bytes,
    content_type: Option<&str>,
    headers: &HeaderMap,
    metadata: &BTreeMap<String, String>,
) -> Result<Bytes, ApiError> {
    let raw = cloudevent::is_raw_payload(metadata).map_err(|e| {
        ApiError::bad_request("ERR_PUBSUB_REQUEST_METADATA", e.to_string())
            .with_reason("DAPR_PUBSUB_METADATA_DESERIALIZATION")
    })?;
    if raw {
        return Ok(body);
    }
    let input = PublishInput {
        pubsub: to.pubsub,
        topic: to.topic,
        source_app: &rt.app_id,
        body: &body,
        content_type,
        traceparent: header(headers, dapr::TRACEPARENT),
        tracestate: header(headers, dapr::TRACESTATE),
        metadata,
        now: time::OffsetDateTime::now_utc(),
    };
    let event = cloudevent::envelope(&input).map_err(|e| {
        ApiError::bad_request(
            "ERR_PUBSUB_EVENTS_SER",
            format!("error when marshalling the cloud event envelope: {e}"),
        )
        .with_reason("DAPR_PUBSUB_MARSHAL_ENVELOPE")
    })?;
    serde_json::to_vec(&event)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal("ERR_PUBSUB_CLOUD_EVENTS_SER", e.to_string()))
}

async fn send(
    broker: &Arc<dyn PubSub>,
    to: &Target<'_>,
    data: Bytes,
    metadata: BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let message = Message {
        topic: to.topic.to_owned(),
        data,
        metadata,
    };
    broker.publish(message).await.map_err(|e| {
        ApiError::internal(
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            format!(
                "error when publishing to topic {} in pubsub {}: {e}",
                to.topic, to.pubsub
            ),
        )
        .with_reason("DAPR_PUBSUB_PUBLISH_MESSAGE")
    })
}

/// `POST|PUT /v1.0/publish/{pubsub}/{topic…}`
pub async fn publish(
    State(rt): State<SharedRuntime>,
    ApiPath((pubsub, topic)): ApiPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    let broker = broker(&rt, &pubsub)?;
    if topic.is_empty() {
        return Err(topic_empty(&pubsub));
    }
    let to = Target {
        pubsub: &pubsub,
        topic: &topic,
    };
    let metadata = query_metadata(uri.query());
    let data = message_data(
        &rt,
        &to,
        body,
        header(&headers, "content-type"),
        &headers,
        &metadata,
    )?;
    send(&broker, &to, data, metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `/v1.0/publish/{pubsub}` without a topic.
pub async fn no_topic(ApiPath(pubsub): ApiPath<String>) -> ApiError {
    topic_empty(&pubsub)
}

/// One entry of a bulk publish. Go's JSON decoding ignores case, and @dapr/dapr sends `entryID`.
#[derive(Debug, serde::Deserialize)]
pub struct BulkEntry {
    #[serde(alias = "entryID", alias = "entryid", rename = "entryId", default)]
    pub entry_id: String,
    #[serde(default)]
    pub event: serde_json::Value,
    #[serde(alias = "contenttype", rename = "contentType", default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// The bytes of an entry's event: strings as they are unless the type is JSON, anything else as JSON.
fn entry_body(entry: &BulkEntry) -> Bytes {
    let json_type = entry
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.contains("json"));
    match &entry.event {
        serde_json::Value::String(s) if !json_type => Bytes::from(s.clone()),
        other => Bytes::from(other.to_string()),
    }
}

/// `POST|PUT /v1.0-alpha1/publish/bulk/{pubsub}/{topic…}`: every entry is published; the answer
/// lists the entries that failed.
pub async fn bulk(
    State(rt): State<SharedRuntime>,
    ApiPath((pubsub, topic)): ApiPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    super::body::JsonBody(entries): super::body::JsonBody<Vec<super::object::Obj<BulkEntry>>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let broker = broker(&rt, &pubsub)?;
    if topic.is_empty() {
        return Err(topic_empty(&pubsub));
    }
    let request_md = query_metadata(uri.query());
    let mut ids = std::collections::HashSet::new();
    for super::object::Obj(entry) in &entries {
        if entry.entry_id.is_empty() || !ids.insert(entry.entry_id.as_str()) {
            return Err(ApiError::bad_request(
                "ERR_PUBSUB_EVENTS_SER",
                format!("entryId {:?} is missing or not unique", entry.entry_id),
            )
            .with_reason("DAPR_PUBSUB_UNMARSHAL_EVENTS"));
        }
    }
    let mut failed = Vec::new();
    for super::object::Obj(entry) in entries {
        let mut metadata = request_md.clone();
        metadata.extend(entry.metadata.clone());
        let to = Target {
            pubsub: &pubsub,
            topic: &topic,
        };
        let ct = entry
            .content_type
            .as_deref()
            .filter(|c| !c.is_empty())
            .or(Some("application/json"));
        let outcome = match message_data(&rt, &to, entry_body(&entry), ct, &headers, &metadata) {
            Ok(data) => send(&broker, &to, data, metadata).await,
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            failed.push(serde_json::json!({ "entryId": entry.entry_id, "error": e.message }));
        }
    }
    if failed.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let body =
        serde_json::json!({ "failedEntries": failed, "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE" });
    Ok((StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response())
}
