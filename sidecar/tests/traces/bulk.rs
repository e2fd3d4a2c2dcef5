//! Bulk pub/sub traced end to end: a bulk publish and single publishes under distinct trace
//! contexts, delivered to an app that subscribes with `bulkSubscribe`. Each entry's delivery is
//! a consumer span in its publisher's trace (child of the entry's producer span); the app's
//! request names the last entry's span, which links to the other entries' spans.

use super::*;
use axum::Router;
use axum::extract::{Request, State};
use axum::routing::{get, post};
use std::sync::{Arc, Mutex};

/// One bulk request the app got: its `traceparent` and its entries' events.
type BulkRequest = (String, Vec<Value>);

#[derive(Clone, Default)]
struct BulkApp {
    requests: Arc<Mutex<Vec<BulkRequest>>>,
}

async fn subscribe() -> axum::Json<Value> {
    axum::Json(serde_json::json!([{
        "pubsubname": "pubsub", "topic": "orders", "route": "/orders",
        "bulkSubscribe": {"enabled": true, "maxMessagesCount": 4, "maxAwaitDurationMs": 2000},
    }]))
}

async fn orders(State(app): State<BulkApp>, req: Request) -> axum::Json<Value> {
    let traceparent = req
        .headers()
        .get("traceparent")
        .map(|v| v.to_str().expect("text").to_owned());
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .expect("body");
    let envelope: Value = serde_json::from_slice(&body).expect("bulk envelope");
    let entries = envelope["entries"].as_array().cloned().unwrap_or_default();
    let statuses: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::json!({"entryId": e["entryId"], "status": "SUCCESS"}))
        .collect();
    let events = entries.into_iter().map(|e| e["event"].clone()).collect();
    app.requests
        .lock()
        .expect("not poisoned")
        .push((traceparent.unwrap_or_default(), events));
    axum::Json(serde_json::json!({ "statuses": statuses }))
}

impl BulkApp {
    async fn start() -> (BulkApp, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = BulkApp::default();
        let router = Router::new()
            .route("/dapr/subscribe", get(subscribe))
            .route("/orders", post(orders))
            .with_state(app.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (app, port)
    }

    fn requests(&self) -> Vec<BulkRequest> {
        self.requests.lock().expect("not poisoned").clone()
    }

    /// Entries delivered whose event is in `trace`.
    fn delivered_in(&self, trace: &str) -> usize {
        self.requests()
            .iter()
            .flat_map(|(_, events)| events.iter())
            .filter(|e| str_of(e, "traceparent").contains(trace))
            .count()
    }
}

fn root(trace: &str) -> String {
    format!("00-{trace}-b7ad6b7169203331-01")
}

const WARM: &str = "11111111111111111111111111111111";
const BULK: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SINGLE_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SINGLE_C: &str = "cccccccccccccccccccccccccccccccc";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_delivery_spans_join_each_publishers_trace_and_link() {
    let receiver = Receiver::otlp();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "tracing", &otlp_grpc(&receiver, "1"));
    let resources = dir.path().join("resources");
    std::fs::create_dir_all(&resources).expect("resources dir");
    std::fs::write(
        resources.join("pubsub.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec: {type: pubsub.in-memory, version: v1}\n",
    )
    .expect("write component");
    let (app, port) = BulkApp::start().await;
    let sc = sidecar(dir.path(), "bulky", &cfg, Some(port))
        .resources(&resources)
        .start();
    sc.wait_ready(WAIT);
    let publish = |trace: &'static str| {
        client()
            .post(sc.url("/v1.0/publish/pubsub/orders"))
            .header("traceparent", root(trace))
            .json(&serde_json::json!({"trace": trace}))
            .send()
    };

