//! `SubscribeTopicEventsAlpha1`: a subscription over a bidirectional stream, with no app port.
//! The client's first message names the pubsub and topic (and metadata, a dead-letter topic);
//! the sidecar subscribes at the broker, answers with the initial response, then sends each
//! event as a `TopicEventRequest` and waits for the client's `EventProcessed` with the same id.
//! Delivery is the one loop every subscription uses ([`delivery::run`]): SUCCESS and DROP ack,
//! RETRY is retried with backoff and then dead-lettered or left to the broker. When the stream
//! ends, the events it had not settled go back to the broker: nothing is lost with a client.

use super::Shared;
use crate::channels::app::grpc_mapping::{topic_outcome, topic_request};
use crate::channels::app::{EventDelivery, Outcome, Unreachable};
use crate::pubsub::delivery;
use crate::pubsub::sink::EventSink;
use crate::pubsub::streams::StreamListing;
use crate::pubsub::subscriptions::{Subscription, SubscriptionJson};
use async_trait::async_trait;
use dapr::dapr::proto::runtime::v1 as rt;
use futures_util::Stream;
use rt::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as Incoming;
use rt::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Outgoing;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

/// What the sidecar sends on the stream.
pub type Events =
    Pin<Box<dyn Stream<Item = Result<rt::SubscribeTopicEventsResponseAlpha1, Status>> + Send>>;

/// Events sent ahead of the client's answers, per stream.
const OUTBOX: usize = delivery::CONCURRENCY;

/// Checks the initial request as daprd does and turns it into a subscription with one route.
fn subscription_of(initial: Option<Incoming>) -> Result<Subscription, Status> {
    let Some(Incoming::InitialRequest(initial)) = initial else {
        return Err(Status::invalid_argument("initial request is required"));
    };
    if initial.pubsub_name.is_empty() {
        return Err(Status::invalid_argument("pubsubName is required"));
    }
    if initial.topic.is_empty() {
        return Err(Status::invalid_argument("topic is required"));
    }
    let json = SubscriptionJson {
        pubsubname: initial.pubsub_name,
        topic: initial.topic,
        route: Some("/".to_owned()),
        routes: None,
        metadata: Some(
            initial
                .metadata
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        ),
        dead_letter_topic: initial.dead_letter_topic,
        bulk_subscribe: None,
    };
    Subscription::try_from(json).map_err(Status::invalid_argument)
}

pub async fn subscribe(
    sc: &Shared,
    request: Request<Streaming<rt::SubscribeTopicEventsRequestAlpha1>>,
) -> Result<Response<Events>, Status> {
    let mut incoming = request.into_inner();
    let first = incoming
        .message()
        .await?
        .and_then(|m| m.subscribe_topic_events_request_type);
    let sub = subscription_of(first)?;
    sc.pubsub().broker(&sub.pubsub)?;
    let Some(deliveries) = delivery::subscribe(sc, &sub).await else {
        return Err(Status::internal(format!(
            "subscribing to topic {} on pubsub {} failed",
            sub.topic, sub.pubsub
        )));
    };
    let sub = Arc::new(sub);
    // Listed in the metadata from now until the stream closes (the sink drops the listing).
    let listing = sc.streams().open(sub.clone());
    let (outbox, events) = mpsc::channel(OUTBOX);
    let initial = rt::SubscribeTopicEventsResponseAlpha1 {
        subscribe_topic_events_response_type: Some(Outgoing::InitialResponse(
            rt::SubscribeTopicEventsResponseInitialAlpha1 {},
        )),
    };
    // Room for it is certain: the channel is new.
    let _ = outbox.try_send(Ok(initial));
    let stop = sc.shutdown().child_token();
    let sink = Arc::new(StreamSink {
        outbox,
        waiting: Mutex::default(),
        closed: stop.clone(),
        listing: Mutex::new(Some(listing)),
    });
    tracing::info!(pubsub = %sub.pubsub, topic = %sub.topic, "streaming subscription started");
    tokio::spawn(read_answers(incoming, sink.clone()));
    let in_flight = TaskTracker::new();
    tokio::spawn(delivery::run(
        sc.clone(),
        sink,
        sub,
        deliveries,
        stop,
        in_flight,
    ));
    Ok(Response::new(Box::pin(futures_util::stream::unfold(
        events,
        |mut events| async move { events.recv().await.map(|event| (event, events)) },
    ))))
}

