//! Pub/sub end to end through real brokers: a publishing sidecar and a subscribing app with its
//! own sidecar share one `pubsub.mqtt3` (mosquitto) or `pubsub.rabbitmq` component. The app
//! receives Dapr's CloudEvent, and a message it keeps answering RETRY to is nacked back to the
//! broker, which delivers it again.

mod common;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use common::client;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_sidecar::pubsub::delivery::ATTEMPTS;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tandem_sidecar::testing::{MosquittoServer, RabbitServer};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// What the subscriber app received: (path, CloudEvent).
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// Subscribes `bus`'s `orders` (always SUCCESS) and `flaky` (RETRY for the runtime's first
/// `ATTEMPTS` tries, so the message goes back to the broker once, then SUCCESS).
async fn subscriber(State(got): State<Received>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/dapr/subscribe" {
        return axum::Json(json!([
            {"pubsubname": "bus", "topic": "orders", "route": "/orders"},
            {"pubsubname": "bus", "topic": "flaky", "route": "/flaky"},
        ]))
        .into_response();
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut got = got.lock().unwrap_or_else(|p| p.into_inner());
    got.push((path.clone(), event));
    let seen = got.iter().filter(|(p, _)| *p == path).count();
    if path == "/flaky" && seen <= ATTEMPTS as usize {
        return axum::Json(json!({"status": "RETRY"})).into_response();
    }
    axum::Json(json!({"status": "SUCCESS"})).into_response()
}

fn received(got: &Received, path: &str) -> Vec<Value> {
    got.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(p, _)| p == path)
        .map(|(_, e)| e.clone())
        .collect()
}

async fn wait_for(got: &Received, path: &str, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while received(got, path).len() < n {
        assert!(
            Instant::now() < deadline,
            "{path} got {} of {n} deliveries",
            received(got, path).len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the sidecar logged both subscriptions as started (the broker has confirmed
/// them), so nothing published from now on can miss them.
async fn wait_subscribed(sidecar: &Sidecar) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = sidecar.log();
        let started = log
            .lines()
            .filter(|l| l.contains("pubsub::delivery") && l.contains(" subscribed "))
            .count();
        if started >= 2 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the subscriptions never started; log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the scenario with `component` (named `bus`) shared by both sidecars.
async fn publish_and_deliver(component: tandem_crds::Component, dir: &Path) {
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().fallback(subscriber).with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let res = dir.join("res");
    common::write_component(&res, "bus.yaml", &common::manifest(&component));
    let shop = SidecarBuilder::new(BIN, "shop", dir)
        .app_port(port)
        .resources(&res)
        .start();
    let front = SidecarBuilder::new(BIN, "front", dir)
        .resources(&res)
        .start();
    shop.wait_ready(Duration::from_secs(20));
    front.wait_ready(Duration::from_secs(20));
    wait_subscribed(&shop).await;

    let c = client();
    let publish = |topic: &str, body: Value| {
        c.post(front.url(&format!("/v1.0/publish/bus/{topic}")))
            .json(&body)
            .send()
    };
    let r = publish("orders", json!({"id": 7, "total": 50}))
        .await
        .expect("publish");
    assert_eq!(r.status().as_u16(), 204, "publish answered {r:?}");
    wait_for(&got, "/orders", 1, Duration::from_secs(30)).await;
    let event = &received(&got, "/orders")[0];
    assert_eq!(event["data"], json!({"id": 7, "total": 50}));
    assert_eq!(event["topic"], "orders");
    assert_eq!(event["pubsubname"], "bus");
    assert_eq!(event["source"], "front");
    assert_eq!(event["type"], "com.dapr.event.sent");

    // RETRY through all of the runtime's attempts: nacked, delivered again by the broker, acked.
    let r = publish("flaky", json!("again")).await.expect("publish");
    assert_eq!(r.status().as_u16(), 204);
    let all = ATTEMPTS as usize + 1;
    wait_for(&got, "/flaky", all, Duration::from_secs(30)).await;
    let flaky = received(&got, "/flaky");
    assert!(
        flaky
            .iter()
            .all(|e| e["data"] == "again" && e["id"] == flaky[0]["id"])
    );
    // Acked: nothing more, well past the broker's redelivery delay.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        received(&got, "/flaky").len(),
        all,
        "delivered after SUCCESS"
    );
    assert_eq!(received(&got, "/orders").len(), 1, "orders delivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mqtt3_delivers_between_sidecars() {
    let server = MosquittoServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let component =
        tandem_crds::Component::test("bus", "pubsub.mqtt3").with_metadata("url", &server.url());
    publish_and_deliver(component, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_delivers_between_sidecars() {
    let server = RabbitServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let component = tandem_crds::Component::test("bus", "pubsub.rabbitmq")
        .with_metadata("connectionString", &server.url());
    publish_and_deliver(component, dir.path()).await;
}
