//! Bulk subscribe: delivery to the app in batches, above the broker, so every broker serves it
//! as it is. The loop takes deliveries off the subscription's channel until a batch holds
//! `maxMessagesCount` events or `maxAwaitDurationMs` passed since its first one, groups the
//! batch by route and posts each group as Dapr's bulk envelope. Every entry is then settled on
//! its own, with single delivery's guarantees: acked after SUCCESS; after DROP or a 404 acked
//! and dead-lettered when the subscription has a dead-letter topic (as Dapr's bulk subscriber
//! does); RETRY, no status or a failed request posts the entries still open again with backoff,
//! `ATTEMPTS` times, then dead-letters or nacks them for the broker to deliver again.

pub mod envelope;
pub mod traced;

use super::cloudevent;
use super::delivery::{ATTEMPTS, UNREACHABLE_PAUSE, dead_letter_or_drop, event_of, nack_unstarted};
use super::subscriptions::{BulkSettings, Subscription};
use crate::blocks::Sidecar;
use crate::channels::app::{BulkEventDelivery, Outcome, Unreachable};
use crate::components::pubsub::Delivery;
use bytes::Bytes;
use envelope::{BulkEntry, bulk_envelope};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Batches in flight per subscription.
pub const BATCHES_IN_FLIGHT: usize = 4;

/// One event of a batch waiting for its outcome.
struct OpenEntry {
    entry: BulkEntry,
    delivery: Delivery,
}

/// Consumes one bulk subscription until `stop`.
pub async fn run(
    sc: Arc<Sidecar>,
    sub: Arc<Subscription>,
    bulk: BulkSettings,
    mut deliveries: mpsc::Receiver<Delivery>,
    stop: CancellationToken,
    in_flight: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let mut open = true;
    // While the app is unhealthy, nothing more is taken from the broker.
    while open && sc.wait_app_healthy(&stop).await {
        let first = tokio::select! {
            _ = stop.cancelled() => break,
            d = deliveries.recv() => match d { Some(d) => d, None => break },
        };
        let mut batch = vec![first];
        let full = tokio::time::Instant::now() + bulk.max_await;
        while batch.len() < bulk.max_messages {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(full) => break,
                d = deliveries.recv() => match d {
                    Some(d) => batch.push(d),
                    None => { open = false; break }
                },
            }
        }
        let permit = tokio::select! {
            _ = stop.cancelled() => None,
            p = permits.clone().acquire_owned() => p.ok(),
        };
        let Some(permit) = permit.filter(|_| !stop.is_cancelled()) else {
            for d in batch {
                d.acker.nack().await;
            }
            break;
        };
        let (sc, sub, stop) = (sc.clone(), sub.clone(), stop.clone());
        in_flight.spawn(
            async move {
                deliver_batch(&sc, &sub, batch, &stop).await;
                drop(permit);
            }
            .instrument(tracing::debug_span!("bulk_delivery")),
        );
    }
    nack_unstarted(deliveries).await;
}

/// Settles what needs no app (expired, unroutable), then delivers the rest route by route.
async fn deliver_batch(
    sc: &Sidecar,
    sub: &Subscription,
    batch: Vec<Delivery>,
    stop: &CancellationToken,
) {
    let now = time::OffsetDateTime::now_utc();
    let mut by_route: BTreeMap<String, Vec<OpenEntry>> = BTreeMap::new();
    for delivery in batch {
        let event = event_of(sub, &delivery.message);
        if cloudevent::is_expired(&event, now) {
            tracing::debug!(topic = %sub.topic, "expired message dropped");
            sc.metrics()
                .components()
                .bulk_entries(&sub.pubsub, &sub.topic, "drop", 1);
            delivery.acker.ack().await;
            continue;
        }
        let Some(path) = sub.routes.route(&event).map(str::to_owned) else {
            tracing::warn!(topic = %sub.topic, "no route matched; message dropped");
            dead_letter_or_drop(sc, sub, &delivery.message).await;
            delivery.acker.ack().await;
            continue;
        };
        let entry_id = uuid::Uuid::new_v4().to_string();
        let metadata = delivery.message.metadata.clone();
        let entry = if sub.raw_payload {
            BulkEntry::raw(entry_id, &delivery.message.data, metadata)
        } else {
            BulkEntry::cloud_event(entry_id, event, metadata)
        };
        by_route
            .entry(path)
            .or_default()
            .push(OpenEntry { entry, delivery });
    }
    for (path, entries) in by_route {
        deliver_route(sc, sub, &path, entries, stop).await;
    }
}

