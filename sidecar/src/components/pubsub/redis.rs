//! `pubsub.redis`: Redis Streams, laid out as Dapr lays them out so a Tandem app and a Dapr app
//! can share topics. A topic is a stream; each message is one entry with the field `data` (the
//! message bytes). A subscription is a consumer group (the component's `consumerID`, else the
//! app id) created from `0`, so messages published before the first subscription are delivered.
//! Every `subscribe` call reads as its own consumer of the group (`XREADGROUP ... >`) on a
//! dedicated connection; an ack is `XACK` (batched: the acks that come while one `XACK` is on
//! the wire go together in the next, see `acks`), a nack leaves the entry pending, and a reclaimer
//! (`XAUTOCLAIM`, every `redeliverInterval`) delivers entries pending for longer than
//! `processingTimeout` again: at-least-once. Entries this process is still handling are claimed
//! (which keeps them idle-fresh) but not delivered twice, so a slow app causes no duplicates.
//! Nor does it make the sidecar buffer the stream: a reader waits for room in the bounded
//! delivery channel before it reads again, so a slow app slows `XREADGROUP` down.

mod acks;
mod entries;
mod subscription;
#[cfg(test)]
mod tests;

use super::{Delivery, Message, PubSub, PubSubError, delivery_channel};
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use crate::components::redis_connection::{RedisConnection, refuse};
use crate::resiliency::Backoff;
use ::redis::Value;
use ::redis::aio::ConnectionManager;
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subscription::Subscription;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Validated settings of a `pubsub.redis` component.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisPubSubConfig {
    pub connection: RedisConnection,
    /// The consumer group; when unset, the consumer `subscribe` is given (the app id).
    pub consumer_id: Option<String>,
    /// How long a delivered entry may stay unacknowledged before it is delivered again.
    pub processing_timeout: Duration,
    /// How often pending entries are checked for redelivery; `None` disables redelivery.
    pub redeliver_interval: Option<Duration>,
    /// `MAXLEN ~ n` on every publish.
    pub max_len_approx: Option<u64>,
    /// `MINID ~ now - ttl` on every publish (when `max_len_approx` is unset).
    pub stream_ttl: Option<Duration>,
}

/// Dapr's defaults.
const DEFAULT_PROCESSING_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_REDELIVER_INTERVAL: Duration = Duration::from_secs(60);
/// Entries per `XREADGROUP` (as many as the delivery channel holds: the reader waits for room
/// for each before it reads again) and how long it blocks on the server.
const READ_COUNT: usize = super::DELIVERY_BUFFER;
const READ_BLOCK: Duration = Duration::from_secs(1);
/// How long an `XACK` is retried through a broker outage.
const ACK_RETRY_FOR: Duration = Duration::from_secs(10);
/// Entries per `XAUTOCLAIM`.
const CLAIM_COUNT: usize = 100;
/// Back-off of a reader after a network error, and between `XACK` attempts.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));

impl RedisPubSubConfig {
    /// Reads the fields Tandem uses; Dapr's other fields (pool sizes, retries, queueDepth,
    /// concurrency, …) are accepted and ignored so existing component files load unchanged.
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        let connection = RedisConnection::from_metadata(md)?;
        for field in ["queueDepth", "concurrency"] {
            if let Some(n) = md.int(field)?
                && n < 0
            {
                return Err(refuse(field, &n.to_string(), "must be 0 or more"));
            }
        }
        let max_len_approx = match md.int("maxLenApprox")? {
            None => None,
            Some(n) => Some(
                u64::try_from(n)
                    .map_err(|_| refuse("maxLenApprox", &n.to_string(), "must be 0 or more"))?,
            ),
        }
        .filter(|n| *n > 0);
        let processing_timeout = md
            .duration("processingTimeout")?
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_PROCESSING_TIMEOUT);
        let redeliver_interval = match md.duration("redeliverInterval")? {
            None => Some(DEFAULT_REDELIVER_INTERVAL),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        };
        Ok(RedisPubSubConfig {
            connection,
            consumer_id: md.get("consumerID").map(str::to_owned),
            processing_timeout,
            redeliver_interval,
            max_len_approx,
            stream_ttl: md.duration("streamTTL")?.filter(|d| !d.is_zero()),
        })
    }
}

