//! A sidecar SIGKILLed while it delivers from Redis Streams, on a real redis-server. Its acks go
//! out in batches (one `XACK` for the deliveries answered while the previous one was on the
//! wire), so at the kill some deliveries the app already answered are not acked yet. They, and
//! everything read but not answered, stay in the group's pending list; a new sidecar delivers
//! them again: nothing in the stream is lost, and nothing acked comes twice.

mod common;

use common::subscriber::{Rule, SubscriberApp};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_sidecar::testing::RedisServer;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");
const APP_ID: &str = "orders";
const TOPIC: &str = "orders";
const MESSAGES: i64 = 4_000;

fn redis_pubsub(dir: &Path, redis: &RedisServer) -> std::path::PathBuf {
    let res = dir.join("res");
    common::write_component(
        &res,
        "pubsub.yaml",
        &common::manifest(
            &tandem_crds::Component::test("pubsub", "pubsub.redis")
                .with_metadata("redisHost", &redis.addr())
                .with_metadata("processingTimeout", "1s")
                .with_metadata("redeliverInterval", "300ms"),
        ),
    );
    res
}

fn start_sidecar(dir: &Path, res: &Path, app_port: u16) -> Sidecar {
    let s = SidecarBuilder::new(BIN, APP_ID, dir)
        .resources(res)
        .app_port(app_port)
        .start();
    s.wait_outbound_ready(Duration::from_secs(15));
    s
}

/// Entries of the group read by a consumer and not acked (`XPENDING` summary).
async fn pending(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(TOPIC)
        .arg(APP_ID)
        .query_async(conn)
        .await
        .expect("XPENDING");
    match summary {
        redis::Value::Array(fields) => match fields.first() {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("XPENDING count: {other:?}"),
        },
        other => panic!("XPENDING answer: {other:?}"),
    }
}

/// `XACK` calls redis-server has served so far (`INFO commandstats`).
async fn xack_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_xack:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

async fn write_stream(conn: &mut redis::aio::MultiplexedConnection) {
    let mut pipe = redis::pipe();
    for seq in 0..MESSAGES {
        let event = json!({"specversion": "1.0", "id": seq.to_string(), "source": "pubsub_crash",
            "type": "com.tandem.test", "datacontenttype": "application/json", "data": {"seq": seq}});
        pipe.cmd("XADD")
            .arg(TOPIC)
            .arg("*")
            .arg("data")
            .arg(event.to_string())
            .ignore();
    }
    let () = pipe.query_async(conn).await.expect("XADD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_between_delivery_and_batched_xack_redelivers_and_loses_nothing() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let res = redis_pubsub(dir.path(), &redis);
    let rule: Rule = Arc::new(|_, _, _| "SUCCESS");
    let subscriptions = json!([{"pubsubname": "pubsub", "topic": TOPIC, "route": "/orders"}]);
    let mut app = SubscriberApp::new(subscriptions, rule, Duration::ZERO);
    app.listen().await;
    let mut conn = redis::Client::open(format!("redis://{}/", redis.addr()))
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    // The group starts at 0: what is in the stream before the sidecar comes is delivered.
    write_stream(&mut conn).await;

    let mut first = start_sidecar(&dir.path().join("first"), &res, app.port);
    app.wait_until(Duration::from_secs(60), "a third of the stream", |seen| {
        seen.len() as i64 >= MESSAGES / 3
    })
    .await;
    first.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(first.wait_exit(Duration::from_secs(10)).is_some(), "killed");
    let answered_before: BTreeSet<i64> = app.seen().iter().map(|s| s.seq).collect();
    let pending_at_kill = pending(&mut conn).await;
    let acks_before = xack_calls(&mut conn).await;
    assert!(
        pending_at_kill > 0,
        "a sidecar killed mid-stream leaves read, unacked entries pending"
    );
    assert!(
        (acks_before as usize) < answered_before.len(),
        "acks are batched: {acks_before} XACKs for {} answered deliveries",
        answered_before.len()
    );

    let _second = start_sidecar(&dir.path().join("second"), &res, app.port);
    app.wait_until(Duration::from_secs(90), "every message", |seen| {
        seen.iter().map(|s| s.seq).collect::<BTreeSet<_>>().len() == MESSAGES as usize
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending(&mut conn).await > 0 {
        assert!(Instant::now() < deadline, "entries stay pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for s in app.seen() {
        *counts.entry(s.seq).or_default() += 1;
    }
    let again: Vec<i64> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(seq, _)| *seq)
        .collect();
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    let answered_then_redelivered = again.iter().filter(|s| answered_before.contains(s)).count();
    println!(
        "crash: {} answered before SIGKILL with {acks_before} XACKs; {pending_at_kill} pending at the \
         kill, of which {answered_then_redelivered} had been answered (redelivered); {duplicates} \
         duplicates, 0 lost",
        answered_before.len()
    );
    assert!(
        duplicates as i64 <= pending_at_kill,
        "{duplicates} duplicates but only {pending_at_kill} entries were pending at the kill: an acked entry came again"
    );
}
