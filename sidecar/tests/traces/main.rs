//! Trace export against real receivers: oteltest's OTLP sink (gRPC and HTTP) and a Zipkin v2
//! endpoint. Sidecars are real processes; each scenario checks that the spans arrive as one
//! trace with the right parents, kinds, names, attributes and status, and that the ids on the
//! wire are the exported spans' ids.

mod actors;
mod app;
mod bulk;
mod grpc;
mod receivers;
mod sampling;
mod tls;

use app::TracedApp;
use receivers::Receiver;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");
const WAIT: Duration = Duration::from_secs(30);

/// OTLP span kinds and status codes as the receiver prints them.
const SERVER: i64 = 2;
const CLIENT: i64 = 3;
const PRODUCER: i64 = 4;
const CONSUMER: i64 = 5;
const STATUS_OK: i64 = 1;

fn client() -> reqwest::Client {
    tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A Configuration with `tracing` (YAML flow mapping) in `dir`.
fn config(dir: &Path, name: &str, tracing: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {{name: {name}}}\nspec:\n  tracing: {tracing}\n"
    );
    std::fs::write(&path, yaml).expect("write config");
    path
}

fn otlp_grpc(receiver: &Receiver, rate: &str) -> String {
    format!(
        "{{samplingRate: '{rate}', otel: {{endpointAddress: '127.0.0.1:{}', protocol: grpc, isSecure: false}}}}",
        receiver.ports[0]
    )
}

fn sidecar(dir: &Path, app_id: &str, config: &Path, app_port: Option<u16>) -> SidecarBuilder {
    let mut b = SidecarBuilder::new(BIN, app_id, dir)
        .arg("--config")
        .arg(config.to_str().expect("utf-8 path"));
    if let Some(port) = app_port {
        b = b.app_port(port);
    }
    b
}

fn str_of<'a>(span: &'a Value, key: &str) -> &'a str {
    span[key].as_str().unwrap_or_default()
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a str {
    span["attributes"][key].as_str().unwrap_or_default()
}

fn span_id_of(traceparent: &str) -> &str {
    traceparent.split('-').nth(2).unwrap_or_default()
}

fn in_trace<'a>(spans: &'a [Value], trace: &str) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| str_of(s, "traceId") == trace)
        .collect()
}

fn find<'a>(spans: &[&'a Value], service: &str, kind: i64) -> &'a Value {
    spans
        .iter()
        .find(|s| str_of(s, "service") == service && s["kind"] == kind)
        .unwrap_or_else(|| panic!("no span of kind {kind} from {service} in {spans:#?}"))
}

