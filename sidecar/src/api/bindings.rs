//! `POST|PUT /v1.0/bindings/{name}`: invokes an output binding with `{operation, data, metadata}`.
//! `data` reaches the component serialised to JSON again (a JSON string keeps its quotes), as in
//! Dapr; the answer is 200 with the component's data, or 204 without, and the component's
//! metadata comes back as `metadata.<key>` headers, on errors too.

use super::body::JsonBody;
use super::object::Obj;
use super::path::ApiPath;
use crate::components::bindings::{BindingError, InvokeRequest, InvokeResponse, OutputBinding};
use crate::error::ApiError;
use crate::invoke::trace::child_traceparent;
use crate::runtime::SharedRuntime;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The request body.
#[derive(Debug, Deserialize)]
pub struct OutputBindingRequest {
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Trace headers the runtime forwards to the component, as Dapr does.
const TRACE_HEADERS: [&str; 2] = ["tracestate", "baggage"];

pub async fn invoke(
    State(rt): State<SharedRuntime>,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    JsonBody(Obj(req)): JsonBody<Obj<OutputBindingRequest>>,
) -> Response {
    let binding = match output_binding(&rt, &name) {
        Ok(binding) => binding,
        Err(e) => return e.into_response(),
    };
    let request = to_invoke_request(req, &headers);
    let operation = request.operation.clone();
    let result = binding.invoke(request).await;
    // Bounded labels: an operation the binding does not know is counted as "unsupported".
    let op_label = if binding.operations().contains(&operation.as_str()) {
        operation.as_str()
    } else {
        "unsupported"
    };
    rt.metrics.output_binding(&name, op_label, result.is_ok());
    match result {
        Ok(answer) => success(answer),
        Err(e) => failure(&name, e),
    }
}

fn output_binding(rt: &SharedRuntime, name: &str) -> Result<Arc<dyn OutputBinding>, ApiError> {
    let not_found = || {
        ApiError::internal(
            "ERR_INVOKE_OUTPUT_BINDING",
            format!("error invoking output binding {name}: couldn't find output binding {name}"),
        )
    };
    let registry = rt.registry();
    let (slot, binding) = registry.binding(name).map_err(|_| not_found())?;
    let allowed = slot
        .planned
        .binding
        .as_ref()
        .is_none_or(|s| s.output_allowed());
    match &binding.output {
        Some(output) if allowed => Ok(output.clone()),
        _ => Err(not_found()),
    }
}

/// Builds what the component sees: `data` as JSON bytes (none when absent or `null`) and the
/// request metadata plus the trace context.
pub fn to_invoke_request(req: OutputBindingRequest, headers: &HeaderMap) -> InvokeRequest {
    let data = match req.data {
        None | Some(serde_json::Value::Null) => Bytes::new(),
        Some(value) => Bytes::from(value.to_string()),
    };
    let mut metadata = req.metadata;
    let incoming = headers.get("traceparent").and_then(|v| v.to_str().ok());
    metadata
        .entry("traceparent".to_owned())
        .or_insert_with(|| child_traceparent(incoming));
    for name in TRACE_HEADERS {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            metadata
                .entry(name.to_owned())
                .or_insert_with(|| value.to_owned());
        }
    }
    InvokeRequest {
        operation: req.operation,
        data,
        metadata,
    }
}

/// `metadata.<key>` headers; keys or values that cannot be headers are left out.
fn metadata_headers(metadata: &BTreeMap<String, String>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (key, value) in metadata {
        let name = HeaderName::try_from(format!("metadata.{key}"));
        let value = HeaderValue::from_str(value);
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.insert(name, value);
        }
    }
    headers
}

fn success(answer: InvokeResponse) -> Response {
    let headers = metadata_headers(&answer.metadata);
    match answer.data {
        Some(data) if !data.is_empty() => (StatusCode::OK, headers, data).into_response(),
        _ => (StatusCode::NO_CONTENT, headers).into_response(),
    }
}

fn failure(name: &str, e: BindingError) -> Response {
    let headers = e.metadata().map(metadata_headers).unwrap_or_default();
    let error = ApiError::internal(
        "ERR_INVOKE_OUTPUT_BINDING",
        format!("error invoking output binding {name}: {e}"),
    );
    (headers, error).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> OutputBindingRequest {
        serde_json::from_str(body).expect("valid request")
    }

    #[test]
    fn data_is_serialised_again_and_trace_context_added() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        headers.insert("baggage", HeaderValue::from_static("k=v"));
        let req = to_invoke_request(
            request(r#"{"operation":"create","data":"hi","metadata":{"key":"a"}}"#),
            &headers,
        );
        assert_eq!(req.operation, "create");
        assert_eq!(&req.data[..], br#""hi""#);
        assert_eq!(req.metadata["key"], "a");
        assert_eq!(req.metadata["baggage"], "k=v");
        assert!(
            req.metadata["traceparent"].starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
            "child of the incoming trace: {}",
            req.metadata["traceparent"]
        );
    }

    #[test]
    fn absent_or_null_data_is_empty_and_objects_stay_json() {
        let none = to_invoke_request(request(r#"{"operation":"get"}"#), &HeaderMap::new());
        assert!(none.data.is_empty());
        let null = to_invoke_request(request(r#"{"data":null}"#), &HeaderMap::new());
        assert!(null.data.is_empty());
        let obj = to_invoke_request(request(r#"{"data":{"a":[1,2]}}"#), &HeaderMap::new());
        assert_eq!(&obj.data[..], br#"{"a":[1,2]}"#);
    }

    #[test]
    fn metadata_values_must_be_strings() {
        let err = serde_json::from_str::<OutputBindingRequest>(r#"{"metadata":{"n":1}}"#);
        assert!(err.is_err());
    }

    #[test]
    fn response_metadata_becomes_headers() {
        let mut md = BTreeMap::new();
        md.insert("statusCode".to_owned(), "404".to_owned());
        md.insert("bad\nkey".to_owned(), "x".to_owned());
        let headers = metadata_headers(&md);
        assert_eq!(headers["metadata.statuscode"], "404");
        assert_eq!(headers.len(), 1);
    }
}
