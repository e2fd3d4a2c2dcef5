//! One subscription's work: a reader (`XREADGROUP ... >` on its own connection, waiting for room in
//! the bounded delivery channel before it reads again), the reclaimer (`XAUTOCLAIM` of entries
//! pending longer than `processingTimeout`), and the acker each delivery carries (`XACK` through
//! the subscription's batching [`AckQueue`]; a nack leaves the entry pending).

use super::acks::AckQueue;
use super::entries::{Entry, items, parse_claim, parse_read, text};
use super::{BACKOFF, CLAIM_COUNT, READ_BLOCK, READ_COUNT, RedisPubSubConfig, ensure_group};
use crate::components::pubsub::{Acker, Delivery, Message};
use crate::resiliency::Backoff;
use ::redis::aio::{ConnectionManager, MultiplexedConnection};
use ::redis::{AsyncConnectionConfig, Value};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What every delivery of one subscription shares.
#[derive(Clone)]
pub(super) struct Subscription {
    /// Where this subscription's acks go, batched into `XACK`s.
    pub(super) acks: AckQueue,
    pub(super) conn: ConnectionManager,
    pub(super) topic: String,
    pub(super) group: String,
    pub(super) consumer: String,
    pub(super) tx: mpsc::Sender<Delivery>,
    /// Entries handed to the runtime and not yet settled. The reclaimer's `XAUTOCLAIM` still
    /// claims them (which resets their idle time: a heartbeat) but does not deliver them twice.
    pub(super) in_flight: InFlight,
}

/// Entry ids delivered by this process and not yet acked or nacked.
pub(super) type InFlight = Arc<Mutex<HashSet<String>>>;

/// Acks with `XACK`; a nack leaves the entry pending for the reclaimer.
struct RedisAcker {
    acks: AckQueue,
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
        self.acks.ack(self.id.clone()).await;
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
                acks: self.acks.clone(),
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
    pub(super) async fn read_loop(
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
    pub(super) async fn reclaim_loop(
        self,
        interval: Duration,
        min_idle: Duration,
        stop: CancellationToken,
    ) {
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
