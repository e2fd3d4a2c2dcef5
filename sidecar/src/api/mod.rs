//! The HTTP servers' routers. One ordered stack per server; the comment on each layer says why it
//! sits where it does.

pub mod auth;
pub mod bindings;
pub mod body;
pub mod health;
pub mod metadata;
pub mod object;
pub mod path;
pub mod publish;
pub mod secrets;
pub mod state;
pub mod state_request;

use crate::error::ApiError;
use crate::invoke::{callee, caller};
use crate::runtime::SharedRuntime;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use std::time::Instant;

/// Counts and times every request by route template (never the raw path: bounded labels).
async fn record_metrics(State(rt): State<SharedRuntime>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let response = next.run(req).await;
    let path = route.as_deref().unwrap_or("fallback");
    rt.metrics.http_request(
        method.as_str(),
        path,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A panic in a handler becomes a JSON 500, never a dropped connection.
fn panic_to_json(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("ERR_INTERNAL", "internal error while handling the request").into_response()
}

fn state_routes() -> Router<SharedRuntime> {
    Router::new()
        .route("/v1.0/state/{store}", post(state::save).put(state::save))
        .route(
            "/v1.0/state/{store}/bulk",
            post(state::bulk_get).put(state::bulk_get),
        )
        .route(
            "/v1.0/state/{store}/transaction",
            post(state::transaction).put(state::transaction),
        )
        .route(
            "/v1.0/state/{store}/{key}",
            get(state::get).delete(state::delete),
        )
}

fn health_and_metadata() -> Router<SharedRuntime> {
    Router::new()
        .route("/v1.0/healthz", get(health::healthz))
        .route("/v1.0/healthz/outbound", get(health::outbound))
        .route("/v1.0/metadata", get(metadata::get))
        .route("/v1.0/metadata/{key}", put(metadata::put))
}

/// The app-facing API on `--dapr-http-port`.
pub fn api_router(rt: SharedRuntime) -> Router {
    Router::new()
        .merge(state_routes())
        .merge(health_and_metadata())
        .route("/v1.0/secrets/{store}/bulk", get(secrets::bulk))
        .route("/v1.0/secrets/{store}/{key}", get(secrets::get))
        .route("/v1.0/shutdown", post(health::shutdown))
        .route(
            "/v1.0/publish/{pubsub}/{*topic}",
            post(publish::publish).put(publish::publish),
        )
        .route(
            "/v1.0/publish/{pubsub}",
            post(publish::no_topic).put(publish::no_topic),
        )
        .route(
            "/v1.0-alpha1/publish/bulk/{pubsub}/{*topic}",
            post(publish::bulk).put(publish::bulk),
        )
        .route(
            "/v1.0/publish/bulk/{pubsub}/{*topic}",
            post(publish::bulk).put(publish::bulk),
        )
        .route(
            "/v1.0/bindings/{name}",
            post(bindings::invoke).put(bindings::invoke),
        )
        .route("/v1.0/invoke/{id}/method", any(caller::invoke))
        .route("/v1.0/invoke/{id}/method/{*method}", any(caller::invoke))
        // Invocation is also the fallback for unknown paths and methods (the dapr-app-id header).
        .fallback(caller::invoke)
        .method_not_allowed_fallback(caller::invoke)
        // Innermost: limit the body before any handler reads it.
        .layer(middleware::from_fn_with_state(rt.clone(), body::limit_body))
        // Then the token: after the limit is installed, before anything does work.
        .layer(middleware::from_fn_with_state(
            rt.clone(),
            auth::require_token,
        ))
        // Metrics see every answer, 401 and 413 included.
        .layer(middleware::from_fn_with_state(rt.clone(), record_metrics))
        // Outermost: nothing below may take the connection down.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_to_json,
        ))
        .with_state(rt)
}

/// The public port: health and metadata only, no token (what Kubernetes probes).
pub fn public_router(rt: SharedRuntime) -> Router {
    health_and_metadata()
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(rt.clone(), record_metrics))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_to_json,
        ))
        .with_state(rt)
}

/// The internal (sidecar-to-sidecar) port: every request is an invocation of this app.
pub fn internal_router(rt: SharedRuntime) -> Router {
    Router::new()
        .fallback(callee::serve)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_to_json,
        ))
        .with_state(rt)
}

async fn not_found() -> ApiError {
    ApiError::new(
        http::StatusCode::NOT_FOUND,
        "ERR_NOT_FOUND",
        "this port serves only health and metadata",
    )
}

/// The metrics port: Prometheus text on `/` (Dapr's path) and `/metrics`.
pub fn metrics_router(rt: SharedRuntime) -> Router {
    async fn render(State(rt): State<SharedRuntime>) -> impl IntoResponse {
        (
            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            rt.metrics.render(),
        )
    }
    Router::new()
        .route("/", get(render))
        .route("/metrics", get(render))
        .with_state(rt)
}
