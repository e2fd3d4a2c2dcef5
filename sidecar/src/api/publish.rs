//! `POST|PUT /v1.0/publish/{pubsub}/{topic…}`: wraps the body in a CloudEvent (or sends it as is
//! with `metadata.rawPayload=true`) and hands it to the broker; 204 once the broker holds it.

use super::body::RawBody;
use super::path::ApiPath;
use super::state_request::query_metadata;
use crate::components::pubsub::Message;
use crate::components::registry::Lookup;
use crate::error::ApiError;
use crate::pubsub::cloudevent::{self, PublishInput};
use crate::runtime::SharedRuntime;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use bytes::Bytes;
use tandem_crds::annotations::headers as dapr;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// `POST|PUT /v1.0/publish/{pubsub}/{topic…}`
pub async fn publish(
    State(rt): State<SharedRuntime>,
    ApiPath((pubsub, topic)): ApiPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    let (_, broker) = rt.registry.pubsub(&pubsub).map_err(|why| match why {
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
    if topic.is_empty() {
        return Err(topic_empty(&pubsub));
    }
    let metadata = query_metadata(uri.query());
    let metadata_error = |e: cloudevent::CloudEventError| {
        ApiError::bad_request("ERR_PUBSUB_REQUEST_METADATA", e.to_string())
            .with_reason("DAPR_PUBSUB_METADATA_DESERIALIZATION")
    };
    let data = if cloudevent::is_raw_payload(&metadata).map_err(metadata_error)? {
        body
    } else {
        let input = PublishInput {
            pubsub: &pubsub,
            topic: &topic,
            source_app: &rt.app_id,
            body: &body,
            content_type: header(&headers, "content-type"),
            traceparent: header(&headers, dapr::TRACEPARENT),
            tracestate: header(&headers, dapr::TRACESTATE),
            metadata: &metadata,
            now: time::OffsetDateTime::now_utc(),
        };
        let event = cloudevent::envelope(&input).map_err(|e| {
            ApiError::bad_request(
                "ERR_PUBSUB_EVENTS_SER",
                format!("error when marshalling the cloud event envelope: {e}"),
            )
            .with_reason("DAPR_PUBSUB_MARSHAL_ENVELOPE")
        })?;
        Bytes::from(
            serde_json::to_vec(&event)
                .map_err(|e| ApiError::internal("ERR_PUBSUB_CLOUD_EVENTS_SER", e.to_string()))?,
        )
    };
    let message = Message {
        topic: topic.clone(),
        data,
        metadata,
    };
    broker.publish(message).await.map_err(|e| {
        ApiError::internal(
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            format!("error when publishing to topic {topic} in pubsub {pubsub}: {e}"),
        )
        .with_reason("DAPR_PUBSUB_PUBLISH_MESSAGE")
    })?;
    Ok(StatusCode::NO_CONTENT)
}

fn topic_empty(pubsub: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ERR_TOPIC_NAME_EMPTY",
        format!("topic is empty in pubsub {pubsub}"),
    )
    .with_reason("DAPR_PUBSUB_TOPIC_NAME_EMPTY")
}

/// `/v1.0/publish/{pubsub}` without a topic.
pub async fn no_topic(ApiPath(pubsub): ApiPath<String>) -> ApiError {
    topic_empty(&pubsub)
}
