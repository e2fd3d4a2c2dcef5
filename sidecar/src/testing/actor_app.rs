//! A real HTTP actor app for the actor tests, speaking Dapr's app-side actor protocol the way the
//! SDKs do: `GET /dapr/config`, `PUT /actors/{type}/{id}/method/{m}`, the reminder and timer
//! callbacks, `DELETE /actors/{type}/{id}`. Its methods:
//! - `increment`: reads `count` through the sidecar's actor state API, holds the turn for the
//!   number of milliseconds in the body (if any), writes `count + 1`; answers the new count;
//! - `apply`: body `{"op": "<unique id>", "hold": ms}`: reads the list of applied op ids `ops`,
//!   holds the turn, then writes `ops` with this op appended and `count` = its length in one
//!   transaction; answers the new count (an op already applied is not applied again);
//! - `echo`: answers the body, with `x-seen-method` and the reentrancy id it got;
//! - `call`: invokes the actor named in the body (`{"type","id","method"}`) through the sidecar,
//!   passing `Dapr-Reentrancy-Id` on (A → B → A);
//! - `fail`: answers 500 with a body; `actor-error`: 200 with `X-DaprErrorResponseHeader`;
//!   anything else: 404.
//!
//! `GET /healthz` answers 200, or 503 after [`ActorApp::set_healthy`]`(false)`.
//!
//! Every method call is logged as a [`Span`] (this app's label, actor id, start, end) in a log
//! the test may share between several app instances, to find overlapping activations.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use http::{HeaderMap, HeaderValue, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One method call as the app ran it.
#[derive(Debug, Clone)]
pub struct Span {
    pub host: String,
    pub actor_id: String,
    pub start: Instant,
    pub end: Instant,
}

/// What the app saw, shared with the test.
#[derive(Debug, Default)]
pub struct ActorLog {
    pub spans: Mutex<Vec<Span>>,
    /// `(actor id, reminder name, body)` per reminder callback.
    pub reminders: Mutex<Vec<(String, String, String)>>,
    /// `(actor id, timer name)` per timer callback.
    pub timers: Mutex<Vec<(String, String)>>,
    /// Actor ids deactivated.
    pub deactivated: Mutex<Vec<String>>,
}

impl ActorLog {
    /// Pairs of calls of one actor id that overlapped in time on different hosts (or on one).
    pub fn overlaps(&self) -> usize {
        let spans = self.spans.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut by_id: std::collections::HashMap<&str, Vec<&Span>> = Default::default();
        for s in &spans {
            by_id.entry(&s.actor_id).or_default().push(s);
        }
        let mut overlaps = 0;
        for list in by_id.values_mut() {
            list.sort_by_key(|s| s.start);
            for pair in list.windows(2) {
                if pair[1].start < pair[0].end {
                    overlaps += 1;
                }
            }
        }
        overlaps
    }

    pub fn reminder_count(&self, name: &str) -> usize {
        self.reminders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, n, _)| n == name)
            .count()
    }
}

struct AppState {
    healthy: std::sync::atomic::AtomicBool,
    host: String,
    config: String,
    sidecar: Mutex<Option<String>>,
    log: Arc<ActorLog>,
    client: reqwest::Client,
}

/// A running actor app.
pub struct ActorApp {
    pub port: u16,
    state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
}

impl ActorApp {
    /// Starts the app; `config` is its `/dapr/config` answer; `host` labels its log entries.
    pub async fn start(host: &str, config: &str, log: Arc<ActorLog>) -> ActorApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind actor app");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(AppState {
            healthy: std::sync::atomic::AtomicBool::new(true),
            host: host.to_owned(),
            config: config.to_owned(),
            sidecar: Mutex::new(None),
            log,
            client: crate::http_client::builder().build().expect("client"),
        });
        let app = Router::new()
            .route("/dapr/config", get(config_handler))
            .route("/healthz", get(healthz))
            .route("/actors/{type}/{id}/method/remind/{name}", put(remind))
            .route("/actors/{type}/{id}/method/timer/{name}", put(timer))
            .route("/actors/{type}/{id}/method/{method}", put(method))
            .route("/actors/{type}/{id}", delete(deactivate))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ActorApp { port, state, task }
    }

    /// What `GET /healthz` answers from now on: 200 when healthy, else 503.
    pub fn set_healthy(&self, healthy: bool) {
        self.state
            .healthy
            .store(healthy, std::sync::atomic::Ordering::Relaxed);
    }

    /// Where the app reaches its sidecar's HTTP API (`http://127.0.0.1:port`).
    pub fn set_sidecar(&self, base_url: &str) {
        *self.state.sidecar.lock().unwrap_or_else(|p| p.into_inner()) = Some(base_url.to_owned());
    }
}

async fn healthz(State(state): State<Arc<AppState>>) -> StatusCode {
    if state.healthy.load(std::sync::atomic::Ordering::Relaxed) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

impl Drop for ActorApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn config_handler(State(st): State<Arc<AppState>>) -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        st.config.clone(),
    )
        .into_response()
}

fn sidecar(st: &AppState) -> String {
    st.sidecar
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default()
}

