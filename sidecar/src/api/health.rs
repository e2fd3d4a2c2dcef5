//! `/v1.0/healthz`, `/v1.0/healthz/outbound` and `/v1.0/shutdown`.

use crate::error::ApiError;
use crate::runtime::SharedRuntime;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};

/// 204 once components have settled and the app channel is up.
pub async fn healthz(State(rt): State<SharedRuntime>, uri: Uri) -> Result<StatusCode, ApiError> {
    if let Some(asked) = super::state_request::query_param(uri.query(), "appid")
        && asked != rt.app_id
    {
        return Err(ApiError::internal(
            "ERR_HEALTH_APPID_NOT_MATCH",
            format!("dapr app-id does not match: {asked} != {}", rt.app_id),
        ));
    }
    let mut waiting = Vec::new();
    if !rt.registry().settled() {
        waiting.push("components");
    }
    if !rt.app_ready() {
        waiting.push("app-channel");
    }
    if waiting.is_empty() {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::internal(
            "ERR_HEALTH_NOT_READY",
            format!("dapr is not ready: {waiting:?}"),
        ))
    }
}

/// 204 once components have settled; the app need not be up (SDKs call this before listening).
pub async fn outbound(State(rt): State<SharedRuntime>) -> Result<StatusCode, ApiError> {
    if rt.registry().settled() {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::internal(
            "ERR_OUTBOUND_HEALTH_NOT_READY",
            "dapr outbound is not ready: [components]",
        ))
    }
}

/// `POST /v1.0/shutdown`: answers, then shuts down gracefully; `dapr-force-shutdown: true` exits
/// at once with code 1.
pub async fn shutdown(State(rt): State<SharedRuntime>, headers: HeaderMap) -> StatusCode {
    let force = headers
        .get("dapr-force-shutdown")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    tokio::spawn(async move {
        // Let the 204 reach the client first.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if force {
            tracing::warn!("forced shutdown requested");
            std::process::exit(1);
        }
        rt.shutdown.cancel();
    });
    StatusCode::NO_CONTENT
}
