//! Bindings through a real sidecar process: the output API (`/v1.0/bindings/{name}`) with
//! `bindings.localstorage` and `bindings.http` against real peers, and input delivery of
//! `bindings.cron` events to an app, gated by the OPTIONS probe or `direction: input`.

mod common;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use common::{client, json_of};
use http_body_util::BodyExt;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// (method, path, body) of every request an app received.
type Calls = Arc<Mutex<Vec<(String, String, String)>>>;

/// Serves `router`-less recording: answers OPTIONS 200 on `/tick` and `/forced`, 404 on
/// `/refused`, and 200 `{"ok":true}` to every POST.
async fn recording_app(calls: Calls) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().fallback(move |req: Request| {
        let calls = calls.clone();
        async move {
            let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            calls.lock().unwrap_or_else(|p| p.into_inner()).push((
                method.clone(),
                path.clone(),
                body,
            ));
            match (method.as_str(), path.as_str()) {
                ("OPTIONS", "/refused") => http::StatusCode::NOT_FOUND.into_response(),
                ("OPTIONS", _) => http::StatusCode::OK.into_response(),
                ("POST", "/echo") => axum::Json(json!({"ok": true})).into_response(),
                _ => http::StatusCode::OK.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn count(calls: &Calls, method: &str, path: &str) -> usize {
    calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(m, p, _)| m == method && p == path)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn output_bindings_through_the_api() {
    let calls: Calls = Arc::default();
    let peer = recording_app(calls.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    let files = dir.path().join("files");
    let manifests = [
        Component::test("files", "bindings.localstorage")
            .with_metadata("rootPath", &files.display().to_string()),
        Component::test("web", "bindings.http")
            .with_metadata("url", &format!("http://127.0.0.1:{peer}")),
    ];
    let yaml: Vec<String> = manifests.iter().map(common::manifest).collect();
    common::write_component(&res, "bindings.yaml", &yaml.join("---\n"));
    let s = SidecarBuilder::new(BIN, "shop", dir.path())
        .resources(&res)
        .start();
    s.wait_outbound_ready(Duration::from_secs(30));
    let c = client();
    let url = s.url("/v1.0/bindings/files");

    // create: the data arrives as JSON; the file name comes back as metadata.
    let r = c
        .post(&url)
        .json(&json!({"operation": "create", "data": {"a": 1}, "metadata": {"fileName": "x.json"}}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["metadata.filename"], "x.json");
    assert_eq!(
        std::fs::read_to_string(files.join("x.json")).expect("written"),
        r#"{"a":1}"#
    );
    let r = c
        .put(&url)
        .json(&json!({"operation": "get", "metadata": {"fileName": "x.json"}}))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(json_of(r).await, json!({"a": 1}));
    let r = c
        .post(&url)
        .json(&json!({"operation": "delete", "metadata": {"fileName": "x.json"}}))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
    assert!(!files.join("x.json").exists());

    // Escaping the root, an unknown operation, an unknown binding: 500 ERR_INVOKE_OUTPUT_BINDING.
    for (target, body) in [
        (
            &url,
            json!({"operation": "get", "metadata": {"fileName": "../../etc/passwd"}}),
        ),
        (&url, json!({"operation": "explode"})),
        (&s.url("/v1.0/bindings/nope"), json!({"operation": "get"})),
    ] {
        let r = c.post(target).json(&body).send().await.expect("call");
        assert_eq!(r.status().as_u16(), 500, "{body}");
        let err = json_of(r).await;
        assert_eq!(err["errorCode"], "ERR_INVOKE_OUTPUT_BINDING", "{err}");
    }
    // Not JSON, or metadata that is not string to string: 400 ERR_MALFORMED_REQUEST.
    for body in [
        "{not json",
        r#"{"operation":"get","metadata":{"n":1}}"#,
        "[1]",
    ] {
        let r = c
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("call");
        assert_eq!(r.status().as_u16(), 400, "{body}");
        assert_eq!(json_of(r).await["errorCode"], "ERR_MALFORMED_REQUEST");
    }

    // bindings.http: POST to the peer with a path; status and headers come back as metadata.
    let r = c
        .post(s.url("/v1.0/bindings/web"))
        .json(&json!({"operation": "post", "data": {"q": "tea"}, "metadata": {"path": "/echo"}}))
        .send()
        .await
        .expect("http binding");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["metadata.statuscode"], "200");
    assert_eq!(json_of(r).await, json!({"ok": true}));
    let got = calls.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        got.iter()
            .any(|(m, p, b)| m == "POST" && p == "/echo" && b == r#"{"q":"tea"}"#),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cron_events_reach_the_app_that_accepts_them() {
    let calls: Calls = Arc::default();
    let app = recording_app(calls.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    let manifests = [
        Component::test("tick", "bindings.cron").with_metadata("schedule", "@every 1s"),
        // The app 404s the probe: never started.
        Component::test("refused", "bindings.cron").with_metadata("schedule", "@every 1s"),
        // direction: input skips the probe; events go to the given route.
        Component::test("forced", "bindings.cron")
            .with_metadata("schedule", "@every 1s")
            .with_metadata("direction", "input")
            .with_metadata("route", "/elsewhere"),
    ];
    let yaml: Vec<String> = manifests.iter().map(common::manifest).collect();
    common::write_component(&res, "cron.yaml", &yaml.join("---\n"));
    let s = SidecarBuilder::new(BIN, "clock", dir.path())
        .resources(&res)
        .app_port(app)
        .start();
    s.wait_ready(Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&calls, "POST", "/tick") < 2 || count(&calls, "POST", "/elsewhere") < 2 {
        assert!(
            Instant::now() < deadline,
            "cron events did not arrive: {:?}\n{}",
            calls.lock().unwrap_or_else(|p| p.into_inner()),
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&calls, "OPTIONS", "/tick"), 1, "probed once");
    assert_eq!(count(&calls, "OPTIONS", "/refused"), 1, "probed once");
    assert_eq!(
        count(&calls, "OPTIONS", "/elsewhere"),
        0,
        "direction input: no probe"
    );
    assert_eq!(
        count(&calls, "POST", "/refused"),
        0,
        "refused binding never delivers"
    );
    let metrics = client()
        .get(format!("http://127.0.0.1:{}/metrics", s.metrics_port))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("dapr_component_input_binding_count")
                && l.contains(r#"component="tick""#)
                && l.contains(r#"success="true""#)),
        "{metrics}"
    );
}
