//! The app behind a sidecar: subscribes to `orders` on `pubsub`, and records the `traceparent`
//! of every request it gets (invocations and deliveries).

use axum::Router;
use axum::extract::{Request, State};
use axum::routing::{any, get};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

#[derive(Clone, Default)]
pub struct TracedApp {
    /// (path, traceparent) of each request.
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
    pub port: u16,
}

async fn record(State(app): State<TracedApp>, req: Request) -> &'static str {
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    app.seen
        .lock()
        .expect("not poisoned")
        .push((req.uri().path().to_owned(), traceparent));
    "{}"
}

async fn subscribe() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!([{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]))
}

impl TracedApp {
    pub async fn start() -> TracedApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = TracedApp {
            seen: Arc::default(),
            port,
        };
        let router = Router::new()
            .route("/dapr/subscribe", get(subscribe))
            .fallback(any(record))
            .with_state(app.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        app
    }

    pub fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().expect("not poisoned").clone()
    }
}
