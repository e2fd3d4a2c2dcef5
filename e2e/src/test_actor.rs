//! The actor side of the end-to-end app (`tandem-e2e-app --actor-type <T>`): it hosts actor type
//! `T` through its sidecar, as a Dapr actor SDK would. Method `add` reads the actor's `count`
//! from the actor state API, waits a little (so two activations of one id on two pods would
//! overlap and lose an update), writes `count + 1` back and answers `{"count", "pod"}`. A test
//! that sees every returned count of an id exactly once, 1..=n, has proven the id never ran in
//! two places at once and no update was lost. A reminder's callback counts its firings the same
//! way in `fired`, which method `fired` returns.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, put};
use serde_json::{Value, json};
use std::time::Duration;

/// How long `add` holds the actor between its read and its write.
const HOLD: Duration = Duration::from_millis(15);

#[derive(Clone)]
struct Host {
    actor_type: String,
    pod: String,
    /// The sidecar's HTTP API on loopback (`DAPR_HTTP_PORT`, default 3500).
    sidecar: String,
    http: reqwest::Client,
}

/// The routes of an app hosting `actor_type`, calling its sidecar on `dapr_http_port`.
pub fn router(actor_type: String, pod: String, dapr_http_port: u16) -> Result<Router, String> {
    // reqwest is built without a TLS provider of its own (the workspace's choice): install ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("an HTTP client: {e}"))?;
    let host = Host {
        actor_type,
        pod,
        sidecar: format!("http://127.0.0.1:{dapr_http_port}"),
        http,
    };
    Ok(Router::new()
        .route("/dapr/config", get(config))
        .route("/actors/{actor_type}/{id}/method/add", put(add))
        .route("/actors/{actor_type}/{id}/method/fired", put(fired))
        .route(
            "/actors/{actor_type}/{id}/method/remind/{name}",
            put(remind),
        )
        .route(
            "/actors/{actor_type}/{id}",
            delete(|| async { StatusCode::OK }),
        )
        .with_state(host))
}

async fn config(State(host): State<Host>) -> Json<Value> {
    Json(json!({
        "entities": [host.actor_type],
        "actorIdleTimeout": "1h",
        "drainOngoingCallTimeout": "10s",
        "drainRebalancedActors": true,
    }))
}

async fn add(State(host): State<Host>, Path((actor_type, id)): Path<(String, String)>) -> Response {
    match add_one(&host, &actor_type, &id, "count").await {
        Ok(count) => Json(json!({"count": count, "pod": host.pod})).into_response(),
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    }
}

async fn remind(
    State(host): State<Host>,
    Path((actor_type, id, _name)): Path<(String, String, String)>,
) -> Response {
    match add_one(&host, &actor_type, &id, "fired").await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    }
}

async fn fired(
    State(host): State<Host>,
    Path((actor_type, id)): Path<(String, String)>,
) -> Response {
    match read(&host, &actor_type, &id, "fired").await {
        Ok(n) => Json(json!({"fired": n, "pod": host.pod})).into_response(),
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    }
}

/// The actor's number under `key` (0 when unset).
async fn read(host: &Host, actor_type: &str, id: &str, key: &str) -> Result<u64, String> {
    let url = format!("{}/v1.0/actors/{actor_type}/{id}/state/{key}", host.sidecar);
    let read = host
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("reading {key}: {e}"))?;
    match read.status().as_u16() {
        204 => Ok(0),
        200 => read
            .json::<u64>()
            .await
            .map_err(|e| format!("{key} is not a number: {e}")),
        other => Err(format!("reading {key}: status {other}")),
    }
}

/// Reads the actor's number under `key`, holds the turn a little, writes it back plus one.
async fn add_one(host: &Host, actor_type: &str, id: &str, key: &str) -> Result<u64, String> {
    let count = read(host, actor_type, id, key).await?;
    let base = format!("{}/v1.0/actors/{actor_type}/{id}/state", host.sidecar);
    tokio::time::sleep(HOLD).await;
    let next = count + 1;
    let write = host
        .http
        .post(base)
        .json(&json!([{"operation": "upsert", "request": {"key": key, "value": next}}]))
        .send()
        .await
        .map_err(|e| format!("writing {key}: {e}"))?;
    if !write.status().is_success() {
        let status = write.status();
        let body = write.text().await.unwrap_or_default();
        return Err(format!("writing {key}: {status} {body}"));
    }
    Ok(next)
}
