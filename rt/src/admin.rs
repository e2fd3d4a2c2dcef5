//! The admin port, apart from any data plane: `/healthz` (the process answers), `/readyz` (what
//! "ready" means is the binary's: a [`Readiness`] it sets) and `/metrics` (Prometheus text, from
//! the binary's registry).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the binary can do its job.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Renders the metrics in the Prometheus text format.
pub type RenderMetrics = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

#[derive(Clone)]
struct AdminState {
    render: RenderMetrics,
    readiness: Readiness,
    not_ready: &'static str,
}

/// The admin router; `/readyz` answers 503 with `not_ready` until `readiness` is set.
pub fn router(render: RenderMetrics, readiness: Readiness, not_ready: &'static str) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState {
            render,
            readiness,
            not_ready,
        })
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, state.not_ready).into_response()
    }
}

async fn metrics_text(State(state): State<AdminState>) -> Response {
    match (state.render)() {
        Ok(text) => ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(router: &Router, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).expect("request");
        let response = router.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn live_at_once_ready_when_set_metrics_rendered() {
        let readiness = Readiness::default();
        let render: RenderMetrics = Arc::new(|| Ok("up 1\n".to_owned()));
        let router = router(render, readiness.clone(), "warming up");
        assert_eq!(
            get(&router, "/healthz").await,
            (StatusCode::OK, "ok".into())
        );
        assert_eq!(
            get(&router, "/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "warming up".into())
        );
        readiness.set_ready();
        assert_eq!(get(&router, "/readyz").await.0, StatusCode::OK);
        assert_eq!(
            get(&router, "/metrics").await,
            (StatusCode::OK, "up 1\n".into())
        );
        let broken: RenderMetrics = Arc::new(|| Err("registry broken".to_owned()));
        let failing = super::router(broken, Readiness::default(), "");
        assert_eq!(
            get(&failing, "/metrics").await.0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(get(&router, "/nope").await.0, StatusCode::NOT_FOUND);
    }
}
