//! `pubsub.mqtt3` (alias `pubsub.mqtt`): MQTT 3.1.1, as Dapr's component uses it, so Tandem and
//! Dapr apps can share topics. A pub/sub topic is an MQTT topic name; a subscription may name a
//! topic filter with `+` and `#`, and each message it receives carries its concrete topic (the
//! CloudEvent's `topic` of a raw message, as with Dapr). The message bytes are the MQTT payload.
//!
//! Publishing goes through one connection of its own (client id `<consumerID>-pub-<random>`, clean
//! session) and returns once the broker acknowledged the message. Each consumer group is one
//! subscribing connection whose client id is the group (`consumerID`, else the app id), with the
//! component's `cleanSession` (false by default: the broker keeps the group's session, so
//! messages published while it is away or not yet acknowledged reach it when it returns). MQTT 3
//! has no shared subscriptions: every group gets every message, and two sidecars in one group
//! take the client id from each other, as with Dapr.
//!
//! At-least-once: a message is PUBACKed only when the runtime acks it. A nack cannot be told to
//! the broker (MQTT 3 brokers redeliver only after a reconnect), so it is delivered again in
//! process after a back-off (200 ms, doubling to 10 s), up to `backOffMaxRetries` times (no limit
//! when unset or -1), and acked only when finally done; one it gives up on stays unacknowledged
//! with the broker. If the connection dropped in between and the broker resumed the session, the
//! broker sends the message again itself and the in-process copy is dropped.

#[cfg(test)]
mod tests;

use super::{Acker, Delivery, Message, PubSub, PubSubError, delivery_channel};
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use crate::components::mqtt_connection::client::{Inbound, MqttClient, check_filter};
use crate::components::mqtt_connection::{MqttSettings, may_redeliver, redelivery_delay};
use async_trait::async_trait;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The broker.
pub struct MqttPubSub {
    settings: MqttSettings,
    producer: MqttClient,
    /// Subscribing connections by client id (consumer group).
    consumers: Mutex<HashMap<String, Arc<MqttClient>>>,
    stop: CancellationToken,
}

impl std::fmt::Debug for MqttPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttPubSub")
            .field("settings", &self.settings)
            .finish()
    }
}

impl MqttPubSub {
    /// Connects the publishing connection; fails (and init is retried) while the broker is down.
    pub async fn connect(settings: &MqttSettings) -> Result<Self, String> {
        let client_id = format!(
            "{}-pub-{:08x}",
            settings.consumer_id.as_deref().unwrap_or("tandem"),
            rand::random::<u32>()
        );
        let producer = MqttClient::connect(settings, &client_id, true).await?;
        Ok(MqttPubSub {
            settings: settings.clone(),
            producer,
            consumers: Mutex::default(),
            stop: CancellationToken::new(),
        })
    }

    /// The subscribing connection of a consumer group, connected on first use.
    async fn consumer(&self, client_id: &str) -> Result<Arc<MqttClient>, String> {
        let mut consumers = self.consumers.lock().await;
        if let Some(client) = consumers.get(client_id) {
            return Ok(client.clone());
        }
        let client = Arc::new(
            MqttClient::connect(&self.settings, client_id, self.settings.clean_session).await?,
        );
        consumers.insert(client_id.to_owned(), client.clone());
        Ok(client)
    }
}

/// One received message, shared by its in-process redeliveries.
struct Received {
    inbound: Inbound,
    message: Message,
}

/// Settles one delivery: ack PUBACKs, nack delivers it again in process after a back-off.
struct MqttAcker {
    received: Arc<Received>,
    /// In-process redeliveries so far.
    redelivered: u32,
    max_retries: Option<u32>,
    retry_to: mpsc::Sender<Delivery>,
    stop: CancellationToken,
}

impl MqttAcker {
    fn delivery(self) -> Delivery {
        Delivery {
            message: self.received.message.clone(),
            acker: Box::new(self),
        }
    }
}

