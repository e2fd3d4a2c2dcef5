//! `pubsub.redis`: Redis Streams, laid out as Dapr lays them out so a Tandem app and a Dapr app
//! can share topics. A topic is a stream; each message is one entry with the field `data` (the
//! message bytes). A subscription is a consumer group (the component's `consumerID`, else the
//! app id) created from `0`, so messages published before the first subscription are delivered.
//! Every `subscribe` call reads as its own consumer of the group (`XREADGROUP ... >`) on a
//! dedicated connection; an ack is `XACK`, a nack leaves the entry pending, and a reclaimer
//! (`XAUTOCLAIM`, every `redeliverInterval`) delivers entries pending for longer than
//! `processingTimeout` again: at-least-once. Entries this process is still handling are claimed
//! (which keeps them idle-fresh) but not delivered twice, so a slow app causes no duplicates.
//! Nor does it make the sidecar buffer the stream: a reader waits for room in the bounded
//! delivery channel before it reads again, so a slow app slows `XREADGROUP` down.

#[cfg(test)]
mod tests;

use super::{Acker, Delivery, Message, PubSub, PubSubError, delivery_channel};
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use crate::components::redis_connection::{RedisConnection, refuse};
use crate::resiliency::Backoff;
use ::redis::aio::{ConnectionManager, MultiplexedConnection};
use ::redis::{AsyncConnectionConfig, Value};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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
/// Entries per `XREADGROUP` and how long it blocks on the server.
const READ_COUNT: usize = 10;
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

/// One stream entry: its id and its `data` field (`None` when the entry has none).
#[derive(Debug, PartialEq)]
struct Entry {
    id: String,
    data: Option<Vec<u8>>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => &[],
    }
}

/// `[id, [field, value, …]]` (RESP2) — or a fields map (RESP3).
fn parse_entry(v: &Value) -> Option<Entry> {
    let [id, fields] = items(v) else {
        return None;
    };
    let id = text(id)?;
    let mut data = None;
    let mut take = |k: &Value, val: &Value| {
        if text(k).as_deref() == Some("data") {
            data = match val {
                Value::BulkString(b) => Some(b.clone()),
                Value::SimpleString(s) => Some(s.clone().into_bytes()),
                _ => None,
            };
        }
    };
    match fields {
        Value::Map(pairs) => pairs.iter().for_each(|(k, val)| take(k, val)),
        other => items(other)
            .chunks_exact(2)
            .for_each(|pair| take(&pair[0], &pair[1])),
    }
    Some(Entry { id, data })
}

fn parse_entries(v: &Value) -> Vec<Entry> {
    items(v).iter().filter_map(parse_entry).collect()
}

/// The entries of an `XREADGROUP` reply for one stream (nil when the block timed out).
fn parse_read(v: &Value) -> Vec<Entry> {
    match v {
        Value::Map(streams) => streams
            .iter()
            .flat_map(|(_, entries)| parse_entries(entries))
            .collect(),
        other => items(other)
            .iter()
            .flat_map(|stream| match items(stream) {
                [_, entries] => parse_entries(entries),
                _ => Vec::new(),
            })
            .collect(),
    }
}

/// The claimed entries of an `XAUTOCLAIM` reply: `[next, [entries…], [deleted…]]`.
fn parse_claim(v: &Value) -> Vec<Entry> {
    match items(v) {
        [_, entries, ..] => parse_entries(entries),
        _ => Vec::new(),
    }
}

/// What every delivery of one subscription shares.
#[derive(Clone)]
struct Subscription {
    conn: ConnectionManager,
    topic: String,
    group: String,
    consumer: String,
    tx: mpsc::Sender<Delivery>,
    /// Entries handed to the runtime and not yet settled. The reclaimer's `XAUTOCLAIM` still
    /// claims them (which resets their idle time: a heartbeat) but does not deliver them twice.
    in_flight: InFlight,
}

/// Entry ids delivered by this process and not yet acked or nacked.
type InFlight = Arc<Mutex<HashSet<String>>>;

/// Acks with `XACK`; a nack leaves the entry pending for the reclaimer.
struct RedisAcker {
    conn: ConnectionManager,
    topic: String,
    group: String,
    id: String,
    in_flight: InFlight,
}

