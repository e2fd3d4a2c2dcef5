//! The webhook's HTTP surface: `POST /mutate` behind one ordered tower stack, served over TLS by
//! tandem-webhook-tls. The handler is a thin shell around [`crate::admission::review`].

use crate::admission::{self, AdmissionResult, Injection, InjectionFailure};
use crate::config::InjectorConfig;
use crate::metrics::Metrics;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Reviews larger than this are refused with 413 (a pod with 1 MiB of annotations still fits).
pub const MAX_REVIEW_BYTES: usize = 4 << 20;
/// Well under the API server's `timeoutSeconds` (5–10 s): answer or give up before it does.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

#[derive(Clone)]
pub struct WebhookState {
    pub config: Arc<InjectorConfig>,
    pub metrics: Arc<Metrics>,
}

/// `POST /mutate`.
pub fn router(state: WebhookState) -> Router {
    let layers = ServiceBuilder::new()
        // Outermost: a bug that panics answers 500 for that request only, and is counted.
        .layer(CatchPanicLayer::new())
        // One span per request, with method, path and status (timeouts included).
        .layer(TraceLayer::new_for_http())
        // Before anything reads the body: a slow or huge request cannot hold a worker for long.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        // Innermost: the body limit applies to the `Bytes` extractor (413 when exceeded).
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES));
    Router::new()
        .route("/mutate", post(mutate))
        .layer(layers)
        .with_state(state)
}

async fn mutate(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let injection = Injection::Failed {
                app_id: String::new(),
                reason: InjectionFailure::BadRequest,
            };
            state.metrics.admission(
                AdmissionResult::BadRequest,
                &injection,
                started.elapsed().as_secs_f64(),
            );
            return rejection.into_response();
        }
    };
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let answer = admission::review(&body, content_type, &state.config);
    state.metrics.admission(
        answer.result,
        &answer.injection,
        started.elapsed().as_secs_f64(),
    );
    match answer.body {
        serde_json::Value::String(text) if answer.status != StatusCode::OK => {
            (answer.status, text).into_response()
        }
        body => (answer.status, axum::Json(body)).into_response(),
    }
}
