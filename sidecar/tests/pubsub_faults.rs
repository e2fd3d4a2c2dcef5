//! Pub/sub under faults, on a real redis-server with real sidecar processes (reliability tests
//! T6, T7, T10 and T11): the broker killed mid-stream, a misbehaving and crashing subscriber, an
//! app that starts late, and SIGTERM with deliveries in flight. Each counts what was lost (must
//! be 0) and reports duplicates.

mod common;

use common::client;
use common::subscriber::{Rule, Seen, SubscriberApp};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_sidecar::testing::RedisServer;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// A Redis Streams pubsub named `pubsub`, redelivering messages unacked for `processing`.
fn redis_pubsub(dir: &Path, redis: &RedisServer, processing: &str) -> std::path::PathBuf {
    let res = dir.join("res");
    common::write_component(
        &res,
        "pubsub.yaml",
        &common::manifest(
            &tandem_crds::Component::test("pubsub", "pubsub.redis")
                .with_metadata("redisHost", &redis.addr())
                .with_metadata("processingTimeout", processing)
                .with_metadata("redeliverInterval", "500ms"),
        ),
    );
    res
}

fn start_sidecar(app_id: &str, dir: &Path, res: &Path, app: Option<u16>) -> Sidecar {
    let mut b = SidecarBuilder::new(BIN, app_id, dir).resources(res);
    if let Some(port) = app {
        b = b.app_port(port);
    }
    let s = b.start();
    s.wait_outbound_ready(Duration::from_secs(15));
    s
}

