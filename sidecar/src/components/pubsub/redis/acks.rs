//! A subscription's acks, batched as a group commit: the acks that arrive while one `XACK` is on
//! the wire go together in the next one (`XACK <topic> <group> <id>…`, up to [`MAX_BATCH`] ids).
//! A quiet stream's ack goes out at once, so batching adds no wait; a busy one sends one command
//! and one round trip per batch instead of per message. An ack still returns only once Redis has
//! it (or its retries are over, which leaves the entry pending for the reclaimer), so nothing is
//! acked before the app answered and a crash at any point leaves unacked entries pending, to be
//! delivered again: at-least-once.

use super::{ACK_RETRY_FOR, BACKOFF};
use ::redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

/// Ids per `XACK`.
pub(super) const MAX_BATCH: usize = 256;
/// Acks waiting for the writer; an ack waits for room beyond this (back-pressure).
const QUEUE: usize = 1024;

/// One ack: the entry and who waits for it.
struct Pending {
    id: String,
    done: oneshot::Sender<()>,
}

/// The sending side of one subscription's ack writer; cheap to clone. The writer ends when the
/// last clone is dropped.
#[derive(Clone)]
pub(super) struct AckQueue {
    tx: mpsc::Sender<Pending>,
}

impl AckQueue {
    /// Starts the writer for `topic`'s consumer group `group`.
    pub(super) fn start(conn: ConnectionManager, topic: String, group: String) -> AckQueue {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_acks(rx, conn, topic, group));
        AckQueue { tx }
    }

    /// Acks entry `id`; returns once Redis acknowledged it, or the writer gave up on it (then the
    /// entry stays pending and is delivered again).
    pub(super) async fn ack(&self, id: String) {
        let (done, acked) = oneshot::channel();
        if self.tx.send(Pending { id, done }).await.is_ok() {
            // An error here means the writer is gone: the entry stays pending, as above.
            let _ = acked.await;
        }
    }
}

/// Sends what has queued up as one `XACK`, again and again, until every sender is gone.
async fn write_acks(
    mut rx: mpsc::Receiver<Pending>,
    conn: ConnectionManager,
    topic: String,
    group: String,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        xack(&conn, &topic, &group, &batch).await;
        for pending in batch.drain(..) {
            let _ = pending.done.send(());
        }
    }
}

/// `XACK` of every id in `batch`, retried through a short outage (while it is outstanding, the
/// entries stay in flight in this process, so the reclaimer does not hand them out again).
async fn xack(conn: &ConnectionManager, topic: &str, group: &str, batch: &[Pending]) {
    let deadline = tokio::time::Instant::now() + ACK_RETRY_FOR;
    let mut backoff = BACKOFF;
    let mut cmd = ::redis::cmd("XACK");
    cmd.arg(topic).arg(group);
    for pending in batch {
        cmd.arg(&pending.id);
    }
    loop {
        let acked: Result<i64, _> = cmd.query_async(&mut conn.clone()).await;
        let Err(e) = acked else { return };
        let delay = backoff.next();
        if tokio::time::Instant::now() + delay > deadline {
            // Still pending: the reclaimer delivers them again (at-least-once).
            tracing::warn!(%topic, %group, ids = batch.len(), error = %e, "redis XACK failed");
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RedisServer;
    use ::redis::Value;

    async fn xack_calls(conn: &mut ConnectionManager) -> u64 {
        let info: String = ::redis::cmd("INFO")
            .arg("commandstats")
            .query_async(conn)
            .await
            .expect("INFO");
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_xack:calls="))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }

    async fn pending(conn: &mut ConnectionManager) -> i64 {
        let v: Value = ::redis::cmd("XPENDING")
            .arg("orders")
            .arg("app")
            .query_async(conn)
            .await
            .expect("XPENDING");
        match v {
            Value::Array(fields) => match fields.first() {
                Some(Value::Int(n)) => *n,
                other => panic!("XPENDING count {other:?}"),
            },
            other => panic!("XPENDING reply {other:?}"),
        }
    }

    #[tokio::test]
    async fn concurrent_acks_share_an_xack_and_return_once_redis_has_them() {
        const N: usize = 300;
        let server = RedisServer::start();
        let client = ::redis::Client::open(format!("redis://{}", server.addr())).expect("client");
        let mut conn = ConnectionManager::new(client).await.expect("connect");
        let mut pipe = ::redis::pipe();
        pipe.cmd("XGROUP")
            .arg(&["CREATE", "orders", "app", "0", "MKSTREAM"][..])
            .ignore();
        for i in 0..N {
            pipe.cmd("XADD")
                .arg(&["orders", "*", "data"][..])
                .arg(i)
                .ignore();
        }
        let () = pipe.query_async(&mut conn).await.expect("XADD");
        let read: Value = ::redis::cmd("XREADGROUP")
            .arg(&["GROUP", "app", "c", "COUNT"][..])
            .arg(N)
            .arg(&["STREAMS", "orders", ">"][..])
            .query_async(&mut conn)
            .await
            .expect("XREADGROUP");
        let ids: Vec<String> = super::super::entries::parse_read(&read)
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids.len(), N);
        assert_eq!(pending(&mut conn).await, N as i64);
        let before = xack_calls(&mut conn).await;

        let acks = AckQueue::start(conn.clone(), "orders".into(), "app".into());
        futures_util::future::join_all(ids.into_iter().map(|id| acks.ack(id))).await;
        // Every ack has returned, so Redis has every one: nothing left to wait for.
        assert_eq!(pending(&mut conn).await, 0);
        let calls = xack_calls(&mut conn).await - before;
        assert!(
            (1..=N.div_ceil(MAX_BATCH) as u64 + 2).contains(&calls),
            "{N} acks took {calls} XACKs"
        );
    }
}
