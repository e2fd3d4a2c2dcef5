//! The publishing side of pub/sub: the body becomes a CloudEvent (or goes as it is with
//! `metadata.rawPayload=true`) and is handed to the broker; `Ok` once the broker holds it. Bulk
//! publish does the same per entry and reports the entries that failed.

use super::Sidecar;
use super::error::{BlockError, Code};
use crate::components::pubsub::{Message, PubSub};
use crate::components::registry::Lookup;
use crate::pubsub::cloudevent::{self, PublishInput};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One publish.
#[derive(Debug, Clone, Default)]
pub struct Publish {
    pub data: Bytes,
    pub content_type: Option<String>,
    /// Request metadata (`rawPayload`, `ttlInSeconds`, …), passed to the broker.
    pub metadata: BTreeMap<String, String>,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// One entry of a bulk publish.
#[derive(Debug, Clone)]
pub struct BulkEntry {
    pub entry_id: String,
    pub publish: Publish,
}

/// An entry that was not published.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedEntry {
    pub entry_id: String,
    pub error: String,
}

/// The pub/sub block of one sidecar.
pub struct PubSubBlock<'a> {
    sidecar: &'a Sidecar,
}

impl Sidecar {
    pub fn pubsub(&self) -> PubSubBlock<'_> {
        PubSubBlock { sidecar: self }
    }
}

/// Where a publish goes.
struct Target<'a> {
    pubsub: &'a str,
    topic: &'a str,
}

/// A producer span under the request's span (or under the publish's own `traceparent` when the
/// request has none); the CloudEvent carries the producer span's context, so the subscriber's
/// work joins this trace.
fn traced(pubsub: &str, topic: &str, mut publish: Publish) -> (opentelemetry::Context, Publish) {
    use opentelemetry::trace::TraceContextExt;
    let current = opentelemetry::Context::current();
    let parent = match current.span().span_context().is_valid() {
        true => current,
        false => crate::traces::context::from_traceparent(
            publish.traceparent.as_deref(),
            publish.tracestate.as_deref(),
        ),
    };
    let cx = crate::traces::spans::publish(&parent, pubsub, topic);
    if let Some((traceparent, tracestate)) = crate::traces::context::traceparent(&cx) {
        publish.traceparent = Some(traceparent);
        publish.tracestate = tracestate.or(publish.tracestate);
    }
    (cx, publish)
}

/// `/v1.0/publish/{pubsub}` with no topic: Dapr's error.
pub fn topic_empty(pubsub: &str) -> BlockError {
    BlockError::new(
        Code::TopicNameEmpty,
        format!("topic is empty in pubsub {pubsub}"),
    )
}

