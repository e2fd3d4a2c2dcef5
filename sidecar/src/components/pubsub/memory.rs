//! `pubsub.in-memory`: topics inside the sidecar's process. Every consumer group subscribed to a
//! topic gets every message once; within a group, messages go to the group's subscribers in
//! turn. A nacked message is delivered again after a short delay.
//!
//! A slow subscriber: its delivery channel is bounded like every broker's
//! ([`DELIVERY_BUFFER`](super::DELIVERY_BUFFER)); what does not fit waits in the subscriber's
//! backlog here (the broker's storage) and is fed to the channel, in order, as room appears.
//! Publishing never waits for a subscriber, so an app that publishes from its handler, even to
//! the topic it is handling, cannot deadlock with its own delivery loop. Bounded all the same: a
//! publish fails once a group holds `MAX_QUEUED` undelivered or unsettled messages, as a full
//! broker refuses, and nothing accepted is dropped while its subscriber lives (at-least-once).

use super::{Acker, Delivery, Message, PubSub, PubSubError, delivery_channel};
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::Instrument;

/// Undelivered (or unsettled) messages one consumer group may hold.
pub const MAX_QUEUED: usize = 100_000;
/// How long a nacked message waits before it is delivered again.
pub const REDELIVERY_DELAY: Duration = Duration::from_millis(500);

/// One consumer group of one topic.
struct Group {
    subscribers: Vec<Subscriber>,
    next: usize,
    in_flight: Arc<AtomicUsize>,
}

/// One subscriber's delivery channel and the messages waiting for room in it.
#[derive(Clone)]
struct Subscriber {
    tx: mpsc::Sender<Delivery>,
    backlog: Arc<Mutex<Backlog>>,
    /// The group's count of undelivered or unsettled messages.
    in_flight: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Backlog {
    waiting: VecDeque<Delivery>,
    /// A feeder task is moving `waiting` into the channel: new messages queue behind it.
    feeding: bool,
    /// The feeder found the subscriber gone: nothing is taken any more.
    gone: bool,
}

impl Subscriber {
    fn backlog(&self) -> MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `delivery` over: into the channel at once when it has room and nothing waits
    /// before it, else into the backlog (starting a feeder). Never waits. `false` when the
    /// subscriber is gone.
    fn offer(&self, delivery: Delivery) -> bool {
        let mut backlog = self.backlog();
        if backlog.gone {
            return false;
        }
        if backlog.feeding {
            backlog.waiting.push_back(delivery);
            return true;
        }
        match self.tx.try_send(delivery) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(delivery)) => {
                backlog.waiting.push_back(delivery);
                backlog.feeding = true;
                let span = tracing::debug_span!("in_memory_backlog");
                tokio::spawn(self.clone().feed().instrument(span));
                true
            }
        }
    }

    /// Moves the backlog into the channel as the subscriber makes room, until it is empty.
    async fn feed(self) {
        loop {
            let next = {
                let mut backlog = self.backlog();
                match backlog.waiting.pop_front() {
                    Some(delivery) => delivery,
                    None => {
                        backlog.feeding = false;
                        return;
                    }
                }
            };
            if self.tx.send(next).await.is_err() {
                // The subscriber is gone (shutdown); an in-memory broker cannot keep these.
                let dropped = {
                    let mut backlog = self.backlog();
                    backlog.gone = true;
                    std::mem::take(&mut backlog.waiting).len() + 1
                };
                self.in_flight.fetch_sub(dropped, Ordering::SeqCst);
                return;
            }
        }
    }
}

#[derive(Default)]
pub struct MemoryBroker {
    /// topic → consumer group → subscribers.
    topics: Mutex<HashMap<String, HashMap<String, Group>>>,
}

