//! Delivery to the app, at least once: a message is acked only after the app answered SUCCESS,
//! DROP (counted, never redelivered) or 404 (dead-lettered when a dead-letter topic is set);
//! anything else is retried with backoff, then dead-lettered or nacked for the broker to deliver
//! again. An app that cannot be reached at all costs no attempt. At most `CONCURRENCY`
//! deliveries per subscription run at once. On shutdown no new delivery starts;
//! unstarted messages are nacked, in-flight ones finish within the grace period.

use super::cloudevent;
use super::subscriptions::Subscription;
use crate::components::pubsub::{Delivery, Message};
use crate::runtime::SharedRuntime;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Deliveries in flight per subscription.
pub const CONCURRENCY: usize = 16;
/// Attempts before a message is dead-lettered (or nacked back to the broker).
pub const ATTEMPTS: u32 = 5;

/// How long a delivery waits before trying an app that refused the connection again.
const UNREACHABLE_PAUSE: Duration = Duration::from_millis(250);

/// The app could not be reached at all (no answer, not even an error status).
struct Unreachable;

/// What the app's answer means for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Retry,
    /// The app said DROP: acked, counted, never redelivered nor dead-lettered.
    Drop,
    /// The route does not exist (404): acked with a warning and a metric, and dead-lettered
    /// when the subscription has a dead-letter topic, so nothing vanishes unseen.
    NoRoute,
}

/// Dapr's reading of the app's answer (reference 1.6).
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    match status {
        200..=299 => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => match map.get("status").and_then(Value::as_str) {
                None | Some("") => Outcome::Success,
                Some(s) if s.eq_ignore_ascii_case("SUCCESS") => Outcome::Success,
                Some(s) if s.eq_ignore_ascii_case("DROP") => Outcome::Drop,
                Some(_) => Outcome::Retry,
            },
            _ => Outcome::Success, // empty or non-JSON body
        },
        404 => Outcome::NoRoute,
        _ => Outcome::Retry,
    }
}

/// Subscribes at the broker; `None` (logged) when the pubsub is unavailable or refuses.
pub async fn subscribe(rt: &SharedRuntime, sub: &Subscription) -> Option<mpsc::Receiver<Delivery>> {
    let broker = match rt.registry().pubsub(&sub.pubsub) {
        Ok((_, broker)) => broker.clone(),
        Err(why) => {
            tracing::error!(pubsub = %sub.pubsub, topic = %sub.topic, ?why, "subscription not started: pubsub unavailable");
            return None;
        }
    };
    let consumer = sub
        .metadata
        .get("consumerID")
        .cloned()
        .unwrap_or_else(|| rt.app_id.clone());
    match broker.subscribe(&sub.topic, &consumer).await {
        Ok(rx) => {
            tracing::info!(pubsub = %sub.pubsub, topic = %sub.topic, "subscribed");
            Some(rx)
        }
        Err(e) => {
            tracing::error!(pubsub = %sub.pubsub, topic = %sub.topic, error = %e, "subscribe failed");
            None
        }
    }
}

/// Consumes one subscription until `stop`.
pub async fn run(
    rt: SharedRuntime,
    sub: Arc<Subscription>,
    mut deliveries: mpsc::Receiver<Delivery>,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let delivery = tokio::select! {
            _ = stop.cancelled() => break,
            d = deliveries.recv() => match d { Some(d) => d, None => break },
        };
        let permit = tokio::select! {
            _ = stop.cancelled() => { delivery.acker.nack().await; break }
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (rt, sub, stop) = (rt.clone(), sub.clone(), stop.clone());
        rt.deliveries.clone().spawn(
            async move {
                deliver(&rt, &sub, delivery, &stop).await;
                drop(permit);
            }
            .instrument(tracing::debug_span!("delivery")),
        );
    }
    // Leave what was not started for the broker to deliver again (closed first: the broker
    // reader stops instead of refilling the channel as it drains).
    deliveries.close();
    while let Ok(d) = deliveries.try_recv() {
        d.acker.nack().await;
    }
}

/// The CloudEvent the app receives for a message.
fn event_of(sub: &Subscription, message: &Message) -> Value {
    let now = time::OffsetDateTime::now_utc();
    if sub.raw_payload {
        return cloudevent::raw_payload_event(&message.data, &sub.pubsub, &sub.topic, now);
    }
    match serde_json::from_slice::<Value>(&message.data) {
        Ok(event @ Value::Object(_)) => event,
        // Published raw by someone else: deliver it as a raw-payload event.
        _ => cloudevent::raw_payload_event(&message.data, &sub.pubsub, &sub.topic, now),
    }
}

