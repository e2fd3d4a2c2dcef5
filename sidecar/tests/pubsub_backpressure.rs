//! Back-pressure from the app to the broker, on a real redis-server with a real sidecar: a
//! backlog of 20 000 messages of 4 KiB (80 MiB) waits in the stream while the app holds every
//! delivery. The sidecar must read only what it can hand on (the pending entries of its group
//! stay few) and its memory must stay flat instead of buffering the topic; once the app lets go,
//! every message arrives exactly once.

mod common;

use common::subscriber::{Rule, SubscriberApp};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tandem_sidecar::testing::RedisServer;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");
const APP_ID: &str = "slow-app";
const TOPIC: &str = "orders";
const MESSAGES: i64 = 20_000;
const PAYLOAD: usize = 4 * 1024;
/// How long the app holds its deliveries while the sidecar could read the backlog. A slower
/// machine only makes an unbounded reader read less in this time: it never fails the bounded one.
const HOLD: Duration = Duration::from_secs(5);
/// Growth of the sidecar's RSS over its idle figure that the test allows: a fraction of the
/// 80 MiB backlog, which an unbounded reader pulls into memory.
const RSS_GROWTH_MAX_KIB: u64 = 32 * 1024;
/// Entries the group may have read and not yet acked while the app holds: the delivery loop's
/// buffer and in-flight deliveries plus one read's batch, with room to spare; a reader that does
/// not feel back-pressure reads all 20 000.
const PENDING_MAX: u64 = 1_000;

fn redis_pubsub(dir: &Path, redis: &RedisServer) -> std::path::PathBuf {
    let res = dir.join("res");
    common::write_component(
        &res,
        "pubsub.yaml",
        &common::manifest(
            &tandem_crds::Component::test("pubsub", "pubsub.redis")
                .with_metadata("redisHost", &redis.addr()),
        ),
    );
    res
}

/// Samples the RSS every 20 ms into `peak` until `done`.
fn sample_rss(
    pid: u32,
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            if let Some(kib) = common::rss_kib(pid) {
                peak.fetch_max(kib, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// Entries delivered to the group and not yet acked (`XPENDING` summary); an error until the
/// sidecar has created the group.
async fn try_pending(
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<u64, redis::RedisError> {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(TOPIC)
        .arg(APP_ID)
        .query_async(conn)
        .await?;
    Ok(match summary {
        redis::Value::Array(fields) => match fields.first() {
            Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            other => panic!("XPENDING count: {other:?}"),
        },
        other => panic!("XPENDING answer: {other:?}"),
    })
}

async fn pending(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    try_pending(conn).await.expect("XPENDING")
}

/// Writes the backlog straight into the stream, as CloudEvents carrying `data.seq`.
async fn write_backlog(conn: &mut redis::aio::MultiplexedConnection) {
    let pad = "x".repeat(PAYLOAD);
    for batch in (0..MESSAGES).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for seq in batch {
            let event = json!({
                "specversion": "1.0",
                "id": seq.to_string(),
                "source": "pubsub_backpressure",
                "type": "com.tandem.test",
                "datacontenttype": "application/json",
                "data": { "seq": seq, "pad": pad },
            });
            pipe.cmd("XADD")
                .arg(TOPIC)
                .arg("*")
                .arg("data")
                .arg(event.to_string())
                .ignore();
        }
        let () = pipe.query_async(conn).await.expect("XADD backlog");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_app_slows_the_broker_read_instead_of_growing_memory() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let res = redis_pubsub(dir.path(), &redis);
    let rule: Rule = Arc::new(|_, _, _| "HELD");
    let subscriptions = json!([{"pubsubname": "pubsub", "topic": TOPIC, "route": "/orders"}]);
    let mut app = SubscriberApp::new(subscriptions, rule, Duration::ZERO);
    app.listen().await;
    let sidecar = SidecarBuilder::new(BIN, APP_ID, &dir.path().join("sub"))
        .resources(&res)
        .app_port(app.port)
        .start();
    sidecar.wait_ready(Duration::from_secs(15));
    let pid = sidecar.pid();
    let mut conn = redis::Client::open(format!("redis://{}/", redis.addr()))
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    let deadline = Instant::now() + Duration::from_secs(15);
    while try_pending(&mut conn).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the sidecar never created its consumer group"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let idle_kib = common::rss_kib(pid).expect("the sidecar's VmRSS");

    let peak = Arc::new(AtomicU64::new(idle_kib));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(pid, peak.clone(), done.clone());
    let written = Instant::now();
    write_backlog(&mut conn).await;
    let write_took = written.elapsed();

    // Hold: the app has its hands full, the backlog waits. An unbounded reader would pull the
    // whole topic into the sidecar in this time.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.started().len() < 16 {
        assert!(Instant::now() < deadline, "deliveries did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = Instant::now();
    let mut pending_max = 0;
    while held.elapsed() < HOLD && pending_max < MESSAGES as u64 {
        pending_max = pending_max.max(pending(&mut conn).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hold_peak_kib = peak.load(Ordering::Relaxed);
    let started_while_held = app.started().len();

    app.release();
    let released = Instant::now();
    app.wait_until(Duration::from_secs(120), "every message", |seen| {
        seen.iter().map(|s| s.seq).collect::<HashSet<_>>().len() >= MESSAGES as usize
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending(&mut conn).await > 0 {
        assert!(
            Instant::now() < deadline,
            "some deliveries were never acked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain_took = released.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("RSS sampler");
    let peak_kib = peak.load(Ordering::Relaxed);

    let mut counts: HashMap<i64, usize> = HashMap::new();
    for s in app.seen() {
        *counts.entry(s.seq).or_default() += 1;
    }
    let missing = (0..MESSAGES).filter(|s| !counts.contains_key(s)).count();
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    println!(
        "backpressure: {MESSAGES} × {PAYLOAD} B written in {write_took:?}; while held \
         {started_while_held} deliveries started, at most {pending_max} entries pending; \
         RSS idle {idle_kib} KiB, peak while held {hold_peak_kib} KiB, peak overall {peak_kib} KiB \
         (+{} KiB); all delivered and acked {drain_took:?} after release; {missing} missing, \
         {duplicates} duplicates",
        peak_kib.saturating_sub(idle_kib)
    );
    assert!(
        peak_kib <= idle_kib + RSS_GROWTH_MAX_KIB,
        "RSS grew from {idle_kib} KiB to {peak_kib} KiB"
    );
    assert!(
        pending_max <= PENDING_MAX,
        "the sidecar read {pending_max} entries ahead of an app that took none"
    );
    assert_eq!(missing, 0, "messages never delivered");
    assert_eq!(duplicates, 0, "messages delivered twice");
    assert_eq!(counts.len(), MESSAGES as usize, "only the backlog's seqs");
}
