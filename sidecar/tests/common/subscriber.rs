//! A subscriber app for the fault tests: records every delivery (path, the event's `data.seq`,
//! the answer it gave) and answers by a rule the test gives. It can be "killed": every
//! connection is dropped at once mid-request, as when the process dies, and started again on the
//! same port. (In-process rather than a separate process so the test reads its records directly;
//! on the wire a kill looks the same: torn connections, then refused connections.)

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One delivery the app answered (recorded after the answer was handed to the connection).
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub seq: i64,
    pub answer: &'static str,
    /// When the answer was handed over. An answer given just before a kill may never have left
    /// the process, so its message legitimately comes again.
    pub at: Instant,
}

/// Decides the answer: (path, seq, how many times this path+seq came before) → (status, body
/// label). Labels: "SUCCESS", "RETRY", "DROP", "500", "MALFORMED", "404", "SLOW" (SUCCESS
/// after the app's delay), or "HELD" (SUCCESS once the test calls [`SubscriberApp::release`]).
pub type Rule = Arc<dyn Fn(&str, i64, usize) -> &'static str + Send + Sync>;

#[derive(Clone)]
struct AppState {
    seen: Arc<Mutex<Vec<Seen>>>,
    started: Arc<Mutex<Vec<(String, i64)>>>,
    counts: Arc<Mutex<HashMap<(String, i64), usize>>>,
    rule: Rule,
    subscriptions: Value,
    delay: Duration,
    /// Opened by [`SubscriberApp::release`]; "HELD" answers wait for it.
    released: Arc<tokio::sync::watch::Sender<bool>>,
}

pub struct SubscriberApp {
    pub port: u16,
    state: AppState,
    incarnation: CancellationToken,
}

fn seq_of(event: &Value) -> i64 {
    event
        .pointer("/data/seq")
        .and_then(Value::as_i64)
        .unwrap_or(-1)
}

async fn handle(State(app): State<AppState>, req: Request) -> Response {
    use axum::response::IntoResponse;
    let path = req.uri().path().to_owned();
    // The sidecar also asks for an actor configuration; this app hosts no actors.
    if path == "/dapr/config" {
        return StatusCode::NOT_FOUND.into_response();
    }
    if path == "/dapr/subscribe" {
        return axum::Json(app.subscriptions.clone()).into_response();
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let seq = seq_of(&event);
    app.started
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((path.clone(), seq));
    let before = {
        let mut counts = app.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry((path.clone(), seq)).or_default();
        *n += 1;
        *n - 1
    };
    let answer = (app.rule)(&path, seq, before);
    if answer == "SLOW" {
        tokio::time::sleep(app.delay).await;
    }
    if answer == "HELD" {
        let _ = app.released.subscribe().wait_for(|open| *open).await;
    }
    let response = match answer {
        "RETRY" | "DROP" | "SUCCESS" => {
            axum::Json(serde_json::json!({ "status": answer })).into_response()
        }
        "SLOW" | "HELD" => axum::Json(serde_json::json!({ "status": "SUCCESS" })).into_response(),
        "500" => http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "404" => http::StatusCode::NOT_FOUND.into_response(),
        // 200 with a status Dapr does not know: retried like RETRY.
        _ => axum::Json(serde_json::json!({ "status": "BOGUS" })).into_response(),
    };
    app.seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Seen {
            path,
            seq,
            answer,
            at: Instant::now(),
        });
    response
}

impl SubscriberApp {
    /// Reserves a port; the app does not listen until [`SubscriberApp::listen`].
    pub fn new(subscriptions: Value, rule: Rule, delay: Duration) -> SubscriberApp {
        SubscriberApp {
            port: tandem_sidecar::testing::free_port(),
            state: AppState {
                seen: Arc::default(),
                started: Arc::default(),
                counts: Arc::default(),
                rule,
                subscriptions,
                delay,
                released: Arc::new(tokio::sync::watch::channel(false).0),
            },
            incarnation: CancellationToken::new(),
        }
    }

    /// Starts listening (again) on the app's port.
    pub async fn listen(&mut self) {
        self.incarnation = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the subscriber port");
        let router = Router::new()
            .fallback(handle)
            .with_state(self.state.clone());
        let stop = self.incarnation.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                };
                let service = TowerToHyperService::new(router.clone());
                let stop = stop.clone();
                tokio::spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = conn => {}
                    }
                });
            }
        });
    }

    /// Lets every "HELD" delivery, waiting or still to come, answer SUCCESS.
    pub fn release(&self) {
        self.state.released.send_replace(true);
    }

    /// Drops every connection and stops listening, as if the process died.
    pub fn kill(&self) {
        self.incarnation.cancel();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Deliveries that reached the handler, answered or not.
    pub fn started(&self) -> Vec<(String, i64)> {
        self.state
            .started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until `done(seen)` holds, or fails with `what` after `within`.
    pub async fn wait_until(&self, within: Duration, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.seen();
            if done(&seen) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; {} deliveries seen",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
