//! `POST|PUT /v1.0/publish/{pubsub}/{topic…}` and bulk publish (`/v1.0-alpha1/publish/bulk/…`,
//! `/v1.0/publish/bulk/…`) over [`crate::blocks::pubsub`]: 204 once the broker holds the message.

use super::Shared;
use super::body::{JsonBody, RawBody};
use super::object::Obj;
use super::path::ApiPath;
use super::query::query_metadata;
use crate::blocks::error::BlockError;
use crate::blocks::pubsub::{self as block, Publish};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::collections::BTreeMap;
use tandem_crds::annotations::headers as dapr;

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `POST|PUT /v1.0/publish/{pubsub}/{topic…}`
pub async fn publish(
    State(sc): State<Shared>,
    ApiPath((pubsub, topic)): ApiPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<StatusCode, BlockError> {
    let publish = Publish {
        data: body,
        content_type: header(&headers, "content-type"),
        metadata: query_metadata(uri.query()),
        traceparent: header(&headers, dapr::TRACEPARENT),
        tracestate: header(&headers, dapr::TRACESTATE),
    };
    sc.pubsub().publish(&pubsub, &topic, publish).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `/v1.0/publish/{pubsub}` without a topic.
pub async fn no_topic(ApiPath(pubsub): ApiPath<String>) -> BlockError {
    block::topic_empty(&pubsub)
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
    State(sc): State<Shared>,
    ApiPath((pubsub, topic)): ApiPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    JsonBody(entries): JsonBody<Vec<Obj<BulkEntry>>>,
) -> Result<Response, BlockError> {
    let request_md = query_metadata(uri.query());
    let entries = entries
        .into_iter()
        .map(|Obj(entry)| {
            let mut metadata = request_md.clone();
            metadata.extend(entry.metadata.clone());
            let content_type = entry
                .content_type
                .clone()
                .filter(|c| !c.is_empty())
                .or_else(|| Some("application/json".to_owned()));
            block::BulkEntry {
                publish: Publish {
                    data: entry_body(&entry),
                    content_type,
                    metadata,
                    traceparent: header(&headers, dapr::TRACEPARENT),
                    tracestate: header(&headers, dapr::TRACESTATE),
                },
                entry_id: entry.entry_id,
            }
        })
        .collect();
    let failed = sc.pubsub().bulk_publish(&pubsub, &topic, entries).await?;
    if failed.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let failed: Vec<_> = failed
        .into_iter()
        .map(|f| serde_json::json!({ "entryId": f.entry_id, "error": f.error }))
        .collect();
    let body =
        serde_json::json!({ "failedEntries": failed, "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE" });
    Ok((StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response())
}
