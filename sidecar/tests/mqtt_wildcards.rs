//! MQTT topic filters through a real sidecar and a real mosquitto: a `pubsub.mqtt3` subscription
//! to `sensors/+/temp` (CloudEvents) and to `raw/#` (rawPayload), and a `bindings.mqtt3` input
//! on `devices/#`. Every event names the concrete topic it was published to, as Dapr's do: the
//! CloudEvent's `topic` for pub/sub, the `topic` metadata (a header) for the binding. Messages
//! on topics no filter matches are not delivered.

mod common;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use common::{client, json_of};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::MosquittoServer;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// What the app received: (path, `topic` header, body as JSON).
type Received = Arc<Mutex<Vec<(String, String, Value)>>>;

async fn start_app(got: Received) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().fallback(move |req: Request| {
        let got = got.clone();
        async move {
            let path = req.uri().path().to_owned();
            if req.method() == http::Method::OPTIONS {
                return http::StatusCode::OK.into_response();
            }
            match path.as_str() {
                "/dapr/config" => return http::StatusCode::NOT_FOUND.into_response(),
                "/dapr/subscribe" => {
                    return axum::Json(json!([
                        {"pubsubname": "bus", "topic": "sensors/+/temp", "route": "/temps"},
                        {"pubsubname": "bus", "topic": "raw/#", "route": "/raw", "metadata": {"rawPayload": "true"}},
                    ]))
                    .into_response();
                }
                _ => {}
            }
            let topic = req
                .headers()
                .get("topic")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            got.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((path, topic, value));
            axum::Json(json!({"status": "SUCCESS"})).into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn received(got: &Received, path: &str) -> Vec<(String, Value)> {
    got.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(p, _, _)| p == path)
        .map(|(_, topic, body)| (topic.clone(), body.clone()))
        .collect()
}

async fn wait_for(got: &Received, path: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while received(got, path).len() < n {
        assert!(
            Instant::now() < deadline,
            "{path}: {:?}",
            received(got, path)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topic_filters_deliver_with_the_concrete_topic() {
    let server = MosquittoServer::start();
    let got: Received = Arc::default();
    let port = start_app(got.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    let manifests = [
        Component::test("bus", "pubsub.mqtt3").with_metadata("url", &server.url()),
        Component::test("devices", "bindings.mqtt3")
            .with_metadata("url", &server.url())
            .with_metadata("topic", "devices/#")
            .with_metadata("consumerID", "devices-in"),
    ];
    let yaml: Vec<String> = manifests.iter().map(common::manifest).collect();
    common::write_component(&res, "mqtt.yaml", &yaml.join("---\n"));
    let sidecar = SidecarBuilder::new(BIN, "shop", dir.path())
        .app_port(port)
        .resources(&res)
        .start();
    sidecar.wait_ready(Duration::from_secs(20));
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
        let listed = md["subscriptions"].as_array().map_or(0, Vec::len);
        if listed == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "not subscribed: {md}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    for (topic, n) in [
        ("sensors/kitchen/temp", 1),
        ("sensors/hall/humidity", 2),
        ("sensors/hall/temp", 3),
    ] {
        let r = c
            .post(sidecar.url(&format!("/v1.0/publish/bus/{topic}")))
            .json(&json!({ "n": n }))
            .send()
            .await
            .expect("publish");
        assert_eq!(r.status().as_u16(), 204, "{topic}");
    }
    let r = c
        .post(sidecar.url("/v1.0/publish/bus/raw/a/b?metadata.rawPayload=true"))
        .body("raw bytes")
        .send()
        .await
        .expect("publish raw");
    assert_eq!(r.status().as_u16(), 204);
    let r = c
        .post(sidecar.url("/v1.0/bindings/devices"))
        .json(
            &json!({"operation": "create", "data": {"n": 4}, "metadata": {"topic": "devices/x/y"}}),
        )
        .send()
        .await
        .expect("output binding");
    assert!(r.status().is_success(), "{:?}", r.text().await);

    wait_for(&got, "/temps", 2).await;
    wait_for(&got, "/raw", 1).await;
    wait_for(&got, "/devices", 1).await;
    // A message on a topic no filter matches would have come by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut temps: Vec<(Value, Value)> = received(&got, "/temps")
        .into_iter()
        .map(|(_, event)| (event["topic"].clone(), event["data"]["n"].clone()))
        .collect();
    temps.sort_by_key(|(topic, _)| topic.to_string());
    assert_eq!(
        temps,
        [
            (json!("sensors/hall/temp"), json!(3)),
            (json!("sensors/kitchen/temp"), json!(1)),
        ]
    );
    let raw = &received(&got, "/raw")[0].1;
    assert_eq!(raw["topic"], "raw/a/b", "{raw}");
    assert_eq!(raw["data_base64"], "cmF3IGJ5dGVz");
    let (topic, event) = &received(&got, "/devices")[0];
    assert_eq!(topic, "devices/x/y");
    assert_eq!(event, &json!({"n": 4}));
}