async fn publish(c: &reqwest::Client, s: &Sidecar, topic: &str, seq: i64) -> Result<u16, String> {
    let r = c
        .post(s.url(&format!("/v1.0/publish/pubsub/{topic}")))
        .json(&json!({ "seq": seq }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    if status != 204 {
        let body: Value = r.json().await.map_err(|e| e.to_string())?;
        if body["errorCode"].as_str().is_none_or(str::is_empty) {
            return Err(format!("{status} without errorCode: {body}"));
        }
    }
    Ok(status)
}

/// Sequence numbers answered with one of `answers` on `path`.
fn seqs(seen: &[Seen], path: &str, answers: &[&str]) -> BTreeSet<i64> {
    seen.iter()
        .filter(|s| s.path == path && answers.contains(&s.answer))
        .map(|s| s.seq)
        .collect()
}

fn subscriptions(dead_letter: bool) -> Value {
    let mut orders = json!({"pubsubname": "pubsub", "topic": "orders", "route": "/orders"});
    if dead_letter {
        orders["deadLetterTopic"] = json!("dead");
    }
    json!([orders,
        {"pubsubname": "pubsub", "topic": "missing", "route": "/missing", "deadLetterTopic": "dead"},
        {"pubsubname": "pubsub", "topic": "dead", "route": "/dead"}])
}

/// T6: 10 000 publishes at ~500/s, Redis SIGKILLed at 5 s and back 5 s later. Every publish is
/// answered 204 or a 5xx with an errorCode; every 204'd message reaches the subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_outage_loses_no_acknowledged_publish() {
    const N: i64 = 10_000;
    let redis = RedisServer::start_durable();
    let dir = tempfile::tempdir().expect("tempdir");
    let res = redis_pubsub(dir.path(), &redis, "2s");
    let rule: Rule = Arc::new(|_, _, _| "SUCCESS");
    let mut app = SubscriberApp::new(subscriptions(false), rule, Duration::ZERO);
    app.listen().await;
    let subscriber = start_sidecar("orders", &dir.path().join("sub"), &res, Some(app.port));
    let publisher = start_sidecar("shop", &dir.path().join("pub"), &res, None);

    let outage = tokio::task::spawn_blocking(move || {
        let mut redis = redis;
        std::thread::sleep(Duration::from_secs(5));
        redis.kill();
        std::thread::sleep(Duration::from_secs(5));
        redis.restart();
        redis
    });
    let c = client();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for seq in 0..N {
        let due = started + Duration::from_millis(2 * seq as u64);
        tokio::time::sleep_until(due.into()).await;
        let (c, url) = (c.clone(), publisher.url("/v1.0/publish/pubsub/orders"));
        tasks.push(tokio::spawn(async move {
            let r = c.post(url).json(&json!({ "seq": seq })).send().await;
            let r = r.map_err(|e| format!("seq {seq}: {e}"))?;
            let status = r.status().as_u16();
            if status != 204 {
                let body: Value = r.json().await.map_err(|e| e.to_string())?;
                if !(500..600).contains(&status) || body["errorCode"].as_str().is_none() {
                    return Err(format!("seq {seq}: {status} {body}"));
                }
            }
            Ok::<(i64, u16), String>((seq, status))
        }));
    }
    let mut acked = BTreeSet::new();
    let mut refused = 0;
    for t in tasks {
        let (seq, status) = t
            .await
            .expect("publish task")
            .expect("204 or 5xx with errorCode");
        if status == 204 {
            acked.insert(seq);
        } else {
            refused += 1;
        }
    }
    let _redis = outage.await.expect("outage task");
    assert!(refused > 0, "the outage must have refused some publishes");
    assert!(
        acked.len() > 5_000,
        "only {} publishes acknowledged",
        acked.len()
    );
    let recovered = Instant::now();
    app.wait_until(
        Duration::from_secs(90),
        "every acknowledged publish",
        |seen| acked.is_subset(&seqs(seen, "/orders", &["SUCCESS"])),
    )
    .await;
    let seen = app.seen();
    let delivered = seen.iter().filter(|s| s.path == "/orders").count();
    let unique = seqs(&seen, "/orders", &["SUCCESS"]).len();
    let duplicates = delivered - unique;
    println!(
        "T6: {} acknowledged, {refused} refused during the outage, 0 lost, {duplicates} duplicates, all delivered {:?} after the publishing ended",
        acked.len(),
        recovered.elapsed()
    );
    assert!(
        duplicates * 100 <= acked.len(),
        "{duplicates} duplicates is over 1 %"
    );
    drop((subscriber, publisher));
}

/// T7: over 10 000 messages the app answers RETRY (10 %), 500 (5 %), a malformed status (1 %)
/// once each, DROP (1 %) always, and 500 forever for the poison 1 %; it is killed at message
/// 5 000 and back a second later; a route that 404s. Lost = 0, the dead-letter topic holds
/// exactly the poison and 404'd messages, DROPped ones are never redelivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misbehaving_subscriber_loses_nothing() {
    const N: i64 = 10_000;
    const MISSING: i64 = 20;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let res = redis_pubsub(dir.path(), &redis, "2s");
    let rule: Rule = Arc::new(|path, seq, before| match (path, seq % 100) {
        ("/missing", _) => "404",
        ("/dead", _) => "SUCCESS",
        (_, 0..10) if before == 0 => "RETRY",
        (_, 10..15) if before == 0 => "500",
        (_, 15) => "DROP",
        (_, 16) if before == 0 => "MALFORMED",
        (_, 17) => "500",
        _ => "SUCCESS",
    });
    let mut app = SubscriberApp::new(subscriptions(true), rule, Duration::ZERO);
    app.listen().await;
    let sidecar = start_sidecar("orders", &dir.path().join("sub"), &res, Some(app.port));
    let c = client();
    for seq in 0..N {
        assert_eq!(publish(&c, &sidecar, "orders", seq).await, Ok(204));
    }
    for seq in 0..MISSING {
        assert_eq!(publish(&c, &sidecar, "missing", N + seq).await, Ok(204));
    }
    app.wait_until(Duration::from_secs(60), "half the messages", |seen| {
        seen.len() >= 5_000
    })
    .await;
    app.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.listen().await;

    let poison: BTreeSet<i64> = (0..N).filter(|s| s % 100 == 17).collect();
    let dropped: BTreeSet<i64> = (0..N).filter(|s| s % 100 == 15).collect();
    let missing: BTreeSet<i64> = (N..N + MISSING).collect();
    let dead_wanted: BTreeSet<i64> = poison.union(&missing).copied().collect();
    app.wait_until(Duration::from_secs(120), "every message settled", |seen| {
        let done = seqs(seen, "/orders", &["SUCCESS", "DROP"]);
        let dead = seqs(seen, "/dead", &["SUCCESS"]);
        (0..N).all(|s| done.contains(&s) || dead.contains(&s)) && dead_wanted.is_subset(&dead)
    })
    .await;
    // Let stragglers (redeliveries, late dead letters) arrive before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = app.seen();
    let dead: Vec<i64> = seen
        .iter()
        .filter(|s| s.path == "/dead")
        .map(|s| s.seq)
        .collect();
    let dead_set: BTreeSet<i64> = dead.iter().copied().collect();
    assert_eq!(
        dead_set, dead_wanted,
        "dead-lettered = the poison and 404'd messages"
    );
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "XLEN", "dead"])
        .output()
        .expect("redis-cli");
    let dead_entries: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("XLEN answer");
    assert_eq!(
        dead_entries,
        dead_wanted.len(),
        "each dead-lettered exactly once"
    );
    // A DROP comes again only if its first answer was torn by the kill (given in the moment
    // before it); any other repeat means a DROPped message was redelivered.
    let mut drops: BTreeMap<i64, Vec<Instant>> = BTreeMap::new();
    for s in seen.iter().filter(|s| s.answer == "DROP") {
        drops.entry(s.seq).or_default().push(s.at);
    }
    assert_eq!(drops.keys().copied().collect::<BTreeSet<_>>(), dropped);
    let torn = |at: Instant| at <= killed && killed.duration_since(at) < Duration::from_millis(200);
    let redelivered_drops: Vec<i64> = drops
        .iter()
        .filter(|(_, at)| at.len() > 1 && !torn(at[0]))
        .map(|(seq, _)| *seq)
        .collect();
    assert_eq!(
        redelivered_drops,
        Vec::<i64>::new(),
        "DROPped messages came again"
    );
    let metrics = client()
        .get(format!("http://127.0.0.1:{}/metrics", sidecar.metrics_port))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let counted_404 = metrics
        .lines()
        .find(|l| {
            l.starts_with("dapr_component_pubsub_ingress_count")
                && l.contains(r#"topic="missing""#)
                && l.contains(r#"process_status="drop""#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(
        counted_404,
        Some(MISSING as f64),
        "404s counted in the metric:\n{metrics}"
    );
    let delivered = seen.iter().filter(|s| s.path == "/orders").count();
    println!(
        "T7: {N} messages, 0 lost, {} dead-lettered, {} dropped, {delivered} deliveries to /orders",
        dead.len(),
        dropped.len()
    );
}

/// T10: messages wait in the topic; the app listens only 10 s after its sidecar started. The
/// sidecar is outbound-ready at once, reports the app unready until it listens, and delivers
/// everything afterwards without spending a retry or dead-lettering anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_app_gets_every_waiting_message() {
    const N: i64 = 200;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let res = redis_pubsub(dir.path(), &redis, "2s");
    let rule: Rule = Arc::new(|_, _, _| "SUCCESS");
    let mut app = SubscriberApp::new(subscriptions(true), rule, Duration::ZERO);
    // Published before any subscriber exists: the consumer group reads the stream from its
    // start, so these wait for the app too.
    let publisher = start_sidecar("shop", &dir.path().join("pub"), &res, None);
    let c = client();
    for seq in 0..N / 2 {
        assert_eq!(publish(&c, &publisher, "orders", seq).await, Ok(204));
    }
    let started = Instant::now();
    let sidecar = SidecarBuilder::new(BIN, "orders", &dir.path().join("sub"))
        .resources(&res)
        .app_port(app.port)
        .start();
    sidecar.wait_outbound_ready(Duration::from_secs(30));
    let outbound_after = started.elapsed();
    for seq in N / 2..N {
        assert_eq!(publish(&c, &publisher, "orders", seq).await, Ok(204));
    }
    assert_eq!(
        tandem_sidecar::testing::http_status(sidecar.http_port, "/v1.0/healthz"),
        Some(500),
        "healthz must say the app is not ready"
    );
    tokio::time::sleep_until((started + Duration::from_secs(10)).into()).await;
    let deliveries_before = app.started().len();
    assert_eq!(
        deliveries_before, 0,
        "nothing reaches an app that is not listening"
    );
    app.listen().await;
    let listening = Instant::now();
    app.wait_until(Duration::from_secs(30), "every waiting message", |seen| {
        let got = seqs(seen, "/orders", &["SUCCESS"]);
        (0..N).all(|s| got.contains(&s))
    })
    .await;
    let seen = app.seen();
    assert!(
        seen.iter().all(|s| s.path != "/dead"),
        "nothing may be dead-lettered while the app was away"
    );
    println!(
        "T10: outbound ready {outbound_after:?} after start; {deliveries_before} deliveries before the app listened; all {N} delivered {:?} after it did",
        listening.elapsed()
    );
}

/// T11: 100 messages, the app takes 2 s each, 16 in flight; SIGTERM with a 5 s grace period.
/// The sidecar exits 0 within the grace period after finishing what the app was handling; the
/// rest stays unacked, and a new sidecar delivers every remaining message, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_deliveries_acks_only_finished_work() {
    const N: i64 = 100;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let res = redis_pubsub(dir.path(), &redis, "10s");
    let rule: Rule = Arc::new(|path, _, _| if path == "/orders" { "SLOW" } else { "SUCCESS" });
    let mut app = SubscriberApp::new(subscriptions(false), rule, Duration::from_secs(2));
    app.listen().await;
    let mut sidecar = SidecarBuilder::new(BIN, "orders", &dir.path().join("sub"))
        .resources(&res)
        .app_port(app.port)
        .arg("--dapr-graceful-shutdown-seconds=5")
        .start();
    sidecar.wait_ready(Duration::from_secs(30));
    let c = client();
    for seq in 0..N {
        assert_eq!(publish(&c, &sidecar, "orders", seq).await, Ok(204));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.started().iter().filter(|(p, _)| p == "/orders").count() < 16 {
        assert!(Instant::now() < deadline, "deliveries did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let in_flight: BTreeSet<i64> = app.started().iter().map(|(_, s)| *s).collect();
    let term = Instant::now();
    sidecar.signal(nix::sys::signal::Signal::SIGTERM);
    let status = tokio::task::spawn_blocking(move || {
        let status = sidecar.wait_exit(Duration::from_secs(30));
        (status, sidecar)
    })
    .await
    .expect("wait task");
    let (status, gone) = status;
    let took = term.elapsed();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exit code");
    // Within the grace period by the sidecar's own clock: it did not have to stop anyway.
    assert!(
        !gone.log().contains("after the grace period"),
        "exit took {took:?}:\n{}",
        gone.log()
    );
    let finished_before = seqs(&app.seen(), "/orders", &["SLOW"]);
    assert!(
        in_flight.is_subset(&finished_before),
        "in-flight deliveries must finish before exit"
    );
    assert!(
        finished_before.len() < N as usize,
        "not everything was delivered before the stop"
    );

    let _again = start_sidecar("orders", &dir.path().join("sub"), &res, Some(app.port));
    app.wait_until(
        Duration::from_secs(60),
        "every message after restart",
        |seen| seqs(seen, "/orders", &["SLOW"]).len() == N as usize,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = app.seen();
    let deliveries = seen.iter().filter(|s| s.path == "/orders").count();
    println!(
        "T11: {} finished before SIGTERM completed ({took:?}), {} after restart, {} duplicates",
        finished_before.len(),
        N as usize - finished_before.len(),
        deliveries - N as usize
    );
    assert_eq!(
        deliveries, N as usize,
        "a message finished before the stop came again"
    );
}