/// Stops a sidecar with SIGTERM (its spans are flushed on the way out) and waits for it.
fn stop(sidecar: &mut Sidecar) {
    sidecar.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(
        sidecar.wait_exit(Duration::from_secs(15)).is_some(),
        "{} did not stop",
        sidecar.app_id
    );
}

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const ROOT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invocation_across_two_sidecars_is_one_trace_over_otlp_grpc() {
    let receiver = Receiver::otlp();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "tracing", &otlp_grpc(&receiver, "1"));
    let app = TracedApp::start().await;
    let a = sidecar(dir.path(), "caller", &cfg, None).start();
    let b = sidecar(dir.path(), "callee", &cfg, Some(app.port)).start();
    b.wait_ready(WAIT);

    let response = client()
        .post(a.url("/v1.0/invoke/callee/method/orders/42"))
        .header("traceparent", ROOT)
        .header("tracestate", "vendor=abc")
        .header("baggage", "tenant=blue")
        .body("{}")
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status().as_u16(), 200);
    let answered = response.headers()["traceparent"]
        .to_str()
        .expect("text")
        .to_owned();

    let spans = receiver
        .wait_for(WAIT, |s| in_trace(s, TRACE).len() >= 3)
        .await;
    let trace = in_trace(&spans, TRACE);
    let a_server = find(&trace, "caller", SERVER);
    let a_client = find(&trace, "caller", CLIENT);
    let b_server = find(&trace, "callee", SERVER);
    for span in [a_server, a_client, b_server] {
        assert_eq!(str_of(span, "name"), "CallLocal/callee/orders/42", "{span}");
        assert_eq!(span["status"], STATUS_OK, "{span}");
        assert_eq!(span["transport"], "grpc");
    }
    assert_eq!(
        str_of(a_server, "parentSpanId"),
        "b7ad6b7169203331",
        "the client's span is the root's parent"
    );
    assert_eq!(str_of(a_client, "parentSpanId"), str_of(a_server, "spanId"));
    assert_eq!(
        str_of(b_server, "parentSpanId"),
        str_of(a_client, "spanId"),
        "the wire carried the client span's id"
    );
    assert_eq!(attr(a_client, "net.peer.name"), "callee");
    assert_eq!(attr(b_server, "dapr.caller_app_id"), "caller");
    assert_eq!(attr(b_server, "dapr.callee_app_id"), "callee");
    assert_eq!(
        span_id_of(&answered),
        str_of(a_server, "spanId"),
        "the response names the server span"
    );

    let seen = app.seen();
    let (path, traceparent) = seen
        .iter()
        .find(|(p, _)| p == "/orders/42")
        .expect("the app was called");
    assert_eq!(path, "/orders/42");
    assert!(traceparent.contains(TRACE), "{traceparent}");
    assert_eq!(
        span_id_of(traceparent),
        str_of(b_server, "spanId"),
        "the app's parent is the callee's server span"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publish_and_delivery_are_one_trace_over_otlp_http() {
    let receiver = Receiver::otlp();
    let dir = tempfile::tempdir().expect("tempdir");
    let tracing = format!(
        "{{samplingRate: '1', otel: {{endpointAddress: '127.0.0.1:{}', protocol: http, isSecure: false}}}}",
        receiver.ports[1]
    );
    let cfg = config(dir.path(), "tracing", &tracing);
    let resources = dir.path().join("resources");
    std::fs::create_dir_all(&resources).expect("resources dir");
    std::fs::write(
        resources.join("pubsub.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec: {type: pubsub.in-memory, version: v1}\n",
    )
    .expect("write component");
    let app = TracedApp::start().await;
    let sc = sidecar(dir.path(), "shop", &cfg, Some(app.port))
        .resources(&resources)
        .start();
    sc.wait_ready(WAIT);

    // The subscription starts once the app answered /dapr/subscribe; publish until delivered.
    let deadline = std::time::Instant::now() + WAIT;
    while !app.seen().iter().any(|(p, _)| p == "/orders") {
        let response = client()
            .post(sc.url("/v1.0/publish/pubsub/orders"))
            .header("traceparent", ROOT)
            .json(&serde_json::json!({"id": 1}))
            .send()
            .await
            .expect("publish");
        assert_eq!(response.status().as_u16(), 204);
        assert!(
            std::time::Instant::now() < deadline,
            "never delivered; log:\n{}",
            sc.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spans = receiver
        .wait_for(WAIT, |s| {
            let t = in_trace(s, TRACE);
            [SERVER, PRODUCER, CONSUMER]
                .iter()
                .all(|k| t.iter().any(|s| s["kind"] == *k))
        })
        .await;
    let trace = in_trace(&spans, TRACE);
    assert!(trace.iter().all(|s| s["transport"] == "http"), "{trace:#?}");
    let consumer = find(&trace, "shop", CONSUMER);
    let producer = trace
        .iter()
        .find(|s| s["kind"] == PRODUCER && str_of(s, "spanId") == str_of(consumer, "parentSpanId"))
        .unwrap_or_else(|| panic!("the consumer's parent is a producer span: {trace:#?}"));
    let server = trace
        .iter()
        .find(|s| s["kind"] == SERVER && str_of(s, "spanId") == str_of(producer, "parentSpanId"))
        .unwrap_or_else(|| panic!("the producer's parent is the publish call's span: {trace:#?}"));
    assert_eq!(str_of(server, "name"), "/v1.0/publish/pubsub/orders");
    assert_eq!(attr(server, "messaging.destination.name"), "orders");
    assert_eq!(str_of(producer, "name"), "publish/pubsub/orders");
    assert_eq!(str_of(consumer, "name"), "pubsub/orders");
    assert_eq!(consumer["status"], STATUS_OK);
    let delivered: Vec<String> = app
        .seen()
        .into_iter()
        .filter(|(p, _)| p == "/orders")
        .map(|(_, tp)| span_id_of(&tp).to_owned())
        .collect();
    assert!(
        trace
            .iter()
            .any(|s| s["kind"] == CONSUMER && delivered.contains(&str_of(s, "spanId").to_owned())),
        "the subscriber's parent is a consumer span: {delivered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zipkin_receives_v2_json() {
    let receiver = Receiver::zipkin();
    let dir = tempfile::tempdir().expect("tempdir");
    let tracing = format!(
        "{{samplingRate: '1', zipkin: {{endpointAddress: 'http://127.0.0.1:{}/api/v2/spans'}}}}",
        receiver.ports[0]
    );
    let cfg = config(dir.path(), "tracing", &tracing);
    let sc = sidecar(dir.path(), "zipped", &cfg, None).start();
    let response = client()
        .get(sc.url("/v1.0/metadata"))
        .header("traceparent", ROOT)
        .send()
        .await
        .expect("metadata");
    assert_eq!(response.status().as_u16(), 200);
    let spans = receiver
        .wait_for(WAIT, |s| s.iter().any(|s| str_of(s, "traceId") == TRACE))
        .await;
    let span = spans
        .iter()
        .find(|s| str_of(s, "traceId") == TRACE)
        .expect("found");
    assert_eq!(str_of(span, "parentId"), "b7ad6b7169203331");
    assert_eq!(str_of(span, "kind"), "SERVER");
    assert_eq!(str_of(span, "name"), "/v1.0/metadata");
    assert_eq!(span["localEndpoint"]["serviceName"], "zipped");
    assert_eq!(span["tags"]["dapr.api"], "GET /v1.0/metadata");
}
