//! Pub/sub, bindings, secrets, metadata and shutdown over gRPC, each checked where it lands: the
//! subscriber app's deliveries, the binding's files, the HTTP API's view of the same sidecar.

use super::common::{client, json_of};
use super::{BIN, connect, everyday_components, everyday_sidecar, resources};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use dapr::dapr::proto::runtime::v1 as rt;
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_sidecar::testing::sidecar::SidecarBuilder;

/// Deliveries the app received: (path, CloudEvent).
type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn subscriber(State(got): State<Received>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    // The sidecar also asks for an actor configuration; this app hosts no actors.
    if path == "/dapr/config" {
        return StatusCode::NOT_FOUND.into_response();
    }
    if path == "/dapr/subscribe" {
        let topics = json!([{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]);
        return axum::Json(topics).into_response();
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let event = serde_json::from_slice(&body).unwrap_or(Value::Null);
    got.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((path, event));
    axum::Json(json!({"status": "SUCCESS"})).into_response()
}

async fn wait_for(got: &Received, n: usize) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = got.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if seen.len() >= n {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} deliveries: {seen:?}",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_bulk_publish_reach_the_subscriber() {
    let got = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().fallback(subscriber).with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().expect("tempdir");
    let res = resources(dir.path(), &everyday_components(dir.path()));
    let s = SidecarBuilder::new(BIN, "grpc-pub", &dir.path().join("data"))
        .resources(&res)
        .app_port(port)
        .start();
    s.wait_ready(Duration::from_secs(10));
    let mut c = connect(&s).await;
    // The in-memory broker keeps nothing for later: publish once the subscription runs (and
    // see it in the typed metadata on the way).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let md = c.get_metadata(rt::GetMetadataRequest::default()).await;
        let subs = md.expect("metadata").into_inner().subscriptions;
        if let Some(sub) = subs.first() {
            assert_eq!(
                (sub.pubsub_name.as_str(), sub.topic.as_str()),
                ("pubsub", "orders")
            );
            let rules = sub
                .rules
                .as_ref()
                .map(|r| r.rules.clone())
                .unwrap_or_default();
            assert_eq!(rules.first().map(|r| r.path.as_str()), Some("/orders"));
            break;
        }
        assert!(Instant::now() < deadline, "the subscription never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut req = tonic::Request::new(rt::PublishEventRequest {
        pubsub_name: "pubsub".into(),
        topic: "orders".into(),
        data: br#"{"id":1}"#.to_vec(),
        data_content_type: "application/json".into(),
        ..Default::default()
    });
    req.metadata_mut()
        .insert("traceparent", traceparent.parse().expect("ascii"));
    c.publish_event(req).await.expect("publish");
    let seen = wait_for(&got, 1).await;
    let (path, event) = &seen[0];
    assert_eq!(path, "/orders");
    assert_eq!(event["data"], json!({"id": 1}));
    assert_eq!(event["datacontenttype"], "application/json");
    assert_eq!(event["source"], "grpc-pub");
    // The publish's producer span: the caller's trace, a new span id (the one exported).
    let carried = event["traceparent"].as_str().expect("traceparent");
    assert!(
        carried.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && carried.ends_with("-01"),
        "{carried}"
    );
    assert_ne!(carried, traceparent);

    let entry = |id: &str, n: u32| rt::BulkPublishRequestEntry {
        entry_id: id.into(),
        event: format!(r#"{{"n":{n}}}"#).into_bytes(),
        content_type: "application/json".into(),
        metadata: HashMap::new(),
    };
    let bulk = |entries| rt::BulkPublishRequest {
        pubsub_name: "pubsub".into(),
        topic: "orders".into(),
        entries,
        metadata: HashMap::new(),
    };
    let answer = c
        .bulk_publish_event(bulk(vec![entry("a", 2), entry("b", 3)]))
        .await;
    assert!(answer.expect("bulk").into_inner().failed_entries.is_empty());
    #[allow(
        deprecated,
        reason = "daprd still serves the Alpha1 name, so Tandem does too"
    )]
    let answer = c.bulk_publish_event_alpha1(bulk(vec![entry("c", 4)])).await;
    assert!(
        answer
            .expect("bulk alpha1")
            .into_inner()
            .failed_entries
            .is_empty()
    );
    let seen = wait_for(&got, 4).await;
    let mut numbers: Vec<i64> = seen[1..]
        .iter()
        .filter_map(|(_, e)| e["data"]["n"].as_i64())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_and_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = everyday_sidecar(dir.path(), "grpc-bind");
    let mut c = connect(&s).await;

    let create = rt::InvokeBindingRequest {
        name: "files".into(),
        data: b"\x00binary payload".to_vec(),
        metadata: HashMap::from([("fileName".to_owned(), "note.bin".to_owned())]),
        operation: "create".into(),
    };
    let created = c.invoke_binding(create).await.expect("create").into_inner();
    let answer: Value = serde_json::from_slice(&created.data).expect("JSON answer");
    assert_eq!(answer["fileName"], "note.bin");
    let on_disk = std::fs::read(dir.path().join("files/note.bin")).expect("the file exists");
    assert_eq!(on_disk, b"\x00binary payload");
    let read = rt::InvokeBindingRequest {
        name: "files".into(),
        metadata: HashMap::from([("fileName".to_owned(), "note.bin".to_owned())]),
        operation: "get".into(),
        ..Default::default()
    };
    let read = c.invoke_binding(read).await.expect("get").into_inner();
    assert_eq!(read.data, b"\x00binary payload");

    let secret = rt::GetSecretRequest {
        store_name: "secretstore".into(),
        key: "DB".into(),
        ..Default::default()
    };
    let got = c.get_secret(secret).await.expect("secret").into_inner();
    assert_eq!(
        got.data,
        HashMap::from([("DB".to_owned(), "s3cret".to_owned())])
    );
    let bulk = rt::GetBulkSecretRequest {
        store_name: "secretstore".into(),
        ..Default::default()
    };
    let all = c
        .get_bulk_secret(bulk)
        .await
        .expect("bulk")
        .into_inner()
        .data;
    assert_eq!(all["DB"].secrets["DB"], "s3cret");
    assert!(
        !all.contains_key("PATH"),
        "the prefix hides other variables"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_matches_http_and_shutdown_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = everyday_sidecar(dir.path(), "grpc-meta");
    let mut c = connect(&s).await;
    let set = rt::SetMetadataRequest {
        key: "team".into(),
        value: "blue".into(),
    };
    c.set_metadata(set).await.expect("set metadata");
    let typed = c
        .get_metadata(rt::GetMetadataRequest::default())
        .await
        .expect("metadata")
        .into_inner();
    let http = json_of(
        client()
            .get(s.url("/v1.0/metadata"))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(typed.id, "grpc-meta");
    assert_eq!(
        http["extended"]["team"], "blue",
        "a gRPC SetMetadata shows over HTTP"
    );
    assert_eq!(typed.extended_metadata["team"], "blue");
    assert_eq!(typed.runtime_version, http["runtimeVersion"]);
    let mut names: Vec<(String, String)> = typed
        .registered_components
        .iter()
        .map(|c| (c.name.clone(), c.r#type.clone()))
        .collect();
    names.sort();
    let mut expected: Vec<(String, String)> = http["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    assert!(names.contains(&("statestore".to_owned(), "state.in-memory".to_owned())));
    let app = typed.app_connection_properties.expect("app connection");
    assert_eq!(app.protocol, "http");

    c.shutdown(rt::ShutdownRequest::default())
        .await
        .expect("shutdown answers");
    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("the sidecar exits");
    assert_eq!(status.code(), Some(0), "{}", s.log());
}