/// The broker. Publishes, acks and group creation share one `ConnectionManager` (multiplexed,
/// reconnects on its own); every subscription's blocking reads run on a connection of their own.
pub struct RedisPubSub {
    client: ::redis::Client,
    conn: ConnectionManager,
    cfg: RedisPubSubConfig,
    stop: CancellationToken,
}

impl std::fmt::Debug for RedisPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPubSub")
            .field("cfg", &self.cfg)
            .finish()
    }
}

fn backend(what: &str, topic: &str, err: ::redis::RedisError) -> PubSubError {
    PubSubError::Backend(format!("redis {what} {topic:?}: {err}"))
}

impl RedisPubSub {
    /// Connects and sends PING, so a component init fails (and is retried) while Redis is down.
    pub async fn connect(cfg: &RedisPubSubConfig) -> Result<Self, String> {
        let client = cfg.connection.client()?;
        let conn = cfg.connection.manager(client.clone()).await?;
        Ok(RedisPubSub {
            client,
            conn,
            cfg: cfg.clone(),
            stop: CancellationToken::new(),
        })
    }
}

/// `XGROUP CREATE <topic> <group> 0 MKSTREAM`; an existing group is fine.
async fn ensure_group<C: ::redis::aio::ConnectionLike>(
    conn: &mut C,
    topic: &str,
    group: &str,
) -> Result<(), ::redis::RedisError> {
    let created: Result<Value, _> = ::redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(topic)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") || e.to_string().contains("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}
#[async_trait]
impl PubSub for RedisPubSub {
    async fn publish(&self, message: Message) -> Result<(), PubSubError> {
        let mut add = ::redis::cmd("XADD");
        add.arg(&message.topic);
        if let Some(n) = self.cfg.max_len_approx {
            add.arg("MAXLEN").arg("~").arg(n);
        } else if let Some(ttl) = self.cfg.stream_ttl {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let min = now.saturating_sub(ttl).as_millis();
            add.arg("MINID").arg("~").arg(format!("{min}-0"));
        }
        add.arg("*").arg("data").arg(message.data.as_ref());
        let _: Value = add
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| backend("XADD", &message.topic, e))?;
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: &str,
        consumer: &str,
    ) -> Result<mpsc::Receiver<Delivery>, PubSubError> {
        if self.stop.is_cancelled() {
            return Err(PubSubError::Backend("redis pubsub is closed".into()));
        }
        let group = self
            .cfg
            .consumer_id
            .clone()
            .unwrap_or_else(|| consumer.to_owned());
        ensure_group(&mut self.conn.clone(), topic, &group)
            .await
            .map_err(|e| backend("XGROUP CREATE", topic, e))?;
        let (tx, rx) = delivery_channel();
        let sub = Subscription {
            acks: acks::AckQueue::start(self.conn.clone(), topic.to_owned(), group.clone()),
            conn: self.conn.clone(),
            topic: topic.to_owned(),
            consumer: format!("{group}-{:016x}", rand::random::<u64>()),
            group,
            tx,
            in_flight: Arc::default(),
        };
        if let Some(interval) = self.cfg.redeliver_interval {
            tokio::spawn(sub.clone().reclaim_loop(
                interval,
                self.cfg.processing_timeout,
                self.stop.clone(),
            ));
        }
        tokio::spawn(sub.read_loop(self.client.clone(), self.cfg.clone(), self.stop.clone()));
        Ok(rx)
    }

    async fn close(&self) {
        self.stop.cancel();
    }
}

#[async_trait]
impl Settings for RedisPubSubConfig {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::PubSub(Arc::new(
            RedisPubSub::connect(self).await?,
        )))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(RedisPubSubConfig::from_metadata(md)?))
}
