//! The server span of every request on the three front ends (the HTTP API, the gRPC API and the
//! internal port), named and attributed as daprd names them. The span's context rides the
//! request's future, so the blocks below start their spans under it; the response carries the
//! span's `traceparent` (`grpc-trace-bin` on gRPC), as daprd's does.

use super::{context, spans};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderMap;
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use tandem_crds::annotations::headers as dapr_headers;

/// A span's name and attributes, decided from the request line alone.
#[derive(Debug, PartialEq)]
pub struct Named {
    pub name: String,
    pub attributes: Vec<KeyValue>,
}

fn kv(key: &'static str, value: &str) -> KeyValue {
    KeyValue::new(key, value.to_owned())
}

fn invocation(app_id: &str, method: &str) -> (String, Vec<KeyValue>) {
    (
        format!("CallLocal/{app_id}/{method}"),
        vec![
            kv("rpc.service", "ServiceInvocation"),
            kv("net.peer.name", app_id),
            kv("dapr.invoke_method", method),
        ],
    )
}

fn actor(segments: &[&str]) -> (String, Vec<KeyValue>) {
    // /v1.0/actors/{type}/{id}/{what}/...
    match segments {
        [actor_type, id, "method", method @ ..] => {
            let method = method.join("/");
            (
                format!("CallActor/{actor_type}/{method}"),
                vec![
                    kv("dapr.actor", &format!("{actor_type}.{id}")),
                    kv("rpc.service", "ServiceInvocation"),
                    kv("net.peer.name", &format!("{actor_type}.{id}")),
                ],
            )
        }
        [actor_type, id, what, ..] => {
            let mut attributes = vec![kv("dapr.actor", &format!("{actor_type}.{id}"))];
            if *what == "state" {
                attributes.push(kv("db.system", "state"));
            }
            (format!("{what}/{actor_type}"), attributes)
        }
        _ => (String::new(), Vec::new()),
    }
}

/// Whether an HTTP API request gets a span: not health checks, which daprd does not trace.
pub fn is_traced(path: &str) -> bool {
    !path.contains("/healthz")
}

/// The span for an HTTP API request that [`is_traced`].
pub fn http_api_span(method: &str, path: &str, app_id_header: Option<&str>) -> Named {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (name, mut attributes) = match segments.as_slice() {
        [_, "invoke", app_id, "method", method @ ..] => invocation(app_id, &method.join("/")),
        [_, "actors", rest @ ..] => actor(rest),
        [_, "state", store, ..] => (
            path.to_owned(),
            vec![kv("db.system", "state"), kv("db.name", store)],
        ),
        [_, "publish", "bulk", pubsub, topic @ ..] | [_, "publish", pubsub, topic @ ..] => (
            path.to_owned(),
            vec![
                kv("messaging.system", "pubsub"),
                kv("messaging.destination.name", &topic.join("/")),
                kv("dapr.component", pubsub),
            ],
        ),
        [_, "bindings", name] => (
            path.to_owned(),
            vec![kv("db.system", "bindings"), kv("db.name", name)],
        ),
        [_, "secrets", store, ..] => (
            path.to_owned(),
            vec![kv("db.system", "secrets"), kv("db.name", store)],
        ),
        _ => match app_id_header {
            Some(app_id) => invocation(app_id, path.trim_start_matches('/')),
            None => (path.to_owned(), Vec::new()),
        },
    };
    let name = if name.is_empty() {
        path.to_owned()
    } else {
        name
    };
    attributes.extend([
        kv("dapr.protocol", "http"),
        kv("dapr.api", &format!("{method} {path}")),
        kv("http.request.method", method),
        kv("url.path", path),
    ]);
    Named { name, attributes }
}

/// The span for a call on the internal port: an invocation of this app, or an actor call
/// another host forwarded.
pub fn internal_span(path: &str, headers: &HeaderMap) -> Named {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let caller = header(dapr_headers::CALLER_APP_ID);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (name, mut attributes) = match segments.as_slice() {
        [_, "actors", rest @ ..] => actor(rest),
        _ => {
            let callee = header(dapr_headers::CALLEE_APP_ID);
            let (name, mut attributes) = invocation(callee, path.trim_start_matches('/'));
            attributes.push(kv("dapr.callee_app_id", callee));
            (name, attributes)
        }
    };
    attributes.push(kv("dapr.caller_app_id", caller));
    Named { name, attributes }
}

/// The span for a gRPC API call: the full method, as daprd names it.
pub fn grpc_api_span(path: &str) -> Named {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    Named {
        name: path.to_owned(),
        attributes: vec![
            kv("rpc.system", "grpc"),
            kv("rpc.service", service),
            kv("rpc.method", method),
            kv("dapr.protocol", "grpc"),
        ],
    }
}

/// Renames the current server span `CallLocal/<app>/<method>` (the gRPC front end learns the
/// target only from the message).
pub fn name_invocation(app_id: &str, method: &str) {
    let cx = Context::current();
    let span = cx.span();
    let (name, attributes) = invocation(app_id, method);
    span.update_name(name);
    span.set_attributes(attributes);
}

async fn traced<Answer: Future<Output = Response>>(
    req: Request,
    inner: impl FnOnce(Request) -> Answer,
    named: impl FnOnce(&Request) -> Named,
    parent: Context,
    grpc: bool,
) -> Response {
    let cx = spans::start(&parent, SpanKind::Server, || {
        let named = named(&req);
        (named.name.into(), named.attributes)
    });
    let mut response = inner(req).with_context(cx.clone()).await;
    let headers = response.headers_mut();
    if grpc {
        context::inject_grpc(&cx, headers);
        finish_grpc(&cx, headers);
    } else {
        context::inject_http(&cx, headers);
        spans::finish_http(&cx, response.status().as_u16());
    }
    response
}

/// Ends a gRPC call's span with its status. A trailers-only answer (every error) carries its
/// status in the headers.
fn finish_grpc(cx: &Context, headers: &HeaderMap) {
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0");
    span.set_attribute(KeyValue::new("rpc.grpc.status_code", code.to_owned()));
    if code != "0" {
        let message = headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        span.set_status(Status::error(format!("gRPC {code}: {message}")));
    }
    span.end();
}

/// The HTTP API's server span (`--dapr-http-port`) around `inner`, the rest of the request.
pub async fn http_api<Answer: Future<Output = Response>>(
    req: Request,
    inner: impl FnOnce(Request) -> Answer,
) -> Response {
    if !is_traced(req.uri().path()) {
        return inner(req).await;
    }
    let parent = context::extract_http(req.headers());
    let named = |req: &Request| {
        let path = req.uri().path();
        let app_id = req
            .headers()
            .get(dapr_headers::APP_ID)
            .and_then(|v| v.to_str().ok());
        http_api_span(req.method().as_str(), path, app_id)
    };
    traced(req, inner, named, parent, false).await
}

/// Middleware for the internal (sidecar-to-sidecar) port.
pub async fn internal(req: Request, next: Next) -> Response {
    let grpc = is_grpc(req.headers());
    let parent = context::extract_grpc(req.headers());
    let named = |req: &Request| internal_span(req.uri().path(), req.headers());
    traced(req, |req| next.run(req), named, parent, grpc).await
}

/// Middleware for the gRPC API (`--dapr-grpc-port`).
pub async fn grpc_api(req: Request, next: Next) -> Response {
    let parent = context::extract_grpc(req.headers());
    let named = |req: &Request| grpc_api_span(req.uri().path());
    traced(req, |req| next.run(req), named, parent, true).await
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

#[cfg(test)]
mod tests;
