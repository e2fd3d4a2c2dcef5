//! `InvokeBinding` over [`crate::blocks::bindings`]: `{name, operation, data, metadata}` to the
//! output binding, the caller's `traceparent`/`tracestate`/`baggage` metadata as its trace
//! context; the component's data and metadata come back (its metadata also rides on errors, in
//! the `ErrorInfo`). Data is bytes here and reaches the component as sent.

use super::{Shared, metadata_text};
use crate::blocks::bindings::{OutputRequest, TraceContext};
use bytes::Bytes;
use dapr::dapr::proto::runtime::v1 as runtime;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

fn trace_context(metadata: &MetadataMap) -> TraceContext {
    TraceContext {
        traceparent: metadata_text(metadata, "traceparent"),
        tracestate: metadata_text(metadata, "tracestate"),
        baggage: metadata_text(metadata, "baggage"),
    }
}

/// The block's request; empty data is no data, as in daprd.
fn output_request(req: runtime::InvokeBindingRequest) -> OutputRequest {
    OutputRequest {
        operation: req.operation,
        data: (!req.data.is_empty()).then(|| Bytes::from(req.data)),
        metadata: req.metadata.into_iter().collect(),
    }
}

pub async fn invoke(
    sc: &Shared,
    request: Request<runtime::InvokeBindingRequest>,
) -> Result<Response<runtime::InvokeBindingResponse>, Status> {
    let trace = trace_context(request.metadata());
    let req = request.into_inner();
    let name = req.name.clone();
    let answer = sc
        .bindings()
        .invoke(&name, output_request(req), &trace)
        .await?;
    Ok(Response::new(runtime::InvokeBindingResponse {
        data: answer.data.map(|d| d.to_vec()).unwrap_or_default(),
        metadata: answer.metadata.into_iter().collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn requests_keep_bytes_and_metadata() {
        let req = output_request(runtime::InvokeBindingRequest {
            name: "files".into(),
            data: b"\"hi\"".to_vec(),
            metadata: HashMap::from([("fileName".to_owned(), "a.txt".to_owned())]),
            operation: "create".into(),
        });
        assert_eq!(req.operation, "create");
        assert_eq!(req.data.as_deref(), Some(&b"\"hi\""[..]));
        assert_eq!(req.metadata["fileName"], "a.txt");
        let empty = output_request(runtime::InvokeBindingRequest::default());
        assert!(empty.data.is_none());
    }

    #[test]
    fn trace_context_comes_from_call_metadata() {
        let mut md = MetadataMap::new();
        md.insert("baggage", "k=v".parse().expect("ascii"));
        let trace = trace_context(&md);
        assert_eq!(trace.baggage.as_deref(), Some("k=v"));
        assert!(trace.traceparent.is_none());
    }
}
