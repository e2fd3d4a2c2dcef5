//! Delivery to the app, at least once: a message is acked only after the app answered SUCCESS,
//! DROP (counted, never redelivered) or 404 (dead-lettered when a dead-letter topic is set);
//! anything else is retried with backoff, then dead-lettered or nacked for the broker to deliver
//! again. An app that cannot be reached at all costs no attempt, and nothing is sent to an app
//! its health checks found unhealthy: delivery waits, the messages stay with the broker. At
//! most `CONCURRENCY` deliveries per subscription run at once. On shutdown no new delivery
//! starts; unstarted messages are nacked, in-flight ones finish within the grace period.

use super::cloudevent;
use super::prepared::{Event, Prepared, prepare};
use super::sink::EventSink;
use super::subscriptions::Subscription;
use crate::blocks::Sidecar;
use crate::channels::app::{EventDelivery, Outcome, Unreachable};
use crate::components::pubsub::{Delivery, Message};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Deliveries in flight per subscription.
pub const CONCURRENCY: usize = 16;
/// Attempts before a message is dead-lettered (or nacked back to the broker).
pub const ATTEMPTS: u32 = 5;

/// How long a delivery waits before trying an app that refused the connection again.
pub(super) const UNREACHABLE_PAUSE: Duration = Duration::from_millis(250);