/// Settles events as the client answers; a closed or broken stream (or a second initial
/// request) ends the subscription.
async fn read_answers(
    mut incoming: Streaming<rt::SubscribeTopicEventsRequestAlpha1>,
    sink: Arc<StreamSink>,
) {
    loop {
        let message = tokio::select! {
            _ = sink.closed.cancelled() => break,
            message = incoming.message() => message,
        };
        match message.map(|m| m.and_then(|m| m.subscribe_topic_events_request_type)) {
            Ok(Some(Incoming::EventProcessed(answer))) => sink.settle(answer),
            Ok(Some(Incoming::InitialRequest(_))) => {
                tracing::warn!("a second initial request on a streaming subscription; closing it");
                break;
            }
            Ok(None) => break,
            Err(status) => {
                tracing::debug!(error = %status.message(), "streaming subscription ended");
                break;
            }
        }
    }
    tracing::info!("streaming subscription closed");
    sink.close();
}

/// The client at the other end of one stream.
struct StreamSink {
    outbox: mpsc::Sender<Result<rt::SubscribeTopicEventsResponseAlpha1, Status>>,
    /// Deliveries waiting for the client's answer, by event id (several when a publisher
    /// reuses an id).
    waiting: Mutex<HashMap<String, VecDeque<oneshot::Sender<Outcome>>>>,
    /// Cancelled when the stream ends: the subscription stops and unsettled events go back.
    closed: CancellationToken,
    /// This stream's entry in the metadata's subscriptions, dropped when it closes.
    listing: Mutex<Option<StreamListing>>,
}

impl StreamSink {
    fn settle(&self, answer: rt::SubscribeTopicEventsRequestProcessedAlpha1) {
        let outcome = topic_outcome(answer.status.map_or(0, |s| s.status));
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let Some(queue) = waiting.get_mut(&answer.id) else {
            tracing::debug!(id = %answer.id, "an answer for no event in flight; ignored");
            return;
        };
        if let Some(waiter) = queue.pop_front() {
            let _ = waiter.send(outcome);
        }
        if queue.is_empty() {
            waiting.remove(&answer.id);
        }
    }

    fn close(&self) {
        self.closed.cancel();
        drop(
            self.listing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        // Dropping the senders wakes every delivery still waiting: they count as unreachable.
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[async_trait]
impl EventSink for StreamSink {
    async fn ready(&self, stop: &CancellationToken) -> bool {
        !stop.is_cancelled() && !self.closed.is_cancelled()
    }

    async fn deliver(&self, event: EventDelivery<'_>) -> Result<Outcome, Unreachable> {
        let request = topic_request(&event);
        let (answer, outcome) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(request.id.clone())
            .or_default()
            .push_back(answer);
        let message = rt::SubscribeTopicEventsResponseAlpha1 {
            subscribe_topic_events_response_type: Some(Outgoing::EventMessage(request)),
        };
        let sent = tokio::select! {
            _ = self.closed.cancelled() => false,
            sent = self.outbox.send(Ok(message)) => sent.is_ok(),
        };
        if !sent {
            self.close();
            return Err(Unreachable);
        }
        // An answer that came in before the stream closed still counts.
        tokio::select! {
            biased;
            outcome = outcome => outcome.map_err(|_| Unreachable),
            _ = self.closed.cancelled() => Err(Unreachable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn initial(pubsub: &str, topic: &str) -> Option<Incoming> {
        Some(Incoming::InitialRequest(
            rt::SubscribeTopicEventsRequestInitialAlpha1 {
                pubsub_name: pubsub.to_owned(),
                topic: topic.to_owned(),
                metadata: [("rawPayload".to_owned(), "true".to_owned())].into(),
                dead_letter_topic: Some("dead".to_owned()),
            },
        ))
    }

    #[test]
    fn the_initial_request_is_checked_as_daprd_does() {
        let missing = subscription_of(None).expect_err("no initial request");
        assert_eq!(missing.code(), tonic::Code::InvalidArgument);
        assert_eq!(missing.message(), "initial request is required");
        let answer = Some(Incoming::EventProcessed(
            rt::SubscribeTopicEventsRequestProcessedAlpha1::default(),
        ));
        assert!(subscription_of(answer).is_err());
        let no_pubsub = subscription_of(initial("", "t")).expect_err("no pubsub");
        assert_eq!(no_pubsub.message(), "pubsubName is required");
        let no_topic = subscription_of(initial("p", "")).expect_err("no topic");
        assert_eq!(no_topic.message(), "topic is required");
        let sub = subscription_of(initial("p", "t")).expect("valid");
        assert_eq!((sub.pubsub.as_str(), sub.topic.as_str()), ("p", "t"));
        assert!(sub.raw_payload);
        assert_eq!(sub.dead_letter_topic.as_deref(), Some("dead"));
        assert_eq!(sub.routes.route(&serde_json::json!({})), Some("/"));
    }
}
