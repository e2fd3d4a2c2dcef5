//! `pubsub.in-memory`: topics inside the sidecar's process. Every consumer group subscribed to a
//! topic gets every message once; within a group, messages go to the group's subscribers in
//! turn. A nacked message is delivered again after a short delay. Bounded: a publish fails once
//! a group holds `MAX_QUEUED` undelivered messages, instead of growing without limit.

use super::{Acker, Delivery, Message, PubSub, PubSubError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Undelivered (or unsettled) messages one consumer group may hold.
pub const MAX_QUEUED: usize = 100_000;
/// How long a nacked message waits before it is delivered again.
pub const REDELIVERY_DELAY: Duration = Duration::from_millis(500);

/// One consumer group of one topic.
struct Group {
    subscribers: Vec<mpsc::UnboundedSender<Delivery>>,
    next: usize,
    in_flight: Arc<AtomicUsize>,
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

/// Acks drop the message; nacks send it back to its group after a delay.
struct MemoryAcker {
    message: Message,
    retry_to: mpsc::UnboundedSender<Delivery>,
    in_flight: Arc<AtomicUsize>,
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(self: Box<Self>) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    async fn nack(self: Box<Self>) {
        let MemoryAcker {
            message,
            retry_to,
            in_flight,
        } = *self;
        tokio::spawn(async move {
            tokio::time::sleep(REDELIVERY_DELAY).await;
            let again = Delivery {
                message: message.clone(),
                acker: Box::new(MemoryAcker {
                    message,
                    retry_to: retry_to.clone(),
                    in_flight: in_flight.clone(),
                }),
            };
            if retry_to.send(again).is_err() {
                // The subscriber is gone (shutdown); an in-memory broker cannot keep it.
                in_flight.fetch_sub(1, Ordering::SeqCst);
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
            group.subscribers.retain(|s| !s.is_closed());
            if group.subscribers.is_empty() {
                continue;
            }
            let index = group.next % group.subscribers.len();
            group.next = group.next.wrapping_add(1);
            let sender = group.subscribers[index].clone();
            group.in_flight.fetch_add(1, Ordering::SeqCst);
            let delivery = Delivery {
                message: message.clone(),
                acker: Box::new(MemoryAcker {
                    message: message.clone(),
                    retry_to: sender.clone(),
                    in_flight: group.in_flight.clone(),
                }),
            };
            if sender.send(delivery).is_err() {
                group.in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: &str,
        consumer: &str,
    ) -> Result<mpsc::UnboundedReceiver<Delivery>, PubSubError> {
        let (tx, rx) = mpsc::unbounded_channel();
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
        group.subscribers.push(tx);
        Ok(rx)
    }
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
}