#[async_trait]
impl Acker for MqttAcker {
    async fn ack(self: Box<Self>) {
        self.received.inbound.receipt.ack().await;
    }

    async fn nack(self: Box<Self>) {
        let receipt = &self.received.inbound.receipt;
        if receipt.closed() || receipt.superseded() {
            return; // the broker has it and sends it again (or the component is shutting down)
        }
        if !may_redeliver(self.max_retries, self.redelivered) {
            tracing::error!(topic = %self.received.message.topic, retries = self.redelivered,
                "mqtt message failed backOffMaxRetries times; left unacknowledged with the broker");
            return;
        }
        let mut again = *self;
        again.redelivered += 1;
        tokio::spawn(async move {
            let due = tokio::select! {
                _ = again.stop.cancelled() => false,
                _ = again.retry_to.closed() => false,
                _ = tokio::time::sleep(redelivery_delay(again.redelivered)) => true,
            };
            if due {
                let retry_to = again.retry_to.clone();
                let stop = again.stop.clone();
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = retry_to.send(again.delivery()) => {}
                }
            }
        });
    }
}

/// Turns a subscription's incoming messages into deliveries until either side ends, waiting
/// for room in the delivery channel (the broker's in-flight window bounds what waits meanwhile).
async fn forward(
    mut inbound: mpsc::Receiver<Inbound>,
    tx: mpsc::Sender<Delivery>,
    max_retries: Option<u32>,
    stop: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tx.closed() => return,
            m = inbound.recv() => m,
        };
        let Some(inbound) = next else { return };
        let message = Message {
            topic: inbound.topic.clone(),
            data: inbound.payload.clone(),
            metadata: [("retained".to_owned(), inbound.retained.to_string())].into(),
        };
        let acker = MqttAcker {
            received: Arc::new(Received { inbound, message }),
            redelivered: 0,
            max_retries,
            retry_to: tx.clone(),
            stop: stop.clone(),
        };
        let sent = tokio::select! {
            _ = stop.cancelled() => return,
            sent = tx.send(acker.delivery()) => sent,
        };
        if sent.is_err() {
            return;
        }
    }
}

#[async_trait]
impl PubSub for MqttPubSub {
    async fn publish(&self, message: Message) -> Result<(), PubSubError> {
        self.producer
            .publish(&message.topic, &message.data, self.settings.retain)
            .await
            .map_err(PubSubError::Backend)
    }

    async fn subscribe(
        &self,
        topic: &str,
        consumer: &str,
    ) -> Result<mpsc::Receiver<Delivery>, PubSubError> {
        if self.stop.is_cancelled() {
            return Err(PubSubError::Backend("mqtt pubsub is closed".into()));
        }
        check_filter(topic).map_err(PubSubError::Backend)?;
        let client_id = self.settings.consumer_id.as_deref().unwrap_or(consumer);
        let client = self
            .consumer(client_id)
            .await
            .map_err(PubSubError::Backend)?;
        let inbound = client
            .subscribe(topic)
            .await
            .map_err(PubSubError::Backend)?;
        let (tx, rx) = delivery_channel();
        let span = tracing::info_span!("mqtt_subscription", %topic, %client_id);
        tokio::spawn(
            forward(inbound, tx, self.settings.max_retries, self.stop.clone()).instrument(span),
        );
        Ok(rx)
    }

    async fn close(&self) {
        self.stop.cancel();
        self.producer.close().await;
        let consumers: Vec<_> = self.consumers.lock().await.drain().collect();
        for (_, client) in consumers {
            client.close().await;
        }
    }
}

/// `pubsub.mqtt3`: the shared MQTT connection settings.
#[derive(Debug)]
pub struct MqttPubSubSettings(MqttSettings);

#[async_trait]
impl Settings for MqttPubSubSettings {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::PubSub(Arc::new(
            MqttPubSub::connect(&self.0).await?,
        )))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(MqttPubSubSettings(MqttSettings::from_metadata(
        md,
    )?)))
}
