//! The admin port, apart from any data plane: `/healthz` (the process answers), `/readyz` (every
//! controller's cache has synced, or this replica follows another that leads) and `/metrics`
//! (Prometheus text format).

use crate::metrics::Metrics;
use axum::Router;
use std::sync::Arc;
pub use tandem_rt::admin::Readiness;

/// The admin router.
pub fn router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    let render = Arc::new(move || metrics.render().map_err(|e| e.to_string()));
    tandem_rt::admin::router(render, readiness, "caches not synced yet")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
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
    async fn live_at_once_ready_after_sync_metrics_always() {
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        metrics.reconcile_started("component").observe_duration();
        let readiness = Readiness::default();
        let router = router(metrics, readiness.clone());
        assert_eq!(
            get(&router, "/healthz").await,
            (StatusCode::OK, "ok".into())
        );
        assert_eq!(
            get(&router, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness.set_ready();
        assert_eq!(get(&router, "/readyz").await.0, StatusCode::OK);
        let (status, text) = get(&router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            text.contains("tandem_operator_reconciles_total{kind=\"component\"} 1"),
            "{text}"
        );
        assert_eq!(get(&router, "/nope").await.0, StatusCode::NOT_FOUND);
    }
}