async fn deliver(
    rt: &SharedRuntime,
    sub: &Subscription,
    delivery: Delivery,
    stop: &CancellationToken,
) {
    let Delivery { message, acker } = delivery;
    let event = event_of(sub, &message);
    let now = time::OffsetDateTime::now_utc();
    if cloudevent::is_expired(&event, now) {
        tracing::debug!(topic = %sub.topic, "expired message dropped");
        rt.metrics.pubsub_ingress(&sub.pubsub, &sub.topic, "drop");
        acker.ack().await;
        return;
    }
    let Some(path) = sub.routes.route(&event).map(str::to_owned) else {
        tracing::warn!(topic = %sub.topic, "no route matched; message dropped");
        dead_letter_or_drop(rt, sub, &message).await;
        acker.ack().await;
        return;
    };
    let body = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
    let mut backoff =
        crate::resiliency::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut attempt = 0;
    while attempt < ATTEMPTS {
        let outcome = match post(rt, sub, &path, &event, &message, body.clone()).await {
            Ok(outcome) => outcome,
            Err(Unreachable) => {
                // The app is down (crashed, restarting): not the message's fault, so it costs
                // no attempt; wait for the app, or leave the message to the broker on shutdown.
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(UNREACHABLE_PAUSE) => continue,
                }
            }
        };
        attempt += 1;
        match outcome {
            Outcome::Success => {
                rt.metrics
                    .pubsub_ingress(&sub.pubsub, &sub.topic, "success");
                acker.ack().await;
                return;
            }
            Outcome::Drop => {
                rt.metrics.pubsub_ingress(&sub.pubsub, &sub.topic, "drop");
                tracing::debug!(topic = %sub.topic, %path, "the app dropped a message");
                acker.ack().await;
                return;
            }
            Outcome::NoRoute => {
                rt.metrics.pubsub_ingress(&sub.pubsub, &sub.topic, "drop");
                tracing::warn!(topic = %sub.topic, %path, "the app has no such route (404); message dropped");
                dead_letter_or_drop(rt, sub, &message).await;
                acker.ack().await;
                return;
            }
            Outcome::Retry => {
                rt.metrics.pubsub_ingress(&sub.pubsub, &sub.topic, "retry");
                if attempt == ATTEMPTS || stop.is_cancelled() {
                    break;
                }
                if !backoff.sleep(stop).await {
                    break;
                }
            }
        }
    }
    if sub.dead_letter_topic.is_some() && !stop.is_cancelled() {
        dead_letter_or_drop(rt, sub, &message).await;
        acker.ack().await;
    } else {
        // Not lost: the broker delivers it again later.
        acker.nack().await;
    }
}

async fn post(
    rt: &SharedRuntime,
    sub: &Subscription,
    path: &str,
    event: &Value,
    message: &Message,
    body: Bytes,
) -> Result<Outcome, Unreachable> {
    let Some(app) = rt.app.as_ref() else {
        return Err(Unreachable);
    };
    let uri = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let mut req = Request::post(uri)
        .body(Body::from(body))
        .unwrap_or_default();
    let h = req.headers_mut();
    crate::app_channel::metadata_headers(h, &message.metadata);
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/cloudevents+json"),
    );
    if let Ok(v) = HeaderValue::from_str(&sub.pubsub) {
        h.insert(HeaderName::from_static("pubsubname"), v);
    }
    if let Some(tp) = event
        .get("traceparent")
        .and_then(Value::as_str)
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        h.insert(HeaderName::from_static("traceparent"), tp);
    }
    if let Some(token) = &rt.app_token {
        h.insert(HeaderName::from_static("dapr-api-token"), token.clone());
    }
    match app.send(req).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok(classify(status, &body))
        }
        Err(e) if e.is_connect() => {
            tracing::debug!(error = %e, "the app is unreachable");
            Err(Unreachable)
        }
        Err(e) => {
            tracing::debug!(error = %e, "delivery to the app failed");
            Ok(Outcome::Retry)
        }
    }
}

async fn dead_letter_or_drop(rt: &SharedRuntime, sub: &Subscription, message: &Message) {
    let Some(topic) = &sub.dead_letter_topic else {
        return;
    };
    let registry = rt.registry();
    let Ok((_, broker)) = registry.pubsub(&sub.pubsub) else {
        return;
    };
    let dead = Message {
        topic: topic.clone(),
        data: message.data.clone(),
        metadata: message.metadata.clone(),
    };
    if let Err(e) = broker.publish(dead).await {
        tracing::error!(topic = %topic, error = %e, "publishing to the dead-letter topic failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_answers_mean_what_dapr_says() {
        let cases: &[(u16, &str, Outcome)] = &[
            (200, "", Outcome::Success),
            (200, r#"{"status":"SUCCESS"}"#, Outcome::Success),
            (204, "", Outcome::Success),
            (200, r#"{"status":""}"#, Outcome::Success),
            (200, "not json", Outcome::Success),
            (200, r#"{"status":"RETRY"}"#, Outcome::Retry),
            (200, r#"{"status":"DROP"}"#, Outcome::Drop),
            (200, r#"{"status":"MAYBE"}"#, Outcome::Retry),
            (404, "", Outcome::NoRoute),
            (500, r#"{"status":"SUCCESS"}"#, Outcome::Retry),
            (503, "", Outcome::Retry),
        ];
        for (status, body, want) in cases {
            assert_eq!(classify(*status, body.as_bytes()), *want, "{status} {body}");
        }
    }
}
