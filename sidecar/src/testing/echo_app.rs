//! A small real HTTP app for invocation tests. It answers every request with the request's body
//! streamed back, the status from an `x-status` header (default 200), and what it saw in
//! headers: `x-echo-method`, `x-echo-uri`, and `x-echo-header-<name>` for each request header.
//! An `x-delay-ms` header delays the answer. It records every request it got, except the
//! sidecar's `GET /dapr/subscribe` and `GET /dapr/config` (answered 404: no subscriptions, no
//! actors).

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use std::sync::{Arc, Mutex};

/// What the app saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: http::HeaderMap,
}

/// A running echo app (on the test's runtime).
pub struct EchoApp {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn echo(State(seen): State<Arc<Mutex<Vec<Seen>>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // The sidecar asks every app for its pub/sub subscriptions and its actor configuration;
    // this app has neither (404).
    if parts.uri.path() == "/dapr/subscribe" || parts.uri.path() == "/dapr/config" {
        return StatusCode::NOT_FOUND.into_response();
    }
    seen.lock().unwrap_or_else(|p| p.into_inner()).push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers.clone(),
    });
    let delay = parts
        .headers
        .get("x-delay-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = delay {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let status = parts
        .headers
        .get("x-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        "x-echo-method",
        HeaderValue::from_str(parts.method.as_str()).unwrap_or(HeaderValue::from_static("?")),
    );
    if let Ok(v) = HeaderValue::from_str(&parts.uri.to_string()) {
        h.insert("x-echo-uri", v);
    }
    for (name, value) in &parts.headers {
        if let Ok(n) = HeaderName::from_bytes(format!("x-echo-header-{name}").as_bytes()) {
            h.append(n, value.clone());
        }
    }
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
        h.insert(http::header::CONTENT_TYPE, ct.clone());
    }
    response
}

impl EchoApp {
    pub async fn start() -> EchoApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo app");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(echo).with_state(seen.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        EchoApp { port, seen, task }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for EchoApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
