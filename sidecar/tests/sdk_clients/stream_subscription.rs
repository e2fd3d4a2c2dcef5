//! Streaming subscriptions (`SubscribeTopicEventsAlpha1`): the Python SDK's
//! `DaprClient().subscribe(...)` and `subscribe_with_handler(...)`
//! (`tests/sdk/python/stream_subscriber.py`) against a sidecar with no app port. Every answer
//! is exercised with counts: SUCCESS once, RETRY redelivered, DROP settled, RETRY forever
//! dead-lettered to a topic the same script reads over a second stream. Bad initial requests
//! get daprd's errors from a plain tonic client.

use super::{BIN, Killed, isolate, resources, sdk_env};
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use rt::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as Incoming;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

fn write_pubsub(dir: &Path) -> std::path::PathBuf {
    resources(dir, &[Component::test("pubsub", "pubsub.in-memory")])
}

fn read_seen(path: &Path) -> Value {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// The attempts and answers recorded for order `n`.
fn answers(seen: &Value, n: u64) -> Vec<String> {
    seen["orders"]
        .as_array()
        .map(|orders| {
            orders
                .iter()
                .filter(|o| o["n"] == n)
                .map(|o| o["answer"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_streaming_subscription_settles_every_answer() {
    let python = sdk_env("TANDEM_SDK_PYTHON");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/python/stream_subscriber.py");
    let dir = tempfile::tempdir().expect("tempdir");
    let sc = SidecarBuilder::new(BIN, "streamer", &dir.path().join("data"))
        .resources(&write_pubsub(dir.path()))
        .start();
    sc.wait_ready(Duration::from_secs(30));
    let seen_file = dir.path().join("seen.json");
    let mut cmd = Command::new(&python);
    isolate(&mut cmd);
    cmd.arg(&script)
        .env("DAPR_GRPC_PORT", sc.grpc_port.to_string())
        .env("DAPR_HTTP_PORT", sc.http_port.to_string())
        .env("TANDEM_SEEN_FILE", &seen_file)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null());
    let _subscriber = Killed(cmd.spawn().expect("start the python subscriber"));

    // The subscriber is listening once the sidecar lists... nothing: a stream is not an app
    // subscription. Wait for the script's own word, then publish.
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_seen(&seen_file)["ready"] != true {
        assert!(Instant::now() < deadline, "the subscriber never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let http = tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let modes = [
        "ok",
        "ok",
        "ok",
        "ok",
        "ok",
        "retry-once",
        "retry-once",
        "drop",
        "drop",
        "retry-always",
    ];
    for (n, mode) in modes.iter().enumerate() {
        let r = http
            .post(sc.url("/v1.0/publish/pubsub/orders"))
            .json(&json!({"n": n, "mode": mode}))
            .send()
            .await
            .expect("publish");
        assert_eq!(r.status().as_u16(), 204);
    }

    // ok: 5 once; retry-once: 2 × 2; drop: 2 once; retry-always: 5 attempts (then dead).
    let expected_events = 5 + 4 + 2 + 5;
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let seen = read_seen(&seen_file);
        let events = seen["orders"].as_array().map_or(0, Vec::len);
        let dead = seen["dead"].as_array().map_or(0, Vec::len);
        if events >= expected_events && dead >= 1 {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "not everything arrived: {seen}\n{}",
            sc.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for n in 0..5 {
        assert_eq!(answers(&seen, n), ["success"], "order {n}: {seen}");
    }
    for n in 5..7 {
        assert_eq!(answers(&seen, n), ["retry", "success"], "order {n}: {seen}");
    }
    for n in 7..9 {
        assert_eq!(answers(&seen, n), ["drop"], "order {n}: {seen}");
    }
    assert_eq!(answers(&seen, 9), ["retry"; 5], "order 9: {seen}");
    let first = &seen["orders"][0];
    assert_eq!(first["topic"], "orders");
    assert_eq!(first["pubsub"], "pubsub");
    assert_eq!(first["content_type"], "application/json");
    assert!(first["id"].as_str().is_some_and(|id| !id.is_empty()));
    // Only the order that was retried forever went to the dead-letter topic.
    let dead = seen["dead"].as_array().expect("dead letters");
    assert_eq!(dead.len(), 1, "{seen}");
    assert_eq!(dead[0]["data"]["n"], 9);
    assert_eq!(dead[0]["topic"], "orders-dead");
    // Nothing more arrives late: the counts are final.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = read_seen(&seen_file);
    assert_eq!(
        after["orders"].as_array().map_or(0, Vec::len),
        expected_events,
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_initial_requests_get_daprds_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sc = SidecarBuilder::new(BIN, "streamer-errors", &dir.path().join("data"))
        .resources(&write_pubsub(dir.path()))
        .start();
    sc.wait_ready(Duration::from_secs(30));
    let channel = tonic::transport::Endpoint::from_shared(sc.grpc_endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = DaprClient::new(channel);
    let initial = |pubsub: &str, topic: &str| rt::SubscribeTopicEventsRequestAlpha1 {
        subscribe_topic_events_request_type: Some(Incoming::InitialRequest(
            rt::SubscribeTopicEventsRequestInitialAlpha1 {
                pubsub_name: pubsub.to_owned(),
                topic: topic.to_owned(),
                ..Default::default()
            },
        )),
    };
    let processed = rt::SubscribeTopicEventsRequestAlpha1 {
        subscribe_topic_events_request_type: Some(Incoming::EventProcessed(
            rt::SubscribeTopicEventsRequestProcessedAlpha1::default(),
        )),
    };
    let cases = [
        (
            processed,
            tonic::Code::InvalidArgument,
            "initial request is required",
        ),
        (
            initial("", "t"),
            tonic::Code::InvalidArgument,
            "pubsubName is required",
        ),
        (
            initial("pubsub", ""),
            tonic::Code::InvalidArgument,
            "topic is required",
        ),
        (initial("nope", "t"), tonic::Code::InvalidArgument, "nope"),
    ];
    for (first, code, text) in cases {
        let status = client
            .subscribe_topic_events_alpha1(futures_util::stream::iter([first]))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(text), "{status:?}");
    }
}
