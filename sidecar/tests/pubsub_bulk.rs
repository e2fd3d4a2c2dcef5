//! Bulk subscribe end to end: a real sidecar on each broker (in-memory, Redis Streams, MQTT,
//! RabbitMQ) publishes to itself and delivers to an app that subscribes with `bulkSubscribe`.
//! The app answers each entry by a rule on the event's `data.seq`: SUCCESS, RETRY (twice, then
//! SUCCESS), always RETRY (dead-lettered once the attempts run out), DROP (dead-lettered to
//! `dead`), no status at all (retried, as Dapr does) or, once, a 500 for the whole request
//! (every entry in it retried). Counted: every message gets exactly one SUCCESS or one DROP
//! (or exactly `ATTEMPTS` RETRYs), every DROP and exhausted message reaches the dead-letter
//! topic exactly once, batches hold at most `maxMessagesCount` entries, and nothing more
//! arrives once all are settled. Without a dead-letter topic, an exhausted entry is nacked and
//! the broker delivers it again.

mod common;

use common::bulk_subscriber::{Answered, Seen, answers, start_app};
use common::{client, json_of};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tandem_sidecar::testing::{MosquittoServer, RabbitServer, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");
/// Messages published per topic.
const MESSAGES: i64 = 40;
/// `maxMessagesCount` of the subscriptions.
const BATCH: usize = 8;
/// The sidecar's delivery attempts per message before it dead-letters or nacks it.
const ATTEMPTS: usize = tandem_sidecar::pubsub::delivery::ATTEMPTS as usize;

/// The app's programmatic subscriptions: `orders` in bulk (dead letters to `dead`), `dead`
/// one by one.
fn subscriptions() -> Value {
    json!([
        {"pubsubname": "bus", "topic": "orders", "route": "/orders", "deadLetterTopic": "dead",
         "bulkSubscribe": {"enabled": true, "maxMessagesCount": BATCH, "maxAwaitDurationMs": 100}},
        {"pubsubname": "bus", "topic": "dead", "route": "/dead"},
    ])
}

/// Every message settled: one SUCCESS or DROP each, and every DROP dead-lettered.
fn settled(seen: &Seen, path: &str) -> bool {
    let by_seq = answers(seen, path);
    let done = (0..MESSAGES).all(|seq| {
        by_seq.get(&seq).is_some_and(|a| {
            a.iter().any(|x| *x == "SUCCESS" || *x == "DROP")
                || (seq % 10 == 1 && failed_attempts(a) >= ATTEMPTS)
        })
    });
    done && seen.dead.lock().unwrap_or_else(|p| p.into_inner()).len() >= dead_lettered().len()
}

/// Attempts that did not settle an entry: RETRY, or the whole request failing.
fn failed_attempts(answers: &[&str]) -> usize {
    answers
        .iter()
        .filter(|a| **a == "RETRY" || **a == "500")
        .count()
}

/// What must reach the dead-letter topic: every DROP, and every message that was retried until
/// the attempts ran out.
fn dead_lettered() -> Vec<i64> {
    (0..MESSAGES)
        .filter(|s| s % 10 == 7 || s % 10 == 1)
        .collect()
}

async fn wait_listed(sidecar: &Sidecar, n: usize) {
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let md = json_of(
            c.get(sidecar.url("/v1.0/metadata"))
                .send()
                .await
                .expect("metadata"),
        )
        .await;
        if md["subscriptions"].as_array().is_some_and(|a| a.len() >= n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "subscriptions never listed: {md}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes `MESSAGES` events `{"seq": n}` to `topic` in one bulk publish.
async fn publish_all(sidecar: &Sidecar, topic: &str) {
    let entries: Vec<Value> = (0..MESSAGES)
        .map(|seq| json!({"entryId": seq.to_string(), "event": {"seq": seq}, "contentType": "application/json"}))
        .collect();
    let r = client()
        .post(sidecar.url(&format!("/v1.0-alpha1/publish/bulk/bus/{topic}")))
        .json(&entries)
        .send()
        .await
        .expect("bulk publish");
    assert_eq!(r.status().as_u16(), 204, "bulk publish answered {r:?}");
}

/// Checks the counts once everything is settled, and that nothing more arrives.
async fn assert_delivered_exactly_once(seen: &Seen, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !settled(seen, path) {
        assert!(
            Instant::now() < deadline,
            "not all settled: {:?}",
            answers(seen, path)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything extra (a redelivery of a settled entry) would arrive within this.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let by_seq = answers(seen, path);
    assert_eq!(by_seq.len(), MESSAGES as usize, "{by_seq:?}");
    for (seq, got) in &by_seq {
        let finals = got
            .iter()
            .filter(|a| **a == "SUCCESS" || **a == "DROP")
            .count();
        let last = got.last().copied();
        if seq % 10 == 1 {
            let failed = failed_attempts(got);
            assert_eq!((finals, failed), (0, ATTEMPTS), "seq {seq}: {got:?}");
            continue;
        }
        assert_eq!(finals, 1, "seq {seq} settled {finals} times: {got:?}");
        match seq % 10 {
            3 => assert_eq!(
                got.iter().filter(|a| **a == "RETRY").count(),
                2,
                "seq {seq}: {got:?}"
            ),
            7 => assert_eq!(last, Some("DROP"), "seq {seq}: {got:?}"),
            9 => assert!(got.contains(&"MISSING"), "seq {seq}: {got:?}"),
            _ => {}
        }
        if seq % 10 != 7 {
            assert_eq!(last, Some("SUCCESS"), "seq {seq}: {got:?}");
        }
    }
    let mut dead = seen.dead.lock().unwrap_or_else(|p| p.into_inner()).clone();
    dead.sort_unstable();
    assert_eq!(
        dead,
        dead_lettered(),
        "each DROP and each exhausted message dead-lettered exactly once"
    );
    assert!(
        seen.failed_once.lock().map(|f| *f).unwrap_or(false),
        "the whole-request failure was exercised"
    );
    let requests = seen
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mine: Vec<&Answered> = requests.iter().filter(|r| r.path == path).collect();
    assert!(
        mine.iter().all(|r| r.answers.len() <= BATCH),
        "a batch over maxMessagesCount"
    );
    assert!(
        mine.iter().any(|r| r.answers.len() > 1),
        "never batched: {} requests",
        mine.len()
    );
    let first = mine.first().expect("a request");
    assert_eq!(first.content_type, "application/json");
    assert_eq!(first.envelope["type"], "com.dapr.event.sent.bulk");
    assert_eq!(first.envelope["pubsubname"], "bus");
    assert!(
        first.envelope["id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

/// The scenario on a broker: `component` is named `bus`.
async fn bulk_on(component: tandem_crds::Component, dir: &Path) -> Sidecar {
    let seen = Seen {
        subscriptions: subscriptions(),
        ..Seen::default()
    };
    let port = start_app(&seen).await;
    let res = dir.join("res");
    common::write_component(&res, "bus.yaml", &common::manifest(&component));
    let sidecar = SidecarBuilder::new(BIN, "shop", dir)
        .app_port(port)
        .resources(&res)
        .start();
    sidecar.wait_ready(Duration::from_secs(20));
    wait_listed(&sidecar, 2).await;
    publish_all(&sidecar, "orders").await;
    assert_delivered_exactly_once(&seen, "/orders").await;
    let first = seen.requests.lock().unwrap_or_else(|p| p.into_inner())[0]
        .envelope
        .clone();
    assert_eq!(first["topic"], "orders");
    let entry = &first["entries"][0];
    assert_eq!(entry["contentType"], "application/cloudevents+json");
    assert_eq!(entry["event"]["type"], "com.dapr.event.sent");
    assert!(entry["entryId"].as_str().is_some_and(|id| !id.is_empty()));
    sidecar
}

/// In memory: a declarative v2alpha1 Subscription with `bulkSubscribe`, a rawPayload bulk
/// subscription, and Dapr's bulk ingress metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_subscribe_declarative_raw_and_metrics_in_memory() {
    let seen = Seen {
        subscriptions: json!([
            {"pubsubname": "bus", "topic": "dead", "route": "/dead"},
            {"pubsubname": "bus", "topic": "raw", "route": "/raw", "metadata": {"rawPayload": "true"},
             "bulkSubscribe": {"enabled": true, "maxMessagesCount": BATCH, "maxAwaitDurationMs": 100}},
        ]),
        ..Seen::default()
    };
    let port = start_app(&seen).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    common::write_component(
        &res,
        "bus.yaml",
        &format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: bus}}\nspec: {{type: pubsub.in-memory, version: v1}}\n---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {{name: declared}}\nspec:\n  pubsubname: bus\n  topic: declared\n  deadLetterTopic: dead\n  routes: {{default: /declared}}\n  bulkSubscribe: {{enabled: true, maxMessagesCount: {BATCH}, maxAwaitDurationMs: 100}}\n"
        ),
    );
    let sidecar = SidecarBuilder::new(BIN, "shop", dir.path())
        .app_port(port)
        .resources(&res)
        .start();
    sidecar.wait_ready(Duration::from_secs(20));
    wait_listed(&sidecar, 3).await;
    publish_all(&sidecar, "declared").await;
    assert_delivered_exactly_once(&seen, "/declared").await;

    // rawPayload: each entry is the published bytes in base64, typed application/octet-stream.
    let c = client();
    for seq in [0, 1, 2] {
        let r = c
            .post(sidecar.url("/v1.0/publish/bus/raw?metadata.rawPayload=true"))
            .json(&json!({ "seq": seq }))
            .send()
            .await
            .expect("publish");
        assert_eq!(r.status().as_u16(), 204);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while answers(&seen, "/raw")
        .values()
        .filter(|a| a.contains(&"SUCCESS"))
        .count()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "raw: {:?}",
            answers(&seen, "/raw")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Seq 1 was nacked after the sidecar's attempts and came back from the broker, once.
    let mut once_retried = vec!["RETRY"; ATTEMPTS];
    once_retried.push("SUCCESS");
    let raw_answers = answers(&seen, "/raw");
    assert_eq!(raw_answers.get(&1), Some(&once_retried), "{raw_answers:?}");
    assert_eq!(
        raw_answers.get(&0).map(Vec::len),
        Some(1),
        "{raw_answers:?}"
    );
    let requests = seen
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let raw = requests
        .iter()
        .find(|r| r.path == "/raw")
        .expect("a raw request");
    assert_eq!(
        raw.envelope["entries"][0]["contentType"],
        "application/octet-stream"
    );
    assert_eq!(raw.envelope["topic"], "raw");

    let metrics = c
        .get(format!("http://127.0.0.1:{}/metrics", sidecar.metrics_port))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for wanted in [
        "dapr_component_pubsub_ingress_bulk_count{",
        "process_status=\"success\"",
        "process_status=\"retry\"",
        "process_status=\"drop\"",
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("dapr_component_pubsub_ingress_bulk") && l.contains(wanted)),
            "{wanted} missing from:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_subscribe_on_redis_streams() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let component = tandem_crds::Component::test("bus", "pubsub.redis")
        .with_metadata("redisHost", &server.addr());
    bulk_on(component, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_subscribe_on_mqtt3() {
    let server = MosquittoServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let component =
        tandem_crds::Component::test("bus", "pubsub.mqtt3").with_metadata("url", &server.url());
    bulk_on(component, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_subscribe_on_rabbitmq() {
    let server = RabbitServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let component = tandem_crds::Component::test("bus", "pubsub.rabbitmq")
        .with_metadata("connectionString", &server.url());
    bulk_on(component, dir.path()).await;
}