/// Subscribes at the broker; `None` (logged) when the pubsub is unavailable or refuses.
pub async fn subscribe(sc: &Sidecar, sub: &Subscription) -> Option<mpsc::Receiver<Delivery>> {
    let broker = match sc.registry().pubsub(&sub.pubsub) {
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
        .unwrap_or_else(|| sc.app_id().to_owned());
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

/// Consumes one subscription until `stop`, delivering to `sink`.
pub async fn run(
    sc: Arc<Sidecar>,
    sink: Arc<dyn EventSink>,
    sub: Arc<Subscription>,
    mut deliveries: mpsc::Receiver<Delivery>,
    stop: CancellationToken,
    in_flight: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    // While the app is unhealthy, nothing more is taken from the broker.
    while sink.ready(&stop).await {
        let delivery = tokio::select! {
            _ = stop.cancelled() => break,
            d = deliveries.recv() => match d { Some(d) => d, None => break },
        };
        let permit = tokio::select! {
            _ = stop.cancelled() => { delivery.acker.nack().await; break }
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (sc, sink, sub, stop) = (sc.clone(), sink.clone(), sub.clone(), stop.clone());
        in_flight.spawn(
            async move {
                deliver(&sc, &*sink, &sub, delivery, &stop).await;
                drop(permit);
            }
            .instrument(tracing::debug_span!("delivery")),
        );
    }
    nack_unstarted(deliveries).await;
}

/// Leaves what was not started for the broker to deliver again (closed first: the broker
/// reader stops instead of refilling the channel as it drains).
pub(super) async fn nack_unstarted(mut deliveries: mpsc::Receiver<Delivery>) {
    deliveries.close();
    while let Ok(d) = deliveries.try_recv() {
        d.acker.nack().await;
    }
}

/// The CloudEvent the app receives for a message (also what routing rules see). A raw message
/// is described with the topic it came on, which for a wildcard subscription is the concrete one.
pub(super) fn event_of(sub: &Subscription, message: &Message) -> Value {
    let now = time::OffsetDateTime::now_utc();
    if sub.raw_payload {
        return cloudevent::raw_payload_event(&message.data, &sub.pubsub, &message.topic, now);
    }
    match serde_json::from_slice::<Value>(&message.data) {
        Ok(event @ Value::Object(_)) => event,
        // Published raw by someone else: deliver it as a raw-payload event.
        _ => cloudevent::raw_payload_event(&message.data, &sub.pubsub, &message.topic, now),
    }
}

async fn deliver(
    sc: &Sidecar,
    sink: &dyn EventSink,
    sub: &Subscription,
    delivery: Delivery,
    stop: &CancellationToken,
) {
    let Delivery { message, acker } = delivery;
    let event = match prepare(sub, &message, time::OffsetDateTime::now_utc()) {
        Prepared::Deliver(event) => event,
        Prepared::Expired => {
            tracing::debug!(topic = %sub.topic, "expired message dropped");
            sc.metrics()
                .components()
                .delivered(&sub.pubsub, &sub.topic, "drop", None);
            acker.ack().await;
            return;
        }
        Prepared::NoRoute => {
            tracing::warn!(topic = %sub.topic, "no route matched; message dropped");
            dead_letter_or_drop(sc, sub, &message).await;
            acker.ack().await;
            return;
        }
    };
    let path = event.path.as_str();
    let mut backoff =
        crate::resiliency::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut attempt = 0;
    while attempt < ATTEMPTS {
        if !sink.ready(stop).await {
            break;
        }
        let delivery = EventDelivery {
            path,
            pubsub: &sub.pubsub,
            topic: &message.topic,
            body: event.body.clone(),
            metadata: &message.metadata,
            traceparent: event.traceparent.as_deref(),
        };
        let started = std::time::Instant::now();
        let outcome = match deliver_traced(sink, sub, &event, delivery).await {
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
        let label = match outcome {
            Outcome::Success => "success",
            Outcome::Retry => "retry",
            Outcome::Drop | Outcome::NoRoute => "drop",
        };
        sc.metrics().components().delivered(
            &sub.pubsub,
            &sub.topic,
            label,
            Some(started.elapsed()),
        );
        match outcome {
            Outcome::Success => {
                acker.ack().await;
                return;
            }
            Outcome::Drop => {
                tracing::debug!(topic = %sub.topic, %path, "the app dropped a message");
                acker.ack().await;
                return;
            }
            Outcome::NoRoute => {
                tracing::warn!(topic = %sub.topic, %path, "the app has no such route (404); message dropped");
                dead_letter_or_drop(sc, sub, &message).await;
                acker.ack().await;
                return;
            }
            Outcome::Retry => {
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
        dead_letter_or_drop(sc, sub, &message).await;
        acker.ack().await;
    } else {
        // Not lost: the broker delivers it again later.
        acker.nack().await;
    }
}

/// One delivery attempt as a consumer span: it joins the publisher's trace through the
/// CloudEvent's context, and the app (or stream) sees it as its parent.
async fn deliver_traced(
    sink: &dyn EventSink,
    sub: &Subscription,
    event: &Event,
    mut delivery: EventDelivery<'_>,
) -> Result<Outcome, Unreachable> {
    let parent = crate::traces::context::from_traceparent(
        event.traceparent.as_deref(),
        event.tracestate.as_deref(),
    );
    let cx = crate::traces::spans::delivery(&parent, &sub.pubsub, &sub.topic, delivery.path);
    let traceparent = crate::traces::context::traceparent(&cx).map(|(tp, _)| tp);
    if let Some(tp) = traceparent.as_deref() {
        delivery.traceparent = Some(tp);
    }
    let outcome = sink.deliver(delivery).await;
    let status = match &outcome {
        Ok(outcome) => outcome_status(outcome),
        Err(Unreachable) => Err("the app is unreachable"),
    };
    crate::traces::spans::finish(&cx, status);
    outcome
}

/// A delivery span's status for the app's answer.
pub(super) fn outcome_status(outcome: &Outcome) -> Result<(), &'static str> {
    match outcome {
        Outcome::Success => Ok(()),
        Outcome::Drop => Err("the app dropped the event"),
        Outcome::Retry => Err("the app asked for a retry"),
        Outcome::NoRoute => Err("the app has no such route"),
    }
}

pub(super) async fn dead_letter_or_drop(sc: &Sidecar, sub: &Subscription, message: &Message) {
    let Some(topic) = &sub.dead_letter_topic else {
        return;
    };
    let registry = sc.registry();
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
