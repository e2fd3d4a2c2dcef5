//! The callee side, on the internal port: accept only requests meant for this app, then call the
//! app with its own `APP_API_TOKEN`.

use super::headers::to_app_headers;
use super::stream_back;
use crate::error::ApiError;
use crate::runtime::SharedRuntime;
use axum::extract::{Request, State};
use axum::response::Response;
use tandem_crds::annotations::headers as dapr;

pub async fn serve(
    State(rt): State<SharedRuntime>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let callee = req
        .headers()
        .get(dapr::CALLEE_APP_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if callee != rt.app_id {
        return Err(ApiError::internal(
            "ERR_DIRECT_INVOKE",
            format!("this sidecar serves app {:?}, not {callee:?}", rt.app_id),
        ));
    }
    if let Some(caller) = req
        .headers()
        .get(dapr::CALLER_APP_ID)
        .and_then(|v| v.to_str().ok())
    {
        rt.metrics.invocation_received(caller);
    }
    let app = rt.app.as_ref().ok_or_else(|| {
        ApiError::internal(
            "ERR_DIRECT_INVOKE",
            format!("app {} has no app port to invoke", rt.app_id),
        )
    })?;
    to_app_headers(req.headers_mut(), rt.app_token.as_ref());
    // h2 requests carry the authority in the URI; the app gets HTTP/1.1 with its own Host.
    req.headers_mut().remove(http::header::HOST);
    *req.version_mut() = http::Version::HTTP_11;
    let response = app.send(req).await.map_err(|e| {
        ApiError::internal(
            "ERR_DIRECT_INVOKE",
            format!("failed to invoke app {}: {e}", rt.app_id),
        )
    })?;
    Ok(stream_back(response))
}
