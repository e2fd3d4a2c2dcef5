//! `pubsub.rabbitmq`: AMQP 0-9-1, laid out as Dapr lays it out so Tandem and Dapr apps can share
//! topics. A topic is an exchange of that name (`exchangeKind`, fanout by default); a consumer
//! group (`consumerID`, else the app id) is the queue `<group>-<topic>` bound to it with an empty
//! routing key, so every group gets every message and a group's subscribers share its queue.
//!
//! - Publishing always uses publisher confirms: `publish` answers `Ok` only once the broker has
//!   confirmed the message (`publisherConfirm: false` is accepted, but confirms stay on, since a
//!   publish that returns before the broker holds the message can be lost silently).
//! - A delivery is acked (`basic.ack`) only when the runtime acks it; a nack requeues it
//!   (`basic.nack`, requeue) unless dead-lettering takes it: see
//!   [`RabbitMqConfig::requeue_on_nack`]. With `autoAck` the broker forgets messages on send.
//! - Back-pressure: a subscription forwards a delivery only when the bounded delivery channel
//!   has room, and its channel's prefetch window (`prefetchCount`, [`config::DEFAULT_PREFETCH`] when 0)
//!   bounds what the broker sends ahead, so a slow app leaves messages in the queue rather than
//!   in the sidecar's memory. (With `autoAck` the broker does not wait for acks, so no window
//!   applies: that mode trades the guarantee for speed.)
//! - Unacknowledged deliveries of a consumer that goes away return to the queue, for the group's
//!   other subscribers, or for the next one if the queue outlives its consumers
//!   (`deletedWhenUnused: false`).
//! - When the connection drops, a supervisor reconnects every `reconnectWait`; each
//!   subscription declares its exchange and queue again and resumes consuming.

mod config;
mod live;

#[cfg(test)]
mod tests;

pub use config::RabbitMqConfig;

use live::{Live, connect};

use super::{Acker, Delivery, Message, PubSub, PubSubError, delivery_channel};
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a publish or a subscribe may take, waiting for a reconnect included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a live connection's state is checked, besides its error events.
const HEALTH_CHECK: Duration = Duration::from_secs(1);

struct Inner {
    cfg: RabbitMqConfig,
    /// `rabbitmq at host:port`, for messages.
    target: String,
    current: watch::Sender<Option<Arc<Live>>>,
    stop: CancellationToken,
}

/// The broker.
pub struct RabbitMqPubSub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RabbitMqPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqPubSub")
            .field("cfg", &self.inner.cfg)
            .finish()
    }
}

impl RabbitMqPubSub {
    /// Connects; fails (and init is retried) while the broker is down.
    pub async fn connect(cfg: &RabbitMqConfig) -> Result<Self, String> {
        let target = cfg.target();
        let live = connect(cfg, &target).await?;
        let inner = Arc::new(Inner {
            cfg: cfg.clone(),
            target,
            current: watch::channel(Some(live.clone())).0,
            stop: CancellationToken::new(),
        });
        let span = tracing::info_span!("rabbitmq", target = %inner.target);
        tokio::spawn(inner.clone().supervise(live).instrument(span));
        Ok(RabbitMqPubSub { inner })
    }
}

impl Drop for RabbitMqPubSub {
    fn drop(&mut self) {
        self.inner.stop.cancel();
    }
}

impl Inner {
    /// The live connection, waiting up to [`REQUEST_TIMEOUT`] for a reconnect.
    async fn live(&self) -> Result<Arc<Live>, String> {
        let mut current = self.current.subscribe();
        tokio::select! {
            _ = self.stop.cancelled() => Err("rabbitmq pubsub is closed".into()),
            _ = tokio::time::sleep(REQUEST_TIMEOUT) => Err(format!("no connection to {} in time", self.target)),
            live = current.wait_for(Option::is_some) => live
                .ok()
                .and_then(|l| l.clone())
                .ok_or_else(|| "rabbitmq pubsub is closed".into()),
        }
    }