/// Posts the entries still open to `path` until each is settled or the attempts run out.
async fn deliver_route(
    sc: &Sidecar,
    sub: &Subscription,
    path: &str,
    mut open: Vec<OpenEntry>,
    stop: &CancellationToken,
) {
    let mut backoff =
        crate::resiliency::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut attempt = 0;
    while !open.is_empty() && attempt < ATTEMPTS {
        if !sc.wait_app_healthy(stop).await {
            break;
        }
        let started = std::time::Instant::now();
        let outcomes = match post(sc, sub, path, &open).await {
            Ok(outcomes) => outcomes,
            Err(Unreachable) => {
                // Not the messages' fault: costs no attempt (see single delivery).
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(UNREACHABLE_PAUSE) => continue,
                }
            }
        };
        attempt += 1;
        sc.metrics().components().bulk_delivered(
            &sub.pubsub,
            &sub.topic,
            "",
            Some(started.elapsed()),
        );
        let mut still_open = Vec::new();
        for (entry, outcome) in open.into_iter().zip(outcomes) {
            let label = match outcome {
                Outcome::Success => "success",
                Outcome::Retry => "retry",
                Outcome::Drop | Outcome::NoRoute => "drop",
            };
            sc.metrics()
                .components()
                .bulk_entries(&sub.pubsub, &sub.topic, label, 1);
            match outcome {
                Outcome::Success => entry.delivery.acker.ack().await,
                Outcome::Drop | Outcome::NoRoute => {
                    tracing::debug!(topic = %sub.topic, %path, ?outcome, "the app dropped a bulk entry");
                    dead_letter_or_drop(sc, sub, &entry.delivery.message).await;
                    entry.delivery.acker.ack().await;
                }
                Outcome::Retry => still_open.push(entry),
            }
        }
        open = still_open;
        if open.is_empty() || attempt == ATTEMPTS || stop.is_cancelled() {
            break;
        }
        if !backoff.sleep(stop).await {
            break;
        }
    }
    let dead_letter = sub.dead_letter_topic.is_some() && !stop.is_cancelled();
    for entry in open {
        if dead_letter {
            dead_letter_or_drop(sc, sub, &entry.delivery.message).await;
            entry.delivery.acker.ack().await;
        } else {
            // Not lost: the broker delivers it again later.
            entry.delivery.acker.nack().await;
        }
    }
}

/// One bulk request with the open entries; an outcome per entry, in their order.
async fn post(
    sc: &Sidecar,
    sub: &Subscription,
    path: &str,
    open: &[OpenEntry],
) -> Result<Vec<Outcome>, Unreachable> {
    let Some(app) = sc.app() else {
        return Err(Unreachable);
    };
    let id = uuid::Uuid::new_v4().to_string();
    let envelope = bulk_envelope(&id, &sub.pubsub, &sub.topic, open.iter().map(|o| &o.entry));
    let entry_ids: Vec<String> = open.iter().map(|o| o.entry.entry_id.clone()).collect();
    let body = Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default());
    let target = (sub.pubsub.as_str(), sub.topic.as_str(), path);
    let spans = traced::BatchSpans::start(open.iter().map(|o| &o.entry.event), target);
    let traceparent = spans.traceparent();
    let outcomes = app
        .deliver_bulk(BulkEventDelivery {
            path,
            pubsub: &sub.pubsub,
            body,
            entry_ids: &entry_ids,
            traceparent: traceparent.as_deref(),
        })
        .await;
    spans.finish(outcomes.as_deref());
    outcomes
}
