//! Dapr's bulk subscribe envelope: what the app receives for a batch of events on one route.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Dapr's CloudEvent type for a bulk delivery.
pub const BULK_EVENT_TYPE: &str = "com.dapr.event.sent.bulk";
/// The content type of an entry carrying a CloudEvent.
pub const CLOUD_EVENT_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The content type of a raw-payload entry (its event is the payload in base64).
pub const RAW_CONTENT_TYPE: &str = "application/octet-stream";

/// One event of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkEntry {
    pub entry_id: String,
    /// The CloudEvent, or for a rawPayload subscription the message bytes in base64.
    pub event: Value,
    pub content_type: &'static str,
    /// The broker's metadata of the message.
    pub metadata: BTreeMap<String, String>,
}

impl BulkEntry {
    /// An entry of a CloudEvent subscription.
    pub fn cloud_event(
        entry_id: String,
        event: Value,
        metadata: BTreeMap<String, String>,
    ) -> BulkEntry {
        BulkEntry {
            entry_id,
            event,
            content_type: CLOUD_EVENT_CONTENT_TYPE,
            metadata,
        }
    }

    /// An entry of a rawPayload subscription: Dapr sends the bytes base64-encoded.
    pub fn raw(entry_id: String, data: &[u8], metadata: BTreeMap<String, String>) -> BulkEntry {
        BulkEntry {
            entry_id,
            event: Value::String(STANDARD.encode(data)),
            content_type: RAW_CONTENT_TYPE,
            metadata,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "entryId": self.entry_id,
            "event": self.event,
            "contentType": self.content_type,
            "metadata": self.metadata,
        })
    }
}

/// The envelope `{"id","type","topic","pubsubname","metadata","entries"}` for `entries`, the
/// envelope's metadata naming the pubsub as Dapr's does (`pubsubName`).
pub fn bulk_envelope<'a>(
    id: &str,
    pubsub: &str,
    topic: &str,
    entries: impl IntoIterator<Item = &'a BulkEntry>,
) -> Value {
    let mut envelope = Map::new();
    envelope.insert("id".into(), id.into());
    envelope.insert("type".into(), BULK_EVENT_TYPE.into());
    envelope.insert("topic".into(), topic.into());
    envelope.insert("pubsubname".into(), pubsub.into());
    envelope.insert("metadata".into(), json!({ "pubsubName": pubsub }));
    envelope.insert(
        "entries".into(),
        Value::Array(entries.into_iter().map(BulkEntry::to_json).collect()),
    );
    Value::Object(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_daprs_shape() {
        let ce = json!({"id": "e1", "type": "com.dapr.event.sent", "data": {"seq": 1}});
        let entries = [
            BulkEntry::cloud_event(
                "a".into(),
                ce.clone(),
                [("retained".into(), "false".into())].into(),
            ),
            BulkEntry::raw("b".into(), b"hi\x00", BTreeMap::new()),
        ];
        let envelope = bulk_envelope("batch-1", "bus", "orders", &entries);
        assert_eq!(
            envelope,
            json!({
                "id": "batch-1",
                "type": "com.dapr.event.sent.bulk",
                "topic": "orders",
                "pubsubname": "bus",
                "metadata": {"pubsubName": "bus"},
                "entries": [
                    {"entryId": "a", "event": ce, "contentType": "application/cloudevents+json", "metadata": {"retained": "false"}},
                    {"entryId": "b", "event": "aGkA", "contentType": "application/octet-stream", "metadata": {}},
                ],
            })
        );
    }
}
