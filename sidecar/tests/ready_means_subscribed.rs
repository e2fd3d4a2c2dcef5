//! A message published the instant the sidecar reports ready reaches the app: `/v1.0/healthz`
//! turns 204 only once the app's subscriptions are in place at their broker. Each round starts a
//! fresh sidecar, publishes the moment health turns green, and waits for the delivery: 0 lost.

mod common;

use common::subscriber::{Rule, SubscriberApp};
use common::{client, manifest, write_component};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::MosquittoServer;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// `rounds` fresh sidecars with `pubsub` from `component` (none: the embedded in-memory one);
/// returns how many of the messages published at the instant of readiness were lost.
async fn lost_at_readiness(dir: &Path, component: Option<Component>, rounds: i64) -> usize {
    let subscriptions = json!([{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]);
    let rule: Rule = Arc::new(|_, _, _| "SUCCESS");
    let mut app = SubscriberApp::new(subscriptions, rule, Duration::ZERO);
    app.listen().await;
    let mut lost = 0;
    for round in 0..rounds {
        let data = dir.join(format!("round-{round}"));
        let mut builder = SidecarBuilder::new(BIN, "orders", &data).app_port(app.port);
        if let Some(component) = &component {
            let resources = data.join("resources");
            write_component(&resources, "pubsub.yaml", &manifest(component));
            builder = builder.resources(&resources);
        }
        let sidecar = builder.spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        while tandem_sidecar::testing::http_status(sidecar.http_port, "/v1.0/healthz") != Some(204)
        {
            assert!(Instant::now() < deadline, "never ready:\n{}", sidecar.log());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let published = client()
            .post(sidecar.url("/v1.0/publish/pubsub/orders"))
            .json(&json!({"seq": round}))
            .send()
            .await
            .expect("publish");
        assert_eq!(published.status().as_u16(), 204);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !app.seen().iter().any(|s| s.seq == round) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !app.seen().iter().any(|s| s.seq == round) {
            lost += 1;
        }
    }
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_pubsub_loses_nothing_published_at_readiness() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(lost_at_readiness(dir.path(), None, 30).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mqtt_loses_nothing_published_at_readiness() {
    let server = MosquittoServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // A clean session: the broker keeps nothing for a subscriber that is not there yet, so a
    // message published before the SUBSCRIBE is granted is lost — what readiness must rule out.
    let component = Component::test("pubsub", "pubsub.mqtt3")
        .with_metadata("url", &server.url())
        .with_metadata("cleanSession", "true");
    assert_eq!(lost_at_readiness(dir.path(), Some(component), 10).await, 0);
}