    /// Watches the connection and replaces it when it fails, until stopped.
    async fn supervise(self: Arc<Self>, mut live: Arc<Live>) {
        loop {
            if !self.wait_broken(&live).await {
                return;
            }
            self.current.send_replace(None);
            tracing::warn!("lost the connection to {}; reconnecting", self.target);
            live = loop {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tokio::time::sleep(self.cfg.reconnect_wait) => {}
                }
                match connect(&self.cfg, &self.target).await {
                    Ok(live) => break live,
                    Err(e) => tracing::warn!(error = %e, "rabbitmq reconnect failed"),
                }
            };
            tracing::info!("reconnected to {}", self.target);
            self.current.send_replace(Some(live.clone()));
        }
    }

    /// Returns `true` once `live` has failed, `false` when stopped (closing it).
    async fn wait_broken(&self, live: &Live) -> bool {
        let mut events = live.conn.events_listener();
        let mut check = tokio::time::interval(HEALTH_CHECK);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => {
                    let _ = live.conn.close(200, "OK".into()).await;
                    return false;
                }
                event = events.next() => match event {
                    None | Some(lapin::Event::Error(_)) => return true,
                    Some(_) => {}
                },
                _ = check.tick() => if !live.conn.status().connected() {
                    return true;
                },
            }
        }
    }

    /// Forwards one subscription's deliveries, consuming again after a failure, until the
    /// broker closes or the receiver is dropped.
    async fn consume_loop(
        self: Arc<Self>,
        topic: String,
        queue: String,
        tx: mpsc::Sender<Delivery>,
        (mut channel, mut consumer): (Channel, lapin::Consumer),
    ) {
        let requeue = self.cfg.requeue_on_nack();
        loop {
            loop {
                let next = tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tx.closed() => {
                        // Unacknowledged deliveries go back to the queue.
                        let _ = channel.close(200, "OK".into()).await;
                        return;
                    }
                    d = consumer.next() => d,
                };
                let delivery = match next {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => {
                        tracing::warn!(%queue, error = %e, "rabbitmq consumer failed");
                        break;
                    }
                    None => break,
                };
                let delivery = Delivery {
                    message: Message {
                        topic: topic.clone(),
                        data: delivery.data.into(),
                        metadata: Default::default(),
                    },
                    acker: Box::new(RabbitAcker {
                        acker: delivery.acker,
                        requeue,
                        auto_ack: self.cfg.auto_ack,
                    }),
                };
                let sent = tokio::select! {
                    _ = self.stop.cancelled() => return,
                    sent = tx.send(delivery) => sent,
                };
                if sent.is_err() {
                    let _ = channel.close(200, "OK".into()).await;
                    return;
                }
            }
            (channel, consumer) = loop {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(self.cfg.reconnect_wait) => {}
                }
                let Ok(live) = self.live().await else {
                    continue;
                };
                match live.consume(&self.cfg, &topic, &queue).await {
                    Ok(consuming) => break consuming,
                    Err(e) => tracing::warn!(%queue, error = %e, "rabbitmq consume again failed"),
                }
            };
            tracing::info!(%queue, "consuming again");
        }
    }
}

/// Settles one delivery with `basic.ack` / `basic.nack`. An acker whose channel has closed does
/// nothing: the broker has already put the message back.
struct RabbitAcker {
    acker: lapin::Acker,
    requeue: bool,
    auto_ack: bool,
}

#[async_trait]
impl Acker for RabbitAcker {
    async fn ack(self: Box<Self>) {
        if self.auto_ack {
            return;
        }
        if let Err(e) = self.acker.ack(BasicAckOptions::default()).await {
            tracing::warn!(error = %e, "rabbitmq basic.ack failed; the message will come again");
        }
    }

    async fn nack(self: Box<Self>) {
        if self.auto_ack {
            return;
        }
        let options = BasicNackOptions {
            requeue: self.requeue,
            ..BasicNackOptions::default()
        };
        if let Err(e) = self.acker.nack(options).await {
            tracing::warn!(error = %e, "rabbitmq basic.nack failed");
        }
    }
}

#[async_trait]
impl PubSub for RabbitMqPubSub {
    async fn publish(&self, message: Message) -> Result<(), PubSubError> {
        let inner = &self.inner;
        let published = tokio::time::timeout(REQUEST_TIMEOUT, async {
            inner.live().await?.publish(&inner.cfg, &message).await
        })
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        published.map_err(|e| {
            PubSubError::Backend(format!(
                "rabbitmq publish to {:?} at {}: {e}",
                message.topic, inner.target
            ))
        })
    }

    async fn subscribe(
        &self,
        topic: &str,
        consumer: &str,
    ) -> Result<mpsc::Receiver<Delivery>, PubSubError> {
        let inner = &self.inner;
        let group = inner.cfg.consumer_id.as_deref().unwrap_or(consumer);
        let queue = format!("{group}-{topic}");
        let fail = |e: String| {
            PubSubError::Backend(format!(
                "rabbitmq subscribe to {topic:?} as {queue:?} at {}: {e}",
                inner.target
            ))
        };
        let live = inner.live().await.map_err(fail)?;
        let consuming = live
            .consume(&inner.cfg, topic, &queue)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (tx, rx) = delivery_channel();
        let span = tracing::info_span!("rabbitmq_subscription", %topic, %queue);
        tokio::spawn(
            inner
                .clone()
                .consume_loop(topic.to_owned(), queue, tx, consuming)
                .instrument(span),
        );
        Ok(rx)
    }

    async fn close(&self) {
        self.inner.stop.cancel();
        let live = self.inner.current.send_replace(None);
        if let Some(live) = live {
            let _ = live.conn.close(200, "OK".into()).await;
        }
    }
}

#[async_trait]
impl Settings for RabbitMqConfig {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::PubSub(Arc::new(
            RabbitMqPubSub::connect(self).await?,
        )))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(RabbitMqConfig::from_metadata(md)?))
}
