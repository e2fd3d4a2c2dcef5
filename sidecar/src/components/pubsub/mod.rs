//! Pub/sub brokers. A broker carries opaque messages (the CloudEvent bytes the API built) per
//! topic; the runtime's delivery loop decides, per message, whether to ack (the app answered
//! SUCCESS or DROP) or nack (anything else: the broker delivers it again later). Nothing is
//! acked before the app has answered: at-least-once.

pub mod memory;
pub mod mqtt;
pub mod rabbitmq;
pub mod redis;

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// A message as a broker carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: String,
    pub data: Bytes,
    /// Broker-level metadata (passed to the app as headers on delivery).
    pub metadata: BTreeMap<String, String>,
}

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PubSubError {
    #[error("{0}")]
    Backend(String),
}

/// Settles one delivered message.
#[async_trait]
pub trait Acker: Send + Sync {
    /// Done with it: never deliver it again.
    async fn ack(self: Box<Self>);
    /// Not done: deliver it again later.
    async fn nack(self: Box<Self>);
}

/// One delivered message and the means to settle it.
pub struct Delivery {
    pub message: Message,
    pub acker: Box<dyn Acker>,
}

/// Deliveries a broker may hand over ahead of the runtime's delivery loop, per subscription:
/// twice the loop's concurrency (16), so a fast app never waits for a broker round trip while
/// a slow one holds at most this many messages in the sidecar (plus the ones it is handling).
/// Every broker awaits room before it reads or accepts more, so a slow app slows the broker read
/// (`XREADGROUP`, the AMQP prefetch window, the MQTT in-flight window) instead of growing memory.
pub const DELIVERY_BUFFER: usize = 32;

/// The channel a subscription's deliveries travel on, [`DELIVERY_BUFFER`] deep.
pub fn delivery_channel() -> (mpsc::Sender<Delivery>, mpsc::Receiver<Delivery>) {
    mpsc::channel(DELIVERY_BUFFER)
}

/// A pub/sub broker implementation.
#[async_trait]
pub trait PubSub: Send + Sync + 'static {
    /// Publishes; `Ok` means the broker holds the message.
    async fn publish(&self, message: Message) -> Result<(), PubSubError>;

    /// Starts consuming `topic` as the consumer group `consumer`; deliveries arrive on the
    /// returned channel (from [`delivery_channel`]; closed when the broker closes). The broker
    /// reads no further ahead than the channel has room for.
    async fn subscribe(
        &self,
        topic: &str,
        consumer: &str,
    ) -> Result<mpsc::Receiver<Delivery>, PubSubError>;

    /// Releases connections; called once at shutdown.
    async fn close(&self) {}
}
