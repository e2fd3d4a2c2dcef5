//! `PublishEvent`, `BulkPublishEvent` and `BulkPublishEventAlpha1` over
//! [`crate::blocks::pubsub`]: the data becomes a CloudEvent (or goes raw with
//! `rawPayload=true`), with the caller's `traceparent`/`tracestate` metadata; `Ok` once the broker
//! holds it. A bulk publish answers with the entries that failed.

use super::{Shared, metadata_text};
use crate::blocks::pubsub::{BulkEntry, Publish};
use bytes::Bytes;
use dapr::dapr::proto::runtime::v1 as runtime;
use std::collections::BTreeMap;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

/// The trace context a publish carries, from the call's metadata.
struct Trace {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Trace {
    fn of(metadata: &MetadataMap) -> Trace {
        Trace {
            traceparent: metadata_text(metadata, "traceparent"),
            tracestate: metadata_text(metadata, "tracestate"),
        }
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// One bulk entry: its metadata over the request's.
fn bulk_entry(
    entry: runtime::BulkPublishRequestEntry,
    request_md: &BTreeMap<String, String>,
    trace: &Trace,
) -> BulkEntry {
    let mut metadata = request_md.clone();
    metadata.extend(entry.metadata);
    BulkEntry {
        entry_id: entry.entry_id,
        publish: Publish {
            data: Bytes::from(entry.event),
            content_type: non_empty(entry.content_type),
            metadata,
            traceparent: trace.traceparent.clone(),
            tracestate: trace.tracestate.clone(),
        },
    }
}

pub async fn publish(
    sc: &Shared,
    request: Request<runtime::PublishEventRequest>,
) -> Result<Response<()>, Status> {
    let trace = Trace::of(request.metadata());
    let req = request.into_inner();
    let publish = Publish {
        data: Bytes::from(req.data),
        content_type: non_empty(req.data_content_type),
        metadata: req.metadata.into_iter().collect(),
        traceparent: trace.traceparent,
        tracestate: trace.tracestate,
    };
    sc.pubsub()
        .publish(&req.pubsub_name, &req.topic, publish)
        .await?;
    Ok(Response::new(()))
}

/// Both bulk RPCs (the Alpha1 name is the older one).
pub async fn bulk_publish(
    sc: &Shared,
    request: Request<runtime::BulkPublishRequest>,
) -> Result<Response<runtime::BulkPublishResponse>, Status> {
    let trace = Trace::of(request.metadata());
    let req = request.into_inner();
    let request_md = req.metadata.into_iter().collect();
    let entries = req
        .entries
        .into_iter()
        .map(|entry| bulk_entry(entry, &request_md, &trace))
        .collect();
    let failed = sc
        .pubsub()
        .bulk_publish(&req.pubsub_name, &req.topic, entries)
        .await?;
    let failed_entries = failed
        .into_iter()
        .map(|f| runtime::BulkPublishResponseFailedEntry {
            entry_id: f.entry_id,
            error: f.error,
        })
        .collect();
    Ok(Response::new(runtime::BulkPublishResponse {
        failed_entries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn entry_metadata_overrides_request_metadata_and_trace_is_kept() {
        let request_md = BTreeMap::from([
            ("rawPayload".to_owned(), "true".to_owned()),
            ("ttlInSeconds".to_owned(), "5".to_owned()),
        ]);
        let trace = Trace {
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            tracestate: None,
        };
        let entry = bulk_entry(
            runtime::BulkPublishRequestEntry {
                entry_id: "1".into(),
                event: b"{\"a\":1}".to_vec(),
                content_type: String::new(),
                metadata: HashMap::from([("ttlInSeconds".to_owned(), "9".to_owned())]),
            },
            &request_md,
            &trace,
        );
        assert_eq!(entry.entry_id, "1");
        assert_eq!(&entry.publish.data[..], b"{\"a\":1}");
        assert_eq!(entry.publish.content_type, None);
        assert_eq!(entry.publish.metadata["ttlInSeconds"], "9");
        assert_eq!(entry.publish.metadata["rawPayload"], "true");
        assert_eq!(entry.publish.traceparent, trace.traceparent);
    }

    #[test]
    fn trace_comes_from_call_metadata() {
        let mut md = MetadataMap::new();
        md.insert("tracestate", "k=v".parse().expect("ascii"));
        let trace = Trace::of(&md);
        assert_eq!(trace.tracestate.as_deref(), Some("k=v"));
        assert_eq!(trace.traceparent, None);
    }
}