impl RedisAcker {
    fn settled(&self) {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

#[async_trait]
impl Acker for RedisAcker {
    async fn ack(self: Box<Self>) {
        // Retried through a short outage: while the XACK is outstanding the entry stays in
        // flight here, so the reclaimer does not hand it out again (a duplicate) meanwhile.
        let deadline = tokio::time::Instant::now() + ACK_RETRY_FOR;
        let mut backoff = BACKOFF;
        loop {
            let acked: Result<i64, _> = ::redis::cmd("XACK")
                .arg(&self.topic)
                .arg(&self.group)
                .arg(&self.id)
                .query_async(&mut self.conn.clone())
                .await;
            let Err(e) = acked else { break };
            let delay = backoff.next();
            if tokio::time::Instant::now() + delay > deadline {
                // Still pending: the reclaimer delivers it again (at-least-once).
                tracing::warn!(topic = %self.topic, group = %self.group, id = %self.id, error = %e, "redis XACK failed");
                break;
            }
            tokio::time::sleep(delay).await;
        }
        self.settled();
    }

    async fn nack(self: Box<Self>) {
        self.settled();
    }
}

impl Subscription {
    /// Sends one delivery per entry, waiting for room in the channel; `false` once the receiver
    /// is gone or the broker closes.
    async fn deliver(&self, entries: Vec<Entry>, stop: &CancellationToken) -> bool {
        for entry in entries {
            let fresh = self
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(entry.id.clone());
            if !fresh {
                continue; // still being handled here; the claim only refreshed its idle time
            }
            let acker = RedisAcker {
                conn: self.conn.clone(),
                topic: self.topic.clone(),
                group: self.group.clone(),
                id: entry.id,
                in_flight: self.in_flight.clone(),
            };
            let Some(data) = entry.data else {
                tracing::warn!(topic = %self.topic, id = %acker.id, "redis stream entry without a data field; skipped");
                Box::new(acker).ack().await;
                continue;
            };
            let delivery = Delivery {
                message: Message {
                    topic: self.topic.clone(),
                    data: Bytes::from(data),
                    metadata: Default::default(),
                },
                acker: Box::new(acker),
            };
            let sent = tokio::select! {
                _ = stop.cancelled() => return false,
                sent = self.tx.send(delivery) => sent,
            };
            if sent.is_err() {
                return false;
            }
        }
        true
    }

    /// Reads new entries until the receiver is dropped or the broker closes.
    async fn read_loop(
        self,
        client: ::redis::Client,
        cfg: RedisPubSubConfig,
        stop: CancellationToken,
    ) {
        let conn_cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(cfg.connection.dial_timeout))
            .set_response_timeout(Some(READ_BLOCK + cfg.connection.response_timeout));
        let mut backoff = BACKOFF;
        loop {
            let connected = tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.tx.closed() => return,
                c = client.get_multiplexed_async_connection_with_config(&conn_cfg) => c,
            };
            let mut conn: MultiplexedConnection = match connected {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "redis pubsub reader cannot connect");
                    if !self.pause(&stop, &mut backoff).await {
                        return;
                    }
                    continue;
                }
            };
            loop {
                let mut read = ::redis::cmd("XREADGROUP");
                read.arg("GROUP")
                    .arg(&self.group)
                    .arg(&self.consumer)
                    .arg("COUNT")
                    .arg(READ_COUNT)
                    .arg("BLOCK")
                    .arg(READ_BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&self.topic)
                    .arg(">");
                let reply: Result<Value, _> = tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = self.tx.closed() => return,
                    r = read.query_async(&mut conn) => r,
                };
                match reply {
                    Ok(v) => {
                        backoff.reset();
                        if !self.deliver(parse_read(&v), &stop).await {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(topic = %self.topic, group = %self.group, error = %e, "redis XREADGROUP failed");
                        if !self.pause(&stop, &mut backoff).await {
                            return;
                        }
                        // The stream (and its group) may have been deleted: create them again.
                        if let Err(e) = ensure_group(&mut conn, &self.topic, &self.group).await {
                            tracing::warn!(topic = %self.topic, error = %e, "redis XGROUP CREATE failed");
                            break; // reconnect
                        }
                    }
                }
            }
        }
    }

    /// Sleeps the back-off; `false` when the subscription ended meanwhile.
    async fn pause(&self, stop: &CancellationToken, backoff: &mut Backoff) -> bool {
        tokio::select! {
            _ = self.tx.closed() => false,
            slept = backoff.sleep(stop) => slept,
        }
    }

    /// Every `interval`, claims entries pending longer than `min_idle` and delivers them again.
    async fn reclaim_loop(self, interval: Duration, min_idle: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.tx.closed() => return,
                _ = tick.tick() => {}
            }
            let mut start = "0-0".to_owned();
            // Walk the whole pending list, a page at a time.
            loop {
                let claimed: Result<Value, _> = ::redis::cmd("XAUTOCLAIM")
                    .arg(&self.topic)
                    .arg(&self.group)
                    .arg(&self.consumer)
                    .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
                    .arg(&start)
                    .arg("COUNT")
                    .arg(CLAIM_COUNT)
                    .query_async(&mut self.conn.clone())
                    .await;
                let reply = match claimed {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(topic = %self.topic, group = %self.group, error = %e, "redis XAUTOCLAIM failed");
                        break;
                    }
                };
                if !self.deliver(parse_claim(&reply), &stop).await {
                    return;
                }
                match items(&reply).first().and_then(text) {
                    Some(next) if next != "0-0" && next != start => start = next,
                    _ => break,
                }
            }
        }
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
