//! Pub/sub: publishing, subscriptions and delivery to the app.

pub mod cloudevent;
pub mod delivery;
pub mod routing;
pub mod subscriptions;

use crate::runtime::SharedRuntime;
use http::{HeaderValue, Request};
use std::sync::Arc;
use std::time::Duration;

/// Once the app is reachable and components have settled: asks the app for its subscriptions
/// and starts delivering. Nothing is delivered before the app is ready.
pub async fn start(rt: SharedRuntime) {
    if rt.app.is_none() || !wait_for_app(&rt).await {
        return;
    }
    let stop = rt.shutdown.clone();
    let mut subscriptions: Vec<subscriptions::SubscriptionJson> = rt
        .registry()
        .declared_subscriptions()
        .iter()
        .map(subscriptions::SubscriptionJson::from)
        .collect();
    match discover(&rt).await {
        Ok(found) => subscriptions.extend(found),
        Err(e) => tracing::warn!(error = %e, "reading the app's subscriptions failed"),
    }
    for json in subscriptions {
        match subscriptions::Subscription::try_from(json) {
            Ok(sub) => {
                // Listed only once the broker has the subscription: what is published after
                // the app sees it in /v1.0/metadata reaches it.
                let Some(rx) = delivery::subscribe(&rt, &sub).await else {
                    continue;
                };
                let sub = Arc::new(sub);
                rt.subscriptions
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(sub.clone());
                tokio::spawn(delivery::run(rt.clone(), sub, rx, stop.clone()));
            }
            Err(e) => tracing::error!(error = %e, "subscription refused"),
        }
    }
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
