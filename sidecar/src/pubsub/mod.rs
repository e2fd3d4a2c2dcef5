//! Pub/sub: publishing, subscriptions and delivery to the app.

pub mod cloudevent;
pub mod delivery;
pub mod live;
pub mod routing;
pub mod subscriptions;

use crate::runtime::SharedRuntime;
use http::{HeaderValue, Request};
use std::time::Duration;

/// Once the app is reachable and components have settled: asks the app for its subscriptions
/// and starts delivering for them and the declarative ones. Nothing is delivered before the app
/// is ready. Later changes (Kubernetes mode) go through [`live::reconcile`].
pub async fn start(rt: SharedRuntime) {
    if rt.app.is_none() || !wait_for_app(&rt).await {
        return;
    }
    let programmatic = match discover(&rt).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "reading the app's subscriptions failed");
            Vec::new()
        }
    };
    rt.subscribers.set_programmatic(programmatic);
    live::reconcile(&rt).await;
}

/// Waits until the app is reachable and every component has settled; false when the sidecar
/// shuts down first (or runs without an app).
pub async fn wait_for_app(rt: &SharedRuntime) -> bool {
    let Some(app) = rt.app.as_ref() else {
        return false;
    };
    while !(app.is_ready() && rt.registry().settled()) {
        tokio::select! {
            _ = rt.shutdown.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    true
}

/// `GET /dapr/subscribe` on the app: 404 or an empty body means no subscriptions.
async fn discover(rt: &SharedRuntime) -> Result<Vec<subscriptions::SubscriptionJson>, String> {
    let Some(app) = rt.app.as_ref() else {
        return Ok(Vec::new());
    };
    let mut req = Request::get("/dapr/subscribe")
        .body(axum::body::Body::empty())
        .map_err(|e| e.to_string())?;
    if let Ok(id) = HeaderValue::from_str(&rt.app_id) {
        req.headers_mut().insert("dapr-app-id", id);
    }
    req.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(token) = &rt.app_token {
        req.headers_mut().insert("dapr-api-token", token.clone());
    }
    let (status, body) = app.exchange(req).await?;
    match status.as_u16() {
        200..=299 => subscriptions::parse_subscribe_answer(&body),
        404 => Ok(Vec::new()),
        other => Err(format!("GET /dapr/subscribe answered {other}")),
    }
}
