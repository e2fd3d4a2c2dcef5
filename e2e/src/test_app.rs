//! The app the Kubernetes end-to-end scenario deploys (as the `tandem-e2e-app` executable behind
//! its images): answers every request with its pod's name, the method, path and body, and keeps
//! what it received so the test can ask `GET /_e2e/seen` (a subscriber's events, an invoked
//! method's calls). `GET /dapr/subscribe` is `[]`: subscriptions come from Subscription objects.
//! On SIGTERM it goes on serving for `--drain-seconds` (as an app behind a preStop hook does),
//! then exits.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::Json;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The app's state: who it is and what it has received.
#[derive(Clone, Default)]
pub struct TestApp {
    pod: String,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl TestApp {
    pub fn new(pod: impl Into<String>) -> TestApp {
        TestApp {
            pod: pod.into(),
            seen: Arc::default(),
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/_e2e/seen", get(seen))
            .route("/dapr/subscribe", get(|| async { Json(json!([])) }))
            .fallback(answer)
            .with_state(self)
    }
}

async fn seen(State(app): State<TestApp>) -> Json<Value> {
    let seen = app.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Json(Value::Array(seen))
}

async fn answer(State(app): State<TestApp>, method: Method, uri: Uri, body: Bytes) -> Json<Value> {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let record = json!({
        "pod": app.pod,
        "method": method.as_str(),
        "path": uri.path(),
        "body": body,
    });
    app.seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(record.clone());
    Json(record)
}
