//! The admin port, apart from the webhook: `/healthz` (the process answers), `/readyz` (the
//! serving certificate is loaded, the control plane's trust anchors are known when a ConfigMap is
//! configured, and the first caBundle sync is done) and `/metrics`.

use crate::metrics::Metrics;
use axum::Router;
use std::sync::Arc;
pub use tandem_rt::admin::Readiness;

/// The admin router.
pub fn router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    let render = Arc::new(move || metrics.render().map_err(|e| e.to_string()));
    tandem_rt::admin::router(render, readiness, "caBundle not synced yet")
}