    // Until the subscription runs, publish warm-ups; then wait until no more arrive for longer
    // than maxAwaitDurationMs, so that the traced events travel in a batch of their own.
    let deadline = std::time::Instant::now() + WAIT;
    while app.delivered_in(WARM) == 0 {
        assert_eq!(publish(WARM).await.expect("publish").status().as_u16(), 204);
        assert!(
            std::time::Instant::now() < deadline,
            "never delivered; log:\n{}",
            sc.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut delivered = 0;
    while app.delivered_in(WARM) != delivered {
        delivered = app.delivered_in(WARM);
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }

    let bulk = client()
        .post(sc.url("/v1.0-alpha1/publish/bulk/pubsub/orders"))
        .header("traceparent", root(BULK))
        .json(&serde_json::json!([
            {"entryId": "1", "event": {"n": 1}, "contentType": "application/json"},
            {"entryId": "2", "event": {"n": 2}, "contentType": "application/json"},
        ]))
        .send()
        .await
        .expect("bulk publish");
    assert_eq!(bulk.status().as_u16(), 204);
    for trace in [SINGLE_B, SINGLE_C] {
        assert_eq!(
            publish(trace).await.expect("publish").status().as_u16(),
            204
        );
    }

    let spans = receiver
        .wait_for(WAIT, |s| {
            let consumers = |t| {
                in_trace(s, t)
                    .iter()
                    .filter(|s| s["kind"] == CONSUMER)
                    .count()
            };
            consumers(BULK) >= 2 && consumers(SINGLE_B) >= 1 && consumers(SINGLE_C) >= 1
        })
        .await;
    // The batch the app got: the four traced entries, in publish order.
    let (traceparent, events) = app
        .requests()
        .into_iter()
        .find(|(_, events)| {
            events
                .iter()
                .any(|e| str_of(e, "traceparent").contains(SINGLE_C))
        })
        .expect("the traced batch was delivered");
    let entry_traces: Vec<&str> = events
        .iter()
        .map(|e| {
            str_of(e, "traceparent")
                .split('-')
                .nth(1)
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(entry_traces, [BULK, BULK, SINGLE_B, SINGLE_C], "one batch");

    // Each entry: a consumer span in its own trace, child of the entry's producer span.
    let mut consumers = Vec::new();
    for event in &events {
        let producer_id = span_id_of(str_of(event, "traceparent"));
        let trace = str_of(event, "traceparent")
            .split('-')
            .nth(1)
            .unwrap_or_default();
        let in_its_trace = in_trace(&spans, trace);
        let producer = in_its_trace
            .iter()
            .find(|s| str_of(s, "spanId") == producer_id)
            .unwrap_or_else(|| panic!("the entry names an exported span: {in_its_trace:#?}"));
        assert_eq!(producer["kind"], PRODUCER);
        assert_eq!(str_of(producer, "name"), "publish/pubsub/orders");
        let consumer = in_its_trace
            .iter()
            .find(|s| s["kind"] == CONSUMER && str_of(s, "parentSpanId") == producer_id)
            .unwrap_or_else(|| panic!("a consumer span under {producer_id}: {in_its_trace:#?}"));
        assert_eq!(str_of(consumer, "name"), "pubsub/orders");
        assert_eq!(str_of(consumer, "service"), "bulky");
        assert_eq!(consumer["status"], STATUS_OK, "{consumer}");
        assert_eq!(attr(consumer, "messaging.destination.name"), "orders");
        assert_eq!(attr(consumer, "dapr.route"), "/orders");
        assert_eq!(attr(consumer, "messaging.batch.message_count"), "4");
        consumers.push(*consumer);
    }
    // The bulk publish: one producer span per entry, both under the request's server span.
    let bulk_trace = in_trace(&spans, BULK);
    let server = find(&bulk_trace, "bulky", SERVER);
    assert_eq!(str_of(server, "parentSpanId"), "b7ad6b7169203331");
    let producers: Vec<_> = bulk_trace
        .iter()
        .filter(|s| s["kind"] == PRODUCER)
        .collect();
    assert_eq!(producers.len(), 2, "{bulk_trace:#?}");
    assert!(
        producers
            .iter()
            .all(|p| str_of(p, "parentSpanId") == str_of(server, "spanId"))
    );

    // The app's request names the last entry's span, which links to the other three.
    let last = consumers[3];
    assert_eq!(
        span_id_of(&traceparent),
        str_of(last, "spanId"),
        "{traceparent}"
    );
    assert!(traceparent.contains(SINGLE_C), "{traceparent}");
    let links: Vec<(&str, &str)> = last["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| (str_of(l, "traceId"), str_of(l, "spanId")))
        .collect();
    let others: Vec<(&str, &str)> = consumers[..3]
        .iter()
        .map(|c| (str_of(c, "traceId"), str_of(c, "spanId")))
        .collect();
    assert_eq!(links, others);
    assert!(
        consumers[..3]
            .iter()
            .all(|c| c["links"].as_array().is_some_and(Vec::is_empty))
    );
}
