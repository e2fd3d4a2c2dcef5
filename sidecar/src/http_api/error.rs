//! Where a [`BlockError`] becomes an HTTP answer: Dapr's JSON `{"errorCode": …, "message": …}`
//! (plus `details` with an `ErrorInfo` when Dapr sends a kit error) with the status of the code
//! table, and the failing component's metadata as `metadata.<key>` headers.

use crate::blocks::error::{BlockError, Code};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::BTreeMap;

/// The JSON body of an error.
pub fn body(err: &BlockError) -> serde_json::Value {
    let spec = err.spec();
    let mut body = json!({ "errorCode": spec.error_code, "message": err.message });
    if let Some(reason) = spec.reason {
        body["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "dapr.io",
            "metadata": {},
        }]);
    }
    body
}

/// `metadata.<key>` headers; keys or values that cannot be headers are left out.
pub fn metadata_headers(metadata: &BTreeMap<String, String>) -> HeaderMap {
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

impl IntoResponse for BlockError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.spec().http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = metadata_headers(&self.metadata);
        (status, headers, axum::Json(body(&self))).into_response()
    }
}

/// A panic in a handler becomes a JSON 500, never a dropped connection.
pub fn panic_to_json(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    BlockError::new(Code::Internal, "internal error while handling the request").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kit_errors_carry_error_info() {
        let err = BlockError::new(Code::StateStoreNotFound, "state store x is not found");
        let body = body(&err);
        assert_eq!(body["errorCode"], "ERR_STATE_STORE_NOT_FOUND");
        assert_eq!(body["details"][0]["reason"], "DAPR_STATE_NOT_FOUND");
        let legacy = super::body(&BlockError::new(Code::DirectInvoke, "boom"));
        assert!(legacy.get("details").is_none());
    }

    #[test]
    fn statuses_come_from_the_table_and_metadata_becomes_headers() {
        let mut md = BTreeMap::new();
        md.insert("statusCode".to_owned(), "404".to_owned());
        md.insert("bad\nkey".to_owned(), "x".to_owned());
        let response = BlockError::new(Code::InvokeOutputBinding, "failed")
            .with_metadata(md)
            .into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["metadata.statuscode"], "404");
        let conflict = BlockError::new(Code::StateSaveEtagMismatch, "x").into_response();
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
    }
}
