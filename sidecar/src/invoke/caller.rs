//! The caller side: `ANY /v1.0/invoke/{id}/method/{method…}` and the `dapr-app-id` header on any
//! other path.

use super::headers::{CallIdentity, outbound_headers, to_app_headers};
use super::peer_error;
use super::{
    method::normalize_method, stream_back, target::parse_target, target::split_invoke_path,
};
use crate::error::ApiError;
use crate::resolve::ResolveError;
use crate::runtime::SharedRuntime;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::Uri;
use http_body::Body as _;
use http_body_util::BodyExt;
use std::sync::{Arc, OnceLock};
use tandem_crds::annotations::headers as dapr;

/// Bodies up to this size are buffered so that a refused connection can be retried elsewhere.
const REPLAYABLE_BODY: u64 = 64 * 1024;

fn invoke_error(app_id: &str, err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(
        "ERR_DIRECT_INVOKE",
        format!("failed to invoke, id: {app_id}, err: {err}"),
    )
}

/// Why the client's request body failed while it was being forwarded, if it did.
type BodyFault = Arc<OnceLock<ApiError>>;

/// Wraps the client's body so that a failure of *its* stream (cut short, or over
/// `--max-body-size`) is recorded: such a forward is the client's error (400/413), not the
/// callee's (500), whatever the transport makes of the broken stream.
fn watch_body(body: Body, limit: u64) -> (Body, BodyFault) {
    let fault = BodyFault::default();
    let recorder = fault.clone();
    let watched = body.map_err(move |e| {
        let _ = recorder.set(crate::api::body::read_error(&e, limit));
        e
    });
    (Body::new(watched), fault)
}

fn forward_error(
    app_id: &str,
    err: &hyper_util::client::legacy::Error,
    fault: &BodyFault,
) -> ApiError {
    match fault.get() {
        Some(client_fault) => client_fault.clone(),
        None => invoke_error(app_id, peer_error::describe(err)),
    }
}

/// The target and the method of a request: from the invoke path, else the `dapr-app-id` header
/// (then the whole path is the method).
fn target_and_method(req: &Request) -> Result<(String, String), ApiError> {
    let path = req.uri().path();
    if let Some((id, method)) = split_invoke_path(path) {
        return Ok((id.to_owned(), method.to_owned()));
    }
    let header = req
        .headers()
        .get(dapr::APP_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    match header {
        Some(id) => Ok((id.to_owned(), path.trim_start_matches('/').to_owned())),
        None => Err(ApiError::new(
            http::StatusCode::NOT_FOUND,
            "ERR_DIRECT_INVOKE",
            "failed getting app id either from the URL path or the header dapr-app-id",
        )),
    }
}

/// Forwards an invocation to the target app's sidecar, or straight to the local app when the
/// target is this app.
pub async fn invoke(State(rt): State<SharedRuntime>, req: Request) -> Result<Response, ApiError> {
    let (raw_target, raw_method) = target_and_method(&req)?;
    let target = parse_target(&raw_target).map_err(|e| invoke_error(&raw_target, e))?;
    let method = normalize_method(&raw_method)
        .map_err(|e| ApiError::bad_request("ERR_DIRECT_INVOKE", format!("invalid method: {e}")))?;
    let path_and_query = match req.uri().query() {
        Some(q) => format!("/{method}?{q}"),
        None => format!("/{method}"),
    };
    let (mut parts, body) = req.into_parts();
    let (body, fault) = watch_body(body, rt.max_body_size);
    outbound_headers(
        &mut parts.headers,
        &CallIdentity {
            caller_app_id: &rt.app_id,
            caller_namespace: rt.namespace.as_deref(),
            callee_app_id: &target.app_id,
        },
    );
    parts.headers.remove(http::header::HOST);
    let own_namespace = target.namespace.is_none() || target.namespace == rt.namespace;
    if target.app_id == rt.app_id && own_namespace {
        let app = rt
            .app
            .as_ref()
            .ok_or_else(|| invoke_error(&target.app_id, "this app has no app port"))?;
        to_app_headers(&mut parts.headers, rt.app_token.as_ref());
        parts.uri = path_and_query
            .parse::<Uri>()
            .map_err(|e| invoke_error(&target.app_id, e))?;
        let response = app
            .send(Request::from_parts(parts, body))
            .await
            .map_err(|e| forward_error(&target.app_id, &e, &fault))?;
        return Ok(stream_back(response));
    }

    rt.metrics.invocation_sent(&target.app_id);
    // A request whose body is small and of known length is buffered, so it can be sent again
    // when a peer address refuses the connection (a pod going away); a streamed body cannot be
    // replayed and goes through as it comes.
    let small = body
        .size_hint()
        .exact()
        .is_some_and(|length| length <= REPLAYABLE_BODY);
    let (buffered, mut body) = if small {
        let collected = body.collect().await.map_err(|e| {
            fault
                .get()
                .cloned()
                .unwrap_or_else(|| invoke_error(&target.app_id, e))
        })?;
        (Some(collected.to_bytes()), None)
    } else {
        (None, Some(body))
    };
    let replayable = buffered.is_some() || body.as_ref().is_some_and(|b| b.is_end_stream());
    let mut attempts = 0;
    loop {
        attempts += 1;
        let addr = rt
            .resolver
            .resolve(&target.app_id, target.namespace.as_deref())
            .await
            .map_err(|e| match e {
                ResolveError::NotFound(_) => invoke_error(&target.app_id, "app id not found"),
                other => invoke_error(&target.app_id, other),
            })?;
        let uri = Uri::builder()
            .scheme("http")
            .authority(addr.to_string())
            .path_and_query(path_and_query.as_str())
            .build()
            .map_err(|e| invoke_error(&target.app_id, e))?;
        let outbound_body = match &buffered {
            Some(bytes) => Body::from(bytes.clone()),
            None => body.take().unwrap_or_else(Body::empty),
        };
        let mut outbound = http::Request::new(outbound_body);
        *outbound.method_mut() = parts.method.clone();
        *outbound.uri_mut() = uri;
        *outbound.headers_mut() = parts.headers.clone();
        match rt.peers.request(outbound).await {
            Ok(response) => return Ok(stream_back(response)),
            // A peer that refused the connection, or is going away and did not take the
            // request: another address gets it (when the body can be sent again).
            Err(e) if e.is_connect() || peer_error::unprocessed(&e) => {
                rt.resolver.forget(&target.app_id, addr);
                if !(replayable && attempts < 3) {
                    return Err(forward_error(&target.app_id, &e, &fault));
                }
                tracing::debug!(app = %target.app_id, %addr, error = %peer_error::describe(&e), "the peer did not take the request; trying again");
            }
            Err(e) => return Err(forward_error(&target.app_id, &e, &fault)),
        }
    }
}