impl MemoryBroker {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Acks drop the message; nacks hand it back to its subscriber after a delay.
struct MemoryAcker {
    message: Message,
    retry_to: Subscriber,
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(self: Box<Self>) {
        self.retry_to.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    async fn nack(self: Box<Self>) {
        let MemoryAcker { message, retry_to } = *self;
        tokio::spawn(async move {
            tokio::time::sleep(REDELIVERY_DELAY).await;
            let again = Delivery {
                message: message.clone(),
                acker: Box::new(MemoryAcker {
                    message,
                    retry_to: retry_to.clone(),
                }),
            };
            if !retry_to.offer(again) {
                // The subscriber is gone (shutdown); an in-memory broker cannot keep it.
                retry_to.in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
}

#[async_trait]
impl PubSub for MemoryBroker {
    async fn publish(&self, message: Message) -> Result<(), PubSubError> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let Some(groups) = topics.get_mut(&message.topic) else {
            return Ok(()); // nobody subscribed: like any broker without a consumer, it is gone
        };
        for group in groups.values() {
            if group.in_flight.load(Ordering::SeqCst) >= MAX_QUEUED {
                return Err(PubSubError::Backend(format!(
                    "topic {} has {MAX_QUEUED} undelivered messages",
                    message.topic
                )));
            }
        }
        for group in groups.values_mut() {
            group.subscribers.retain(|s| !s.tx.is_closed());
            if group.subscribers.is_empty() {
                continue;
            }
            let index = group.next % group.subscribers.len();
            group.next = group.next.wrapping_add(1);
            let subscriber = &group.subscribers[index];
            group.in_flight.fetch_add(1, Ordering::SeqCst);
            let delivery = Delivery {
                message: message.clone(),
                acker: Box::new(MemoryAcker {
                    message: message.clone(),
                    retry_to: subscriber.clone(),
                }),
            };
            if !subscriber.offer(delivery) {
                group.in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: &str,
        consumer: &str,
    ) -> Result<mpsc::Receiver<Delivery>, PubSubError> {
        let (tx, rx) = delivery_channel();
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let group = topics
            .entry(topic.to_owned())
            .or_default()
            .entry(consumer.to_owned())
            .or_insert_with(|| Group {
                subscribers: Vec::new(),
                next: 0,
                in_flight: Arc::new(AtomicUsize::new(0)),
            });
        group.subscribers.push(Subscriber {
            tx,
            backlog: Arc::default(),
            in_flight: group.in_flight.clone(),
        });
        Ok(rx)
    }
}

/// `pubsub.in-memory` has no settings.
#[derive(Debug)]
pub struct MemorySettings;

#[async_trait]
impl Settings for MemorySettings {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::PubSub(Arc::new(MemoryBroker::new())))
    }
}

pub fn settings(_: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(MemorySettings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(topic: &str, body: &str) -> Message {
        Message {
            topic: topic.into(),
            data: Bytes::from(body.to_owned()),
            metadata: Default::default(),
        }
    }

    #[tokio::test]
    async fn every_group_gets_every_message_and_nacks_come_back() {
        let broker = MemoryBroker::new();
        let mut a = broker.subscribe("t", "group-a").await.expect("subscribe");
        let mut b = broker.subscribe("t", "group-b").await.expect("subscribe");
        broker.publish(msg("t", "1")).await.expect("publish");
        broker.publish(msg("other", "x")).await.expect("publish");
        let first = a.recv().await.expect("a gets it");
        assert_eq!(first.message.data, Bytes::from_static(b"1"));
        let from_b = b.recv().await.expect("b gets it");
        from_b.acker.ack().await;
        first.acker.nack().await;
        let again = tokio::time::timeout(Duration::from_secs(3), a.recv())
            .await
            .expect("redelivered")
            .expect("open");
        assert_eq!(again.message.data, Bytes::from_static(b"1"));
        again.acker.ack().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(700), a.recv())
                .await
                .is_err(),
            "acked means gone"
        );
    }

    #[tokio::test]
    async fn one_group_shares_messages_between_its_subscribers() {
        let broker = MemoryBroker::new();
        let mut one = broker.subscribe("t", "g").await.expect("subscribe");
        let mut two = broker.subscribe("t", "g").await.expect("subscribe");
        for i in 0..4 {
            broker
                .publish(msg("t", &i.to_string()))
                .await
                .expect("publish");
        }
        let mut got = 0;
        while let Ok(d) = one.try_recv() {
            d.acker.ack().await;
            got += 1;
        }
        while let Ok(d) = two.try_recv() {
            d.acker.ack().await;
            got += 10;
        }
        assert_eq!(got, 22, "two each");
    }

    #[tokio::test]
    async fn a_slow_subscriber_never_holds_up_publishers_and_misses_nothing() {
        let broker = MemoryBroker::new();
        let mut slow = broker.subscribe("t", "g").await.expect("subscribe");
        let n = 3 * super::super::DELIVERY_BUFFER + 5;
        for i in 0..n {
            tokio::time::timeout(
                Duration::from_secs(1),
                broker.publish(msg("t", &i.to_string())),
            )
            .await
            .expect("publishing does not wait for the subscriber")
            .expect("publish");
        }
        for i in 0..n {
            let d = tokio::time::timeout(Duration::from_secs(3), slow.recv())
                .await
                .expect("fed from the backlog")
                .expect("open");
            assert_eq!(d.message.data, Bytes::from(i.to_string()), "in order");
            d.acker.ack().await;
        }
        let topics = broker.topics.lock().expect("topics");
        let in_flight = topics["t"]["g"].in_flight.load(Ordering::SeqCst);
        assert_eq!(in_flight, 0, "every message settled");
    }
}
