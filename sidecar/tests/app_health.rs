//! App health checks through a real sidecar and a real mosquitto: with
//! `--enable-app-health-check`, the sidecar probes the app's `/healthz`. When the app turns
//! unhealthy, `/v1.0/metadata` says so, and nothing is delivered (pub/sub, one by one and in
//! bulk, and an MQTT input binding): what is published meanwhile waits with the broker. When it
//! recovers, every one of those messages arrives, exactly once.

mod common;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use common::{client, json_of};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::MosquittoServer;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");
/// Messages published per topic while the app is unhealthy.
const WHILE_UNHEALTHY: i64 = 10;

#[derive(Clone, Default)]
struct App {
    healthy: Arc<AtomicBool>,
    /// (path, seq) of every event the app took; bulk entries one by one.
    got: Arc<Mutex<Vec<(String, i64)>>>,
}

impl App {
    fn count(&self, path: &str) -> usize {
        let got = self.got.lock().unwrap_or_else(|p| p.into_inner());
        got.iter().filter(|(p, _)| p == path).count()
    }

    fn seqs(&self, path: &str) -> Vec<i64> {
        let got = self.got.lock().unwrap_or_else(|p| p.into_inner());
        let mut seqs: Vec<i64> = got
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, s)| *s)
            .collect();
        seqs.sort_unstable();
        seqs
    }
}

async fn handle(State(app): State<App>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    match (req.method().as_str(), path.as_str()) {
        ("OPTIONS", _) => return http::StatusCode::OK.into_response(),
        (_, "/healthz") if app.healthy.load(Ordering::SeqCst) => {
            return http::StatusCode::NO_CONTENT.into_response();
        }
        (_, "/healthz") => return http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
        (_, "/dapr/config") => return http::StatusCode::NOT_FOUND.into_response(),
        (_, "/dapr/subscribe") => {
            return axum::Json(json!([
                {"pubsubname": "bus", "topic": "orders", "route": "/orders"},
                {"pubsubname": "bus", "topic": "batched", "route": "/batched",
                 "bulkSubscribe": {"enabled": true, "maxMessagesCount": 5, "maxAwaitDurationMs": 50}},
            ]))
            .into_response();
        }
        _ => {}
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut got = app.got.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(entries) = value["entries"].as_array() {
        let statuses: Vec<Value> = entries
            .iter()
            .map(|e| {
                let seq = e.pointer("/event/data/seq").and_then(Value::as_i64);
                got.push((path.clone(), seq.unwrap_or(-1)));
                json!({"entryId": e["entryId"], "status": "SUCCESS"})
            })
            .collect();
        return axum::Json(json!({ "statuses": statuses })).into_response();
    }
    // A CloudEvent's data.seq, or an input binding's raw {"seq": n}.
    let seq = value
        .pointer("/data/seq")
        .or_else(|| value.get("seq"))
        .and_then(Value::as_i64);
    got.push((path, seq.unwrap_or(-1)));
    axum::Json(json!({"status": "SUCCESS"})).into_response()
}

async fn health_status(sidecar: &Sidecar) -> Value {
    let md = json_of(
        client()
            .get(sidecar.url("/v1.0/metadata"))
            .send()
            .await
            .expect("metadata"),
    )
    .await;
    md["appConnectionProperties"]["health"].clone()
}

async fn wait_health(sidecar: &Sidecar, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = health_status(sidecar).await;
        if health["status"] == status {
            return;
        }
        assert!(Instant::now() < deadline, "never {status}: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes seq `from..to` to the two topics and the binding's MQTT topic.
async fn publish(sidecar: &Sidecar, from: i64, to: i64) {
    let c = client();
    for seq in from..to {
        for topic in ["orders", "batched"] {
            let r = c
                .post(sidecar.url(&format!("/v1.0/publish/bus/{topic}")))
                .json(&json!({ "seq": seq }))
                .send()
                .await
                .expect("publish");
            assert_eq!(r.status().as_u16(), 204);
        }
        let r = c
            .post(sidecar.url("/v1.0/bindings/devices"))
            .json(&json!({"operation": "create", "data": {"seq": seq}, "metadata": {"topic": "devices/one"}}))
            .send()
            .await
            .expect("output binding");
        assert!(r.status().is_success(), "{r:?}");
    }
}

async fn wait_counts(app: &App, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let paths = ["/orders", "/batched", "/devices"];
    while paths.iter().any(|p| app.count(p) < n) {
        let counts: Vec<usize> = paths.iter().map(|p| app.count(p)).collect();
        assert!(Instant::now() < deadline, "{paths:?}: {counts:?} of {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unhealthy_app_gets_nothing_until_it_recovers_and_loses_nothing() {
    let server = MosquittoServer::start();
    let app = App::default();
    app.healthy.store(true, Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let router = Router::new().fallback(handle).with_state(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
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
        .arg("--enable-app-health-check")
        .arg("--app-health-probe-interval=1")
        .arg("--app-health-probe-timeout=500")
        .arg("--app-health-threshold=1")
        .start();
    sidecar.wait_ready(Duration::from_secs(20));
    wait_health(&sidecar, "HEALTHY").await;
    let health = health_status(&sidecar).await;
    assert_eq!(
        health,
        json!({"healthCheckPath": "/healthz", "healthProbeInterval": "1s",
               "healthProbeTimeout": "500ms", "healthThreshold": 1, "status": "HEALTHY"})
    );

    // Healthy: delivered as usual.
    publish(&sidecar, 0, 3).await;
    wait_counts(&app, 3).await;

    // Unhealthy: nothing is delivered, whatever is published.
    app.healthy.store(false, Ordering::SeqCst);
    wait_health(&sidecar, "UNHEALTHY").await;
    publish(&sidecar, 3, 3 + WHILE_UNHEALTHY).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for path in ["/orders", "/batched", "/devices"] {
        assert_eq!(app.count(path), 3, "{path} got an event while unhealthy");
    }

    // Recovered: every message published meanwhile arrives, once.
    app.healthy.store(true, Ordering::SeqCst);
    wait_health(&sidecar, "HEALTHY").await;
    let all = (3 + WHILE_UNHEALTHY) as usize;
    wait_counts(&app, all).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let want: Vec<i64> = (0..3 + WHILE_UNHEALTHY).collect();
    for path in ["/orders", "/batched", "/devices"] {
        assert_eq!(app.seqs(path), want, "{path}: each exactly once");
    }

    let metrics = client()
        .get(format!("http://127.0.0.1:{}/metrics", sidecar.metrics_port))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for status in ["204", "503"] {
        let line = format!("status=\"{status}\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("dapr_http_healthprobes_completed_count")
                    && l.contains(&line)),
            "no {status} probes in:\n{metrics}"
        );
    }
}
