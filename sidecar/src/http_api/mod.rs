//! The HTTP front end: axum lives here and nowhere else. Each handler extracts Dapr's HTTP shape,
//! calls a building block on [`Sidecar`], and answers; errors become Dapr's JSON in [`error`].
//! One ordered stack per server; the comment on each layer says why it sits where it does.

pub mod actors;
pub mod api_access;
pub mod auth;
pub mod bindings;
pub mod body;
pub mod error;
pub mod health;
pub mod internal;
pub mod invoke;
pub mod lock;
pub mod metadata;
pub mod object;
pub mod path;
pub mod publish;
pub mod query;
pub mod secrets;
pub mod state;
pub mod state_query;

use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};
use axum::Router;
use axum::extract::State;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;

/// What every handler gets.
pub type Shared = Arc<Sidecar>;

/// The outermost layer of every server: nothing below may take the connection down.
fn outermost() -> CatchPanicLayer<fn(Box<dyn std::any::Any + Send + 'static>) -> Response> {
    CatchPanicLayer::custom(error::panic_to_json as fn(_) -> Response)
}

fn state_routes() -> Router<Shared> {
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
        .route(
            "/v1.0-alpha1/state/{store}/query",
            post(state_query::query).put(state_query::query),
        )
}

fn publish_routes() -> Router<Shared> {
    Router::new()
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
}

/// Dapr APIs Tandem does not serve yet: a clear 501 naming the API, never the invocation
/// fallback (whose "failed getting app id" would read like a failed service call).
const UNIMPLEMENTED: &[(&str, &str)] = &[
    ("/v1.0/configuration/{*rest}", "configuration"),
    ("/v1.0-alpha1/configuration/{*rest}", "configuration"),
    ("/v1.0-alpha1/crypto/{*rest}", "cryptography"),
    ("/v1.0-alpha1/workflows/{*rest}", "workflow"),
    ("/v1.0-beta1/workflows/{*rest}", "workflow"),
    ("/v1.0-alpha1/jobs/{*rest}", "jobs"),
    ("/v1.0-alpha1/conversation/{*rest}", "conversation"),
    ("/v1.0-alpha2/conversation/{*rest}", "conversation"),
];

/// The same for APIs Dapr serves only on POST/PUT (another method is a wrong request, not a
/// missing API).
const UNIMPLEMENTED_WRITES: &[(&str, &str)] = &[];

async fn unimplemented(api: &'static str) -> BlockError {
    BlockError::new(
        Code::ApiUnimplemented,
        format!("the {api} API is not implemented by Tandem yet"),
    )
}

fn unimplemented_routes() -> Router<Shared> {
    let router = UNIMPLEMENTED
        .iter()
        .fold(Router::new(), |router, &(path, api)| {
            router.route(path, any(move || unimplemented(api)))
        });
    UNIMPLEMENTED_WRITES
        .iter()
        .fold(router, |router, &(path, api)| {
            router.route(
                path,
                post(move || unimplemented(api)).put(move || unimplemented(api)),
            )
        })
}

/// The distributed lock (alpha1); daprd serves it on POST only.
fn lock_routes() -> Router<Shared> {
    Router::new()
        .route("/v1.0-alpha1/lock/{store}", post(lock::try_lock))
        .route("/v1.0-alpha1/unlock/{store}", post(lock::unlock))
}

fn health_and_metadata() -> Router<Shared> {
    Router::new()
        .route("/v1.0/healthz", get(health::healthz))
        .route("/v1.0/healthz/outbound", get(health::outbound))
        .route("/v1.0/metadata", get(metadata::get))
        .route("/v1.0/metadata/{key}", put(metadata::put))
}

/// The app-facing API on `--dapr-http-port`.
pub fn api_router(sc: Shared) -> Router {
    Router::new()
        .merge(state_routes())
        .merge(publish_routes())
        .merge(lock_routes())
        .merge(health_and_metadata())
        .merge(actors::routes())
        .merge(unimplemented_routes())
        .route("/v1.0/secrets/{store}/bulk", get(secrets::bulk))
        .route("/v1.0/secrets/{store}/{key}", get(secrets::get))
        .route("/v1.0/shutdown", post(health::shutdown))
        .route(
            "/v1.0/bindings/{name}",
            post(bindings::invoke).put(bindings::invoke),
        )
        // Invocation (`/v1.0/invoke/{id}/method/...`, parsed by the handler) is the fallback,
        // as is any other path with the dapr-app-id header: no route for it, so the router
        // does not decode and store path parameters nobody reads.
        .fallback(invoke::invoke)
        .method_not_allowed_fallback(invoke::invoke)
        .layer(middleware::from_fn_with_state(sc.clone(), front_door))
        .layer(outermost())
        .with_state(sc)
}

/// What every API request passes through, outermost first, as one layer (each `from_fn` layer
/// costs every request a boxed future and a cloned inner service):
/// - the server span: it covers every answer, and its context reaches every block;
/// - the metrics: they see every answer, 401 and 413 included;
/// - [`admit`].
async fn front_door(
    State(sc): State<Shared>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    crate::traces::server::http_api(req, |req| async move {
        let metrics = sc.metrics().http();
        crate::metrics::http::record_server_around(metrics, req, |req| admit(&sc, req, next)).await
    })
    .await
}

/// The checks every API request passes before a handler runs, in daprd's order: the token (401),
/// then `spec.api` (a group left out is not there: 404), then the header and body limits (431,
/// 413; the body is read through the limit).
async fn admit(sc: &Shared, mut req: axum::extract::Request, next: middleware::Next) -> Response {
    if let Err(refused) =
        auth::check_token(sc, &mut req).and_then(|()| api_access::check(sc, req.uri().path()))
    {
        return refused.into_response();
    }
    match body::limit(sc, req) {
        Ok(req) => next.run(req).await,
        Err(refused) => *refused,
    }
}

/// The public port: health and metadata only, no token (what Kubernetes probes).
pub fn public_router(sc: Shared) -> Router {
    health_and_metadata()
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            sc.metrics().http().clone(),
            crate::metrics::http::record_server,
        ))
        .layer(outermost())
        .with_state(sc)
}

/// The internal (sidecar-to-sidecar) port: every request is an invocation of this app, except
/// actor calls forwarded by another host (marked with a header), which take the actor routes.
pub fn internal_router(sc: Shared) -> Router {
    let actor_routes = actors::routes().with_state(sc.clone());
    Router::new()
        .fallback(move |state, req| internal::serve(state, actor_routes.clone(), req))
        // The callee side's server span, a child of the caller sidecar's client span.
        .layer(middleware::from_fn(crate::traces::server::internal))
        .layer(outermost())
        .with_state(sc)
}

async fn not_found() -> BlockError {
    BlockError::new(
        Code::RouteNotFound,
        "this port serves only health and metadata",
    )
}

/// The metrics port: Prometheus text on `/` (Dapr's path) and `/metrics`.
pub fn metrics_router(sc: Shared) -> Router {
    async fn render(State(sc): State<Shared>) -> impl IntoResponse {
        (
            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            sc.metrics().render(),
        )
    }
    Router::new()
        .route("/", get(render))
        .route("/metrics", get(render))
        .with_state(sc)
}

#[cfg(test)]
mod tests;
