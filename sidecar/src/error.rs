//! The one place where errors become HTTP responses: every error is Dapr's JSON
//! `{"errorCode": …, "message": …}` (plus `details` with an `ErrorInfo` when Dapr sends a kit
//! error), with the status Dapr uses for it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the sidecar's HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Dapr's `errorCode` (`ERR_STATE_GET`, …).
    pub code: &'static str,
    pub message: String,
    /// The `ErrorInfo` reason of Dapr's kit errors (`DAPR_STATE_NOT_FOUND`, …).
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            reason: None,
        }
    }

    /// Adds the `ErrorInfo` reason Dapr puts in `details`.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code, message)
    }

    /// A request body that is not the JSON the route expects.
    pub fn malformed(err: impl std::fmt::Display) -> Self {
        Self::bad_request(
            "ERR_MALFORMED_REQUEST",
            format!("failed deserializing HTTP body: {err}"),
        )
    }

    /// A body larger than `--max-body-size`.
    pub fn body_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ERR_BODY_TOO_LARGE",
            format!("request body exceeds the limit of {limit} bytes"),
        )
    }

    /// The JSON body of this error.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({ "errorCode": self.code, "message": self.message });
        if let Some(reason) = self.reason {
            body["details"] = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "dapr.io",
                "metadata": {},
            }]);
        }
        body
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.status.as_u16(),
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        // Lets the metrics layer count errors by code without parsing bodies.
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

/// The `errorCode` of a response, for metrics and logs.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kit_errors_carry_error_info() {
        let err = ApiError::bad_request("ERR_STATE_STORE_NOT_FOUND", "state store x is not found")
            .with_reason("DAPR_STATE_NOT_FOUND");
        let body = err.body();
        assert_eq!(body["errorCode"], "ERR_STATE_STORE_NOT_FOUND");
        assert_eq!(body["details"][0]["reason"], "DAPR_STATE_NOT_FOUND");
        let legacy = ApiError::internal("ERR_DIRECT_INVOKE", "boom").body();
        assert!(legacy.get("details").is_none());
    }
}
