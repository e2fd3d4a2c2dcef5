//! A gRPC app (`--app-protocol grpc`) built with the Python SDK's `dapr.ext.grpc.App`
//! (`tests/sdk/python/grpc_app.py`): invoked from an HTTP caller through a second sidecar and
//! over the gRPC API's `InvokeService`, fed pub/sub events (success, one retry, drop) and
//! input-binding events (`bindings.cron`), and probed for health (`AppCallbackHealthCheck`), all
//! through the sidecar's gRPC app channel.

use super::{BIN, Killed, isolate, resources, sdk_env};
use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::free_port;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

fn write_resources(dir: &Path) -> std::path::PathBuf {
    resources(
        dir,
        &[
            Component::test("pubsub", "pubsub.in-memory"),
            Component::test("ticks", "bindings.cron").with_metadata("schedule", "@every 1s"),
        ],
    )
}

async fn seen(http: &reqwest::Client, sc: &Sidecar) -> Value {
    http.post(sc.url("/v1.0/invoke/py-grpc-app/method/seen"))
        .send()
        .await
        .expect("seen")
        .json()
        .await
        .expect("seen json")
}

async fn publish(http: &reqwest::Client, sc: &Sidecar, topic: &str, body: &Value) {
    let r = http
        .post(sc.url(&format!("/v1.0/publish/pubsub/{topic}")))
        .json(body)
        .send()
        .await
        .expect("publish");
    assert_eq!(
        r.status().as_u16(),
        204,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_grpc_app_behind_app_protocol_grpc() {
    let python = sdk_env("TANDEM_SDK_PYTHON");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/python/grpc_app.py");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app_port = free_port();
    let mut app = Command::new(&python);
    isolate(&mut app);
    app.arg(&script)
        .env("APP_PORT", app_port.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null());
    let _app = Killed(app.spawn().expect("start the python gRPC app"));
    let callee = SidecarBuilder::new(BIN, "py-grpc-app", &data)
        .app_port(app_port)
        .arg("--app-protocol")
        .arg("grpc")
        .arg("--enable-app-health-check")
        .arg("--app-health-probe-interval")
        .arg("1")
        .resources(&write_resources(dir.path()))
        .start();
    callee.wait_ready(Duration::from_secs(60));
    let caller = SidecarBuilder::new(BIN, "grpc-app-caller", &data).start();
    caller.wait_ready(Duration::from_secs(30));
    let http = tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");

    // An HTTP caller reaches the gRPC app: body, content type and headers in, JSON back.
    let r = http
        .put(caller.url("/v1.0/invoke/py-grpc-app/method/echo?x=1"))
        .header("content-type", "text/plain")
        .header("x-custom", "v1")
        .body("hello grpc app")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(echoed["body"], "hello grpc app");
    assert_eq!(echoed["content_type"], "text/plain");
    assert_eq!(echoed["metadata"]["x-custom"], json!(["v1"]), "{echoed}");
    assert_eq!(
        echoed["metadata"]["dapr-caller-app-id"],
        json!(["grpc-app-caller"])
    );
    // The app's error status: daprd's HTTP status (UNKNOWN → 500) with the status as JSON.
    let r = http
        .post(caller.url("/v1.0/invoke/py-grpc-app/method/fail"))
        .send()
        .await
        .expect("invoke fail");
    assert_eq!(r.status().as_u16(), 500);
    let status: Value = r.json().await.expect("status json");
    assert_eq!(status["code"], 2, "{status}");
    // A method the app does not have: UNIMPLEMENTED → 501.
    let r = http
        .post(caller.url("/v1.0/invoke/py-grpc-app/method/nope"))
        .send()
        .await
        .expect("invoke nope");
    assert_eq!(r.status().as_u16(), 501);

    // The gRPC API's InvokeService reaches it too.
    let channel = tonic::transport::Endpoint::from_shared(caller.grpc_endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let answer = DaprClient::new(channel)
        .invoke_service(rt::InvokeServiceRequest {
            id: "py-grpc-app".into(),
            message: Some(common::InvokeRequest {
                method: "echo".into(),
                data: Some(prost_types::Any {
                    type_url: String::new(),
                    value: b"over grpc".to_vec(),
                }),
                content_type: "text/plain".into(),
                http_extension: None,
            }),
        })
        .await
        .expect("InvokeService")
        .into_inner();
    let echoed: Value =
        serde_json::from_slice(&answer.data.expect("data").value).expect("echo json");
    assert_eq!(echoed["body"], "over grpc");

    // Pub/sub: programmatic subscriptions from ListTopicSubscriptions; RETRY redelivers, DROP
    // settles, SUCCESS is delivered once.
    for i in 0..5 {
        publish(
            &http,
            &callee,
            "orders",
            &json!({"n": i, "retry": i % 2 == 0}),
        )
        .await;
    }
    for _ in 0..3 {
        publish(&http, &callee, "drops", &json!({"x": 1})).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = loop {
        let state = seen(&http, &callee).await;
        let ticks = state["ticks"].as_u64().unwrap_or(0);
        if state["orders"].as_array().map_or(0, Vec::len) == 5 && state["drops"] == 3 && ticks >= 2
        {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "not everything arrived: {state}\n{}",
            callee.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut ns: Vec<i64> = state["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["data"]["n"].as_i64().expect("n"))
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, [0, 1, 2, 3, 4], "each order exactly once: {state}");
    let attempts = state["attempts"].as_object().expect("attempts");
    let twice = attempts.values().filter(|a| *a == 2).count();
    assert_eq!(twice, 3, "the three retried events came twice: {state}");
    assert!(
        state["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .all(|o| o["topic"] == "orders")
    );
    // Dropped events are not redelivered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seen(&http, &callee).await["drops"], 3);

    let metadata: Value = http
        .get(callee.url("/v1.0/metadata"))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("metadata json");
    assert_eq!(
        metadata["appConnectionProperties"]["protocol"], "grpc",
        "{metadata}"
    );
    let topics: Vec<&str> = metadata["subscriptions"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["topic"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        topics.contains(&"orders") && topics.contains(&"drops"),
        "{metadata}"
    );
}
