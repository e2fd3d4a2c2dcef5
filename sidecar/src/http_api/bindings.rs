//! `POST|PUT /v1.0/bindings/{name}`: invokes an output binding with `{operation, data, metadata}`.
//! `data` reaches the component serialised to JSON again (a JSON string keeps its quotes), as in
//! Dapr; the answer is 200 with the component's data, or 204 without, and the component's
//! metadata comes back as `metadata.<key>` headers, on errors too.

use super::Shared;
use super::body::JsonBody;
use super::error::metadata_headers;
use super::object::Obj;
use super::path::ApiPath;
use crate::blocks::bindings::{OutputRequest, TraceContext};
use crate::blocks::error::BlockError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use std::collections::BTreeMap;

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

impl From<OutputBindingRequest> for OutputRequest {
    fn from(req: OutputBindingRequest) -> OutputRequest {
        OutputRequest {
            operation: req.operation,
            data: match req.data {
                None | Some(serde_json::Value::Null) => None,
                Some(value) => Some(Bytes::from(value.to_string())),
            },
            metadata: req.metadata,
        }
    }
}

fn trace_context(headers: &HeaderMap) -> TraceContext {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    TraceContext {
        traceparent: get("traceparent"),
        tracestate: get("tracestate"),
        baggage: get("baggage"),
    }
}

pub async fn invoke(
    State(sc): State<Shared>,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    JsonBody(Obj(req)): JsonBody<Obj<OutputBindingRequest>>,
) -> Result<Response, BlockError> {
    let answer = sc
        .bindings()
        .invoke(&name, req.into(), &trace_context(&headers))
        .await?;
    let headers = metadata_headers(&answer.metadata);
    Ok(match answer.data {
        Some(data) if !data.is_empty() => (StatusCode::OK, headers, data).into_response(),
        _ => (StatusCode::NO_CONTENT, headers).into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> OutputRequest {
        serde_json::from_str::<OutputBindingRequest>(body)
            .expect("valid request")
            .into()
    }

    #[test]
    fn data_is_serialised_again() {
        let req = request(r#"{"operation":"create","data":"hi","metadata":{"key":"a"}}"#);
        assert_eq!(req.operation, "create");
        assert_eq!(req.data.as_deref(), Some(&br#""hi""#[..]));
        assert_eq!(req.metadata["key"], "a");
    }

    #[test]
    fn absent_or_null_data_is_none_and_objects_stay_json() {
        assert!(request(r#"{"operation":"get"}"#).data.is_none());
        assert!(request(r#"{"data":null}"#).data.is_none());
        let obj = request(r#"{"data":{"a":[1,2]}}"#);
        assert_eq!(obj.data.as_deref(), Some(&br#"{"a":[1,2]}"#[..]));
    }

    #[test]
    fn metadata_values_must_be_strings() {
        let err = serde_json::from_str::<OutputBindingRequest>(r#"{"metadata":{"n":1}}"#);
        assert!(err.is_err());
    }

    #[test]
    fn trace_headers_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert("baggage", http::HeaderValue::from_static("k=v"));
        let trace = trace_context(&headers);
        assert_eq!(trace.baggage.as_deref(), Some("k=v"));
        assert!(trace.traceparent.is_none());
    }
}