impl PubSubBlock<'_> {
    /// The named pubsub, or Dapr's error for a missing, unknown or unready one.
    pub fn broker(&self, pubsub: &str) -> Result<Arc<dyn PubSub>, BlockError> {
        let registry = self.sidecar.registry();
        let (_, broker) = registry.pubsub(pubsub).map_err(|why| match why {
            Lookup::NoneConfigured => {
                BlockError::new(Code::PubsubNotConfigured, "no pubsub is configured")
            }
            Lookup::NotFound => BlockError::new(
                Code::PubsubNotFound,
                format!("pubsub {pubsub} is not found"),
            ),
            Lookup::NotReady(status) => BlockError::new(
                Code::PubsubNotReady,
                format!("pubsub {pubsub} is not ready: {status:?}"),
            ),
        })?;
        Ok(Arc::clone(broker))
    }

    /// What a publish carries: the body itself with rawPayload, else its CloudEvent.
    fn message_data(&self, to: &Target<'_>, publish: &Publish) -> Result<Bytes, BlockError> {
        let raw = cloudevent::is_raw_payload(&publish.metadata)
            .map_err(|e| BlockError::new(Code::PubsubRequestMetadata, e.to_string()))?;
        if raw {
            return Ok(publish.data.clone());
        }
        let input = PublishInput {
            pubsub: to.pubsub,
            topic: to.topic,
            source_app: self.sidecar.app_id(),
            body: &publish.data,
            content_type: publish.content_type.as_deref(),
            traceparent: publish.traceparent.as_deref(),
            tracestate: publish.tracestate.as_deref(),
            metadata: &publish.metadata,
            now: time::OffsetDateTime::now_utc(),
        };
        let event = cloudevent::envelope(&input).map_err(|e| {
            BlockError::new(
                Code::PubsubMarshalEnvelope,
                format!("error when marshalling the cloud event envelope: {e}"),
            )
        })?;
        serde_json::to_vec(&event)
            .map(Bytes::from)
            .map_err(|e| BlockError::new(Code::PubsubCloudEventsSer, e.to_string()))
    }

    async fn send(
        broker: &Arc<dyn PubSub>,
        to: &Target<'_>,
        data: Bytes,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), BlockError> {
        let message = Message {
            topic: to.topic.to_owned(),
            data,
            metadata,
        };
        broker.publish(message).await.map_err(|e| {
            BlockError::new(
                Code::PubsubPublishMessage,
                format!(
                    "error when publishing to topic {} in pubsub {}: {e}",
                    to.topic, to.pubsub
                ),
            )
        })
    }

    pub async fn publish(
        &self,
        pubsub: &str,
        topic: &str,
        publish: Publish,
    ) -> Result<(), BlockError> {
        let broker = self.broker(pubsub)?;
        if topic.is_empty() {
            return Err(topic_empty(pubsub));
        }
        let to = Target { pubsub, topic };
        let (cx, publish) = traced(pubsub, topic, publish);
        let started = std::time::Instant::now();
        let outcome = match self.message_data(&to, &publish) {
            Ok(data) => Self::send(&broker, &to, data, publish.metadata).await,
            Err(e) => Err(e),
        };
        self.sidecar.metrics().components().publish(
            pubsub,
            topic,
            outcome.is_ok(),
            started.elapsed(),
        );
        crate::traces::spans::finish(&cx, outcome.as_ref().map(|_| ()).map_err(|e| &e.message));
        outcome
    }

    /// Publishes every entry (ids must be present and unique); returns those that failed.
    pub async fn bulk_publish(
        &self,
        pubsub: &str,
        topic: &str,
        entries: Vec<BulkEntry>,
    ) -> Result<Vec<FailedEntry>, BlockError> {
        let broker = self.broker(pubsub)?;
        if topic.is_empty() {
            return Err(topic_empty(pubsub));
        }
        let mut ids = std::collections::HashSet::new();
        for entry in &entries {
            if entry.entry_id.is_empty() || !ids.insert(entry.entry_id.as_str()) {
                return Err(BlockError::new(
                    Code::PubsubUnmarshalEvents,
                    format!("entryId {:?} is missing or not unique", entry.entry_id),
                ));
            }
        }
        let to = Target { pubsub, topic };
        let mut failed = Vec::new();
        let (started, total) = (std::time::Instant::now(), entries.len());
        for BulkEntry { entry_id, publish } in entries {
            let (cx, publish) = traced(pubsub, topic, publish);
            let outcome = match self.message_data(&to, &publish) {
                Ok(data) => Self::send(&broker, &to, data, publish.metadata).await,
                Err(e) => Err(e),
            };
            crate::traces::spans::finish(&cx, outcome.as_ref().map(|_| ()).map_err(|e| &e.message));
            if let Err(e) = outcome {
                failed.push(FailedEntry {
                    entry_id,
                    error: e.message,
                });
            }
        }
        let published = u64::try_from(total - failed.len()).unwrap_or(0);
        self.sidecar.metrics().components().bulk_publish(
            pubsub,
            topic,
            failed.is_empty(),
            published,
            started.elapsed(),
        );
        Ok(failed)
    }
}
