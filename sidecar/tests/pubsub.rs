//! Pub/sub end to end with the in-memory broker: a real sidecar, a real subscriber app that
//! answers `/dapr/subscribe` and scripted outcomes, publishing through the HTTP API.

mod common;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use common::{client, json_of};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_sidecar::testing::sidecar::SidecarBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// What the subscriber app received: (path, content type, body as JSON).
type Received = Arc<Mutex<Vec<(String, String, Value)>>>;

/// Subscriptions: `orders` (route by CEL), `raw` (rawPayload, double-quoted like @dapr/dapr),
/// `flaky` (RETRY twice, then SUCCESS), `poison` (always 500, dead-lettered to `dead`), `dropme`
/// (DROP) and `dead` (the dead-letter topic).
async fn subscriber(State(got): State<Received>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/dapr/subscribe" {
        return axum::Json(json!([
            {"pubsubname": "pubsub", "topic": "orders", "routes": {"rules": [{"match": "event.data.total > 100", "path": "/big"}], "default": "/orders"}},
            {"pubsubname": "pubsub", "topic": "raw", "route": "/raw", "metadata": {"rawPayload": "\"true\""}},
            {"pubsubname": "pubsub", "topic": "flaky", "route": "/flaky"},
            {"pubsubname": "pubsub", "topic": "poison", "route": "/poison", "deadLetterTopic": "dead"},
            {"pubsubname": "pubsub", "topic": "dropme", "route": "/dropme"},
            {"pubsubname": "pubsub", "topic": "dead", "route": "/dead"},
        ]))
        .into_response();
    }
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut got = got.lock().unwrap_or_else(|p| p.into_inner());
    got.push((path.clone(), ct, value));
    let seen = got.iter().filter(|(p, _, _)| *p == path).count();
    match path.as_str() {
        "/flaky" if seen <= 2 => axum::Json(json!({"status": "RETRY"})).into_response(),
        "/poison" => http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/dropme" => axum::Json(json!({"status": "DROP"})).into_response(),
        _ => axum::Json(json!({"status": "SUCCESS"})).into_response(),
    }
}

fn count(got: &Received, path: &str) -> usize {
    got.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(p, _, _)| p == path)
        .count()
}

