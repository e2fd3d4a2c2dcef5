//! The caller side of service invocation on the API port: `ANY /v1.0/invoke/{id}/method/{method…}`
//! and the `dapr-app-id` header on any other path, over [`crate::blocks::invoke`].

use super::Shared;
use super::body::read_error;
use crate::blocks::error::{BlockError, Code};
use crate::blocks::invoke::Invocation;
use crate::blocks::invoke::target::split_invoke_path;
use crate::channels::header_names as names;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http_body_util::BodyExt;
use std::sync::{Arc, OnceLock};

/// Why the client's request body failed while it was being forwarded, if it did.
type BodyFault = Arc<OnceLock<BlockError>>;

/// Wraps the client's body so that a failure of *its* stream (cut short, or over
/// `--max-body-size`) is recorded: such a forward is the client's error (400/413), not the
/// callee's (500), whatever the transport makes of the broken stream.
fn watch_body(body: Body, limit: u64) -> (Body, BodyFault) {
    let fault = BodyFault::default();
    let recorder = fault.clone();
    let watched = body.map_err(move |e| {
        let _ = recorder.set(read_error(&e, limit));
        e
    });
    (Body::new(watched), fault)
}

/// The target and the method of a request: from the invoke path, else the `dapr-app-id` header
/// (then the whole path is the method).
fn target_and_method(req: &Request) -> Result<(String, String), BlockError> {
    let path = req.uri().path();
    if let Some((id, method)) = split_invoke_path(path) {
        return Ok((id.to_owned(), method.to_owned()));
    }
    let header = req
        .headers()
        .get(&names::APP_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    match header {
        Some(id) => Ok((id.to_owned(), path.trim_start_matches('/').to_owned())),
        None => Err(BlockError::new(
            Code::DirectInvokeNoAppId,
            "failed getting app id either from the URL path or the header dapr-app-id",
        )),
    }
}

/// Forwards an invocation to the target app's sidecar, or straight to the local app.
pub async fn invoke(State(sc): State<Shared>, req: Request) -> Result<Response, BlockError> {
    let (target, method) = target_and_method(&req)?;
    let (parts, body) = req.into_parts();
    let (body, fault) = watch_body(body, sc.max_body_size());
    let invocation = Invocation {
        target,
        method,
        request: Request::from_parts(parts, body),
    };
    sc.invoke()
        .call(invocation)
        .await
        .map_err(|e| fault.get().cloned().unwrap_or(e))
}
