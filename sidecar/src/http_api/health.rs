//! `/v1.0/healthz`, `/v1.0/healthz/outbound` and `/v1.0/shutdown`.

use super::Shared;
use super::query::query_param;
use crate::blocks::error::BlockError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};

/// 204 once components have settled and the app channel is up.
pub async fn healthz(State(sc): State<Shared>, uri: Uri) -> Result<StatusCode, BlockError> {
    let asked = query_param(uri.query(), "appid");
    sc.health().ready(asked.as_deref())?;
    Ok(StatusCode::NO_CONTENT)
}

/// 204 once components have settled; the app need not be up (SDKs call this before listening).
pub async fn outbound(State(sc): State<Shared>) -> Result<StatusCode, BlockError> {
    sc.health().outbound_ready()?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1.0/shutdown`: answers, then shuts down gracefully; `dapr-force-shutdown: true` exits
/// at once with code 1.
pub async fn shutdown(State(sc): State<Shared>, headers: HeaderMap) -> StatusCode {
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
        sc.health().shutdown();
    });
    StatusCode::NO_CONTENT
}