async fn wait_for(got: &Received, path: &str, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while count(got, path) < n {
        assert!(
            Instant::now() < deadline,
            "{path} got {} of {n} deliveries",
            count(got, path)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publish_route_retry_drop_and_dead_letter() {
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().fallback(subscriber).with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().expect("tempdir");
    // No resources path: the embedded default `pubsub` (in-memory) is used.
    let s = SidecarBuilder::new(BIN, "shop", dir.path())
        .app_port(port)
        .start();
    s.wait_ready(Duration::from_secs(30));
    let c = client();
    let publish = |topic: &str, body: Value| {
        c.post(s.url(&format!("/v1.0/publish/pubsub/{topic}")))
            .json(&body)
            .send()
    };

    // Subscriptions are listed once discovered.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let md = json_of(
            c.get(s.url("/v1.0/metadata"))
                .send()
                .await
                .expect("metadata"),
        )
        .await;
        if md["subscriptions"].as_array().is_some_and(|a| a.len() == 6) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "subscriptions never appeared: {md}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // CloudEvent wrapping and CEL routing.
    assert_eq!(
        publish("orders", json!({"id": 1, "total": 50}))
            .await
            .expect("publish")
            .status()
            .as_u16(),
        204
    );
    assert_eq!(
        publish("orders", json!({"id": 2, "total": 500}))
            .await
            .expect("publish")
            .status()
            .as_u16(),
        204
    );
    wait_for(&got, "/orders", 1, Duration::from_secs(30)).await;
    wait_for(&got, "/big", 1, Duration::from_secs(30)).await;
    let all = got.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (_, ct, event) = all
        .iter()
        .find(|(p, _, _)| p == "/orders")
        .expect("delivered");
    assert_eq!(ct, "application/cloudevents+json");
    assert_eq!(event["data"], json!({"id": 1, "total": 50}));
    assert_eq!(event["source"], "shop");
    assert_eq!(event["type"], "com.dapr.event.sent");
    assert_eq!(event["topic"], "orders");
    assert_eq!(event["pubsubname"], "pubsub");
    assert_eq!(event["specversion"], "1.0");
    assert!(event["id"].is_string() && event["time"].is_string());

    // rawPayload on both sides: the body travels as is and arrives base64 in a raw event.
    let r = c
        .post(s.url("/v1.0/publish/pubsub/raw?metadata.rawPayload=true"))
        .body("plain bytes")
        .send()
        .await
        .expect("publish");
    assert_eq!(r.status().as_u16(), 204);
    wait_for(&got, "/raw", 1, Duration::from_secs(30)).await;
    let raw = got
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(p, _, _)| p == "/raw")
        .cloned()
        .expect("raw");
    assert_eq!(raw.2["data_base64"], "cGxhaW4gYnl0ZXM=");

    // RETRY twice, then SUCCESS: delivered three times, then never again.
    publish("flaky", json!("x")).await.expect("publish");
    wait_for(&got, "/flaky", 3, Duration::from_secs(30)).await;
    // DROP: once, never again. A poison message: retried, then dead-lettered, exactly once.
    publish("dropme", json!("d")).await.expect("publish");
    publish("poison", json!({"bad": true}))
        .await
        .expect("publish");
    wait_for(&got, "/dead", 1, Duration::from_secs(30)).await;
    wait_for(&got, "/dropme", 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // anything extra would have arrived by now
    assert_eq!(count(&got, "/flaky"), 3);
    assert_eq!(count(&got, "/dropme"), 1);
    assert_eq!(count(&got, "/dead"), 1);
    assert_eq!(
        count(&got, "/poison"),
        tandem_sidecar::pubsub::delivery::ATTEMPTS as usize
    );

    // Bulk publish, with @dapr/dapr's `entryID` spelling: each entry is its own CloudEvent.
    let bulk = json!([
        {"entryID": "e1", "event": {"id": 3, "total": 10}, "contentType": "application/json"},
        {"entryID": "e2", "event": {"id": 4, "total": 1000}, "contentType": "application/json"},
    ]);
    let r = c
        .post(s.url("/v1.0-alpha1/publish/bulk/pubsub/orders"))
        .json(&bulk)
        .send()
        .await
        .expect("bulk");
    assert_eq!(r.status().as_u16(), 204);
    wait_for(&got, "/orders", 2, Duration::from_secs(30)).await;
    wait_for(&got, "/big", 2, Duration::from_secs(30)).await;
    let dup = json!([{"entryId": "x", "event": 1}, {"entryId": "x", "event": 2}]);
    let r = c
        .post(s.url("/v1.0-alpha1/publish/bulk/pubsub/orders"))
        .json(&dup)
        .send()
        .await
        .expect("bulk");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(json_of(r).await["errorCode"], "ERR_PUBSUB_EVENTS_SER");

    // Errors as Dapr's table says.
    let r = c
        .post(s.url("/v1.0/publish/nosuch/t"))
        .body("x")
        .send()
        .await
        .expect("publish");
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(json_of(r).await["errorCode"], "ERR_PUBSUB_NOT_FOUND");
    let r = c
        .post(s.url("/v1.0/publish/pubsub"))
        .body("x")
        .send()
        .await
        .expect("publish");
    assert_eq!(json_of(r).await["errorCode"], "ERR_TOPIC_NAME_EMPTY");
    let r = c
        .post(s.url("/v1.0/publish/pubsub/t"))
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .expect("publish");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(json_of(r).await["errorCode"], "ERR_PUBSUB_EVENTS_SER");
    let r = c
        .post(s.url("/v1.0/publish/pubsub/t?metadata.rawPayload=maybe"))
        .body("x")
        .send()
        .await
        .expect("publish");
    assert_eq!(json_of(r).await["errorCode"], "ERR_PUBSUB_REQUEST_METADATA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn declarative_subscriptions_route_by_cel() {
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // This app answers /dapr/subscribe too, but only the declarative subscriptions name topic `d`.
    let app = Router::new().fallback(subscriber).with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    common::write_component(
        &res,
        "pubsub.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: bus}\nspec: {type: pubsub.in-memory, version: v1}\n---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: d}\nspec:\n  pubsubname: bus\n  topic: d\n  routes:\n    rules:\n    - {match: 'event.data.kind == \"special\"', path: /special}\n    default: /plain\nscopes: [shop]\n---\napiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: elsewhere}\nspec: {pubsubname: bus, topic: d, route: /never}\nscopes: [other-app]\n",
    );
    let s = SidecarBuilder::new(BIN, "shop", dir.path())
        .app_port(port)
        .resources(&res)
        .start();
    s.wait_ready(Duration::from_secs(30));
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let md = json_of(
            c.get(s.url("/v1.0/metadata"))
                .send()
                .await
                .expect("metadata"),
        )
        .await;
        let subs = md["subscriptions"].as_array().cloned().unwrap_or_default();
        if subs.iter().any(|s| s["topic"] == "d") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "declarative subscription never appeared: {md}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for kind in ["special", "ordinary"] {
        let r = c
            .post(s.url("/v1.0/publish/bus/d"))
            .json(&json!({"kind": kind}))
            .send()
            .await
            .expect("publish");
        assert_eq!(r.status().as_u16(), 204);
    }
    wait_for(&got, "/special", 1, Duration::from_secs(30)).await;
    wait_for(&got, "/plain", 1, Duration::from_secs(30)).await;
    assert_eq!(
        count(&got, "/never"),
        0,
        "a subscription scoped to another app must not deliver"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_streams_broker_delivers_through_the_sidecar() {
    let redis = tandem_sidecar::testing::RedisServer::start();
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().fallback(subscriber).with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    common::write_component(
        &res,
        "pubsub.yaml",
        &common::manifest(
            &tandem_crds::Component::test("pubsub", "pubsub.redis")
                .with_metadata("redisHost", &redis.addr())
                .with_metadata("processingTimeout", "1s")
                .with_metadata("redeliverInterval", "200ms"),
        ),
    );
    let s = SidecarBuilder::new(BIN, "shop", dir.path())
        .app_port(port)
        .resources(&res)
        .start();
    s.wait_ready(Duration::from_secs(30));
    let c = client();
    for total in [5, 500] {
        let r = c
            .post(s.url("/v1.0/publish/pubsub/orders"))
            .json(&json!({"total": total}))
            .send()
            .await
            .expect("publish");
        assert_eq!(r.status().as_u16(), 204);
    }
    wait_for(&got, "/orders", 1, Duration::from_secs(30)).await;
    wait_for(&got, "/big", 1, Duration::from_secs(30)).await;
    // RETRY twice then SUCCESS goes through Redis' pending list: three deliveries in all.
    c.post(s.url("/v1.0/publish/pubsub/flaky"))
        .json(&json!("x"))
        .send()
        .await
        .expect("publish");
    wait_for(&got, "/flaky", 3, Duration::from_secs(30)).await;
    // The message is on the stream, as Dapr's Redis pub/sub keeps it.
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "XLEN", "orders"])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
}