async fn increment(st: &AppState, actor_type: &str, id: &str, body: &Bytes) -> Result<u64, String> {
    let base = format!("{}/v1.0/actors/{actor_type}/{id}/state", sidecar(st));
    let current = st
        .client
        .get(format!("{base}/count"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let count: u64 = match current.status().as_u16() {
        204 => 0,
        200 => current
            .text()
            .await
            .map_err(|e| e.to_string())?
            .trim()
            .parse()
            .map_err(|e| format!("{e}"))?,
        s => return Err(format!("state get answered {s}")),
    };
    let hold: u64 = std::str::from_utf8(body)
        .ok()
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or(0);
    if hold > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(hold)).await;
    }
    let ops =
        serde_json::json!([{"operation":"upsert","request":{"key":"count","value": count + 1}}]);
    let saved = st
        .client
        .post(&base)
        .header("content-type", "application/json")
        .body(ops.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if saved.status().as_u16() != 204 {
        return Err(format!(
            "state save answered {}: {}",
            saved.status(),
            saved.text().await.unwrap_or_default()
        ));
    }
    Ok(count + 1)
}

async fn state_get(st: &AppState, base: &str, key: &str) -> Result<Option<String>, String> {
    let r = st
        .client
        .get(format!("{base}/{key}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match r.status().as_u16() {
        204 => Ok(None),
        200 => Ok(Some(r.text().await.map_err(|e| e.to_string())?)),
        s => Err(format!("state get answered {s}")),
    }
}

async fn apply(st: &AppState, actor_type: &str, id: &str, body: &Bytes) -> Result<usize, String> {
    let request: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let op = request["op"].as_str().ok_or("no op")?.to_owned();
    let base = format!("{}/v1.0/actors/{actor_type}/{id}/state", sidecar(st));
    let mut ops: Vec<String> = match state_get(st, &base, "ops").await? {
        Some(text) => serde_json::from_str(&text).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    if ops.contains(&op) {
        return Ok(ops.len());
    }
    let hold = request["hold"].as_u64().unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(hold)).await;
    ops.push(op);
    let tx = serde_json::json!([
        {"operation":"upsert","request":{"key":"ops","value": ops}},
        {"operation":"upsert","request":{"key":"count","value": ops.len()}},
    ]);
    let saved = st
        .client
        .post(&base)
        .header("content-type", "application/json")
        .body(tx.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if saved.status().as_u16() != 204 {
        return Err(format!("state save answered {}", saved.status()));
    }
    Ok(ops.len())
}

async fn method(
    State(st): State<Arc<AppState>>,
    Path((actor_type, id, method)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    let reentrancy = headers.get("dapr-reentrancy-id").cloned();
    let response = match method.as_str() {
        "increment" => match increment(&st, &actor_type, &id, &body).await {
            Ok(n) => n.to_string().into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        },
        "apply" => match apply(&st, &actor_type, &id, &body).await {
            Ok(n) => n.to_string().into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        },
        "echo" => {
            let mut r = body.clone().into_response();
            r.headers_mut()
                .insert("x-seen-method", HeaderValue::from_static("PUT"));
            if let Some(ct) = headers.get(http::header::CONTENT_TYPE) {
                r.headers_mut()
                    .insert(http::header::CONTENT_TYPE, ct.clone());
            }
            if let Some(id) = &reentrancy {
                r.headers_mut().insert("x-reentrancy-id", id.clone());
            }
            r
        }
        "call" => {
            let target: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let url = format!(
                "{}/v1.0/actors/{}/{}/method/{}",
                sidecar(&st),
                target["type"].as_str().unwrap_or_default(),
                target["id"].as_str().unwrap_or_default(),
                target["method"].as_str().unwrap_or_default()
            );
            let mut req = st.client.put(url).body(target["body"].to_string());
            if let Some(id) = &reentrancy {
                req = req.header("dapr-reentrancy-id", id.clone());
            }
            match req.send().await {
                Ok(r) => {
                    let status = StatusCode::from_u16(r.status().as_u16())
                        .unwrap_or(StatusCode::BAD_GATEWAY);
                    (status, r.bytes().await.unwrap_or_default()).into_response()
                }
                Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
            }
        }
        "fail" => (StatusCode::INTERNAL_SERVER_ERROR, "the method failed").into_response(),
        "actor-error" => {
            ([("x-daprerrorresponseheader", "true")], "an actor error").into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    };
    st.log
        .spans
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Span {
            host: st.host.clone(),
            actor_id: format!("{actor_type}/{id}"),
            start,
            end: Instant::now(),
        });
    response
}

async fn remind(
    State(st): State<Arc<AppState>>,
    Path((_actor_type, id, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    st.log
        .reminders
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((
            id,
            name.clone(),
            String::from_utf8_lossy(&body).into_owned(),
        ));
    if name.starts_with("cancel") {
        return ([("x-daprremindercancel", "true")], "").into_response();
    }
    StatusCode::OK.into_response()
}

async fn timer(
    State(st): State<Arc<AppState>>,
    Path((_t, id, name)): Path<(String, String, String)>,
) -> Response {
    st.log
        .timers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((id, name));
    StatusCode::OK.into_response()
}

async fn deactivate(
    State(st): State<Arc<AppState>>,
    Path((actor_type, id)): Path<(String, String)>,
) -> Response {
    st.log
        .deactivated
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(format!("{actor_type}/{id}"));
    StatusCode::OK.into_response()
}
