//! Actors through real sidecar processes, each in front of a real HTTP actor app, sharing the
//! embedded SQLite actor state store in their data directory (so they place actors among
//! themselves with nothing else running).

mod grpc;
mod ttl;

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_sidecar::testing::actor_app::{ActorApp, ActorLog};
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");
const CONFIG: &str = r#"{"entities":["Counter","Other"],"actorIdleTimeout":"1h","drainOngoingCallTimeout":"5s",
    "reentrancy":{"enabled":true,"maxStackDepth":3}}"#;

fn client() -> reqwest::Client {
    tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// One host: an actor app and its sidecar.
struct Host {
    sidecar: Sidecar,
    _app: ActorApp,
}

async fn host(dir: &std::path::Path, label: &str, config: &str, log: &Arc<ActorLog>) -> Host {
    let app = ActorApp::start(label, config, log.clone()).await;
    let sidecar = SidecarBuilder::new(BIN, "counter", dir)
        .app_port(app.port)
        .start();
    app.set_sidecar(&sidecar.url(""));
    sidecar.wait_ready(Duration::from_secs(30));
    Host { sidecar, _app: app }
}

async fn call(sc: &Sidecar, verb: reqwest::Method, path: &str, body: &str) -> (u16, String) {
    let r = client()
        .request(verb, sc.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

fn code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["errorCode"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn methods_state_and_errors_on_one_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(ActorLog::default());
    let h = host(dir.path(), "h1", CONFIG, &log).await;
    let sc = &h.sidecar;
    use reqwest::Method as M;

    // Every verb reaches the app as PUT; body, content type and status pass through.
    for verb in [M::GET, M::POST, M::PUT, M::DELETE] {
        let r = client()
            .request(verb.clone(), sc.url("/v1.0/actors/Counter/a/method/echo"))
            .header("content-type", "text/plain")
            .body("hi")
            .send()
            .await
            .expect("echo");
        assert_eq!(r.status().as_u16(), 200, "{verb}");
        assert_eq!(r.headers()["x-seen-method"], "PUT");
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert!(
            r.headers().contains_key("x-reentrancy-id"),
            "reentrancy is on: the sidecar made an id"
        );
        assert_eq!(r.text().await.expect("body"), "hi");
    }
    // State: missing is 204; the counter's own writes land under Dapr's key layout.
    assert_eq!(
        call(sc, M::GET, "/v1.0/actors/Counter/a/state/count", "")
            .await
            .0,
        204
    );
    for want in 1..=3 {
        assert_eq!(
            call(sc, M::POST, "/v1.0/actors/Counter/a/method/increment", "").await,
            (200, want.to_string())
        );
    }
    assert_eq!(
        call(sc, M::GET, "/v1.0/actors/Counter/a/state/count", "").await,
        (200, "3".to_owned())
    );
    // A transaction for an actor not active here.
    let (status, body) = call(
        sc,
        M::POST,
        "/v1.0/actors/Counter/never/state",
        r#"[{"operation":"upsert","request":{"key":"k","value":1}}]"#,
    )
    .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "ERR_ACTOR_INSTANCE_MISSING"),
        "{body}"
    );
    let (status, body) = call(sc, M::POST, "/v1.0/actors/Counter/a/state", "not json").await;
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "ERR_MALFORMED_REQUEST"),
        "{body}"
    );
    // Method errors.
    let (status, body) = call(sc, M::POST, "/v1.0/actors/Counter/a/method/nope", "").await;
    assert_eq!(
        (status, code(&body).as_str()),
        (500, "ERR_ACTOR_INVOKE_METHOD"),
        "{body}"
    );
    let (status, body) = call(sc, M::POST, "/v1.0/actors/Counter/a/method/fail", "").await;
    assert_eq!(
        (status, code(&body).as_str()),
        (500, "ERR_ACTOR_INVOKE_METHOD")
    );
    assert!(body.contains("the method failed"), "{body}");
    let (status, body) = call(sc, M::POST, "/v1.0/actors/Counter/a/method/actor-error", "").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "an actor error"),
        "an actor error is relayed as the app sent it"
    );
    let (status, body) = call(sc, M::POST, "/v1.0/actors/Nobody/a/method/echo", "").await;
    assert_eq!(
        (status, code(&body).as_str()),
        (404, "ERR_ACTOR_NO_ADDRESS"),
        "{body}"
    );
    let (status, body) = call(sc, M::POST, "/v1.0/actors/Counter/a%7C%7Cb/method/echo", "").await;
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "ERR_BAD_REQUEST"),
        "{body}"
    );

    // Metadata: hosted types with active counts, and the store's ACTOR capability.
    let (_, meta) = call(sc, M::GET, "/v1.0/metadata", "").await;
    let meta: Value = serde_json::from_str(&meta).expect("metadata");
    let counter = meta["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .find(|a| a["type"] == "Counter")
        .cloned();
    assert_eq!(
        counter,
        Some(json!({"type": "Counter", "count": 1})),
        "{meta}"
    );
    assert_eq!(meta["actorRuntime"]["runtimeStatus"], "RUNNING");
    assert_eq!(meta["actorRuntime"]["hostReady"], true);
    let store = meta["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "statestore")
        .cloned()
        .expect("statestore");
    assert!(
        store["capabilities"]
            .as_array()
            .expect("caps")
            .contains(&json!("ACTOR")),
        "{store}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reentrancy_and_its_stack_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(ActorLog::default());
    let h = host(dir.path(), "h1", CONFIG, &log).await;
    // A → B → A: the nested call to A re-enters A's turn (without reentrancy it would deadlock).
    let nested = json!({"type":"Counter","id":"b","method":"call","body":{"type":"Counter","id":"a","method":"echo","body":"deep"}});
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(10),
        call(
            &h.sidecar,
            reqwest::Method::POST,
            "/v1.0/actors/Counter/a/method/call",
            &nested.to_string(),
        ),
    )
    .await
    .expect("A → B → A must not deadlock");
    assert_eq!((status, body.as_str()), (200, "\"deep\""));
    // Depth 3 allowed: A → A → A → A is one too many.
    let inner = json!({"type":"Counter","id":"a","method":"echo","body":"x"});
    let l2 = json!({"type":"Counter","id":"a","method":"call","body":inner});
    let l3 = json!({"type":"Counter","id":"a","method":"call","body":l2});
    let (status, body) = call(
        &h.sidecar,
        reqwest::Method::POST,
        "/v1.0/actors/Counter/a/method/call",
        &l3.to_string(),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("ERR_ACTOR_STACK_DEPTH"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reminders_timers_and_their_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(ActorLog::default());
    let h = host(dir.path(), "h1", CONFIG, &log).await;
    let sc = &h.sidecar;
    use reqwest::Method as M;
    let path = "/v1.0/actors/Counter/r/reminders/tick";
    assert_eq!(call(sc, M::GET, path, "").await.0, 404);
    let (status, body) = call(
        sc,
        M::PUT,
        path,
        r#"{"dueTime":"0s","period":"R3/PT0.3S","data":{"n":7}}"#,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(sc, M::GET, path, "").await;
    assert_eq!(status, 200);
    let got: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        got,
        json!({"actorID":"r","actorType":"Counter","data":{"n":7},"dueTime":"0s","period":"R3/PT0.3S"})
    );
    let (status, body) = call(sc, M::PUT, path, r#"{"dueTime":"1h","overwrite":false}"#).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (409, "ERR_ACTOR_REMINDER_ALREADY_EXISTS"),
        "{body}"
    );
    let (status, body) = call(
        sc,
        M::PUT,
        "/v1.0/actors/Counter/r/reminders/bad",
        r#"{"period":"sometimes"}"#,
    )
    .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "ERR_BAD_REQUEST"),
        "{body}"
    );
    // Three firings, then the record is gone; the callback carries the data.
    wait_until(Duration::from_secs(10), || log.reminder_count("tick") >= 3).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(log.reminder_count("tick"), 3);
    let first = log.reminders.lock().expect("log")[0].2.clone();
    let first: Value = serde_json::from_str(&first).expect("json");
    assert_eq!(first["data"], json!({"n":7}));
    assert_eq!(call(sc, M::GET, path, "").await.0, 404);
    // X-DaprReminderCancel ends a periodic reminder after one firing.
    assert_eq!(
        call(
            sc,
            M::PUT,
            "/v1.0/actors/Counter/r/reminders/cancel-me",
            r#"{"period":"200ms"}"#
        )
        .await
        .0,
        204
    );
    wait_until(Duration::from_secs(10), || {
        log.reminder_count("cancel-me") >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(log.reminder_count("cancel-me"), 1);
    // Delete stops a reminder.
    assert_eq!(
        call(
            sc,
            M::PUT,
            "/v1.0/actors/Counter/r/reminders/later",
            r#"{"dueTime":"2s"}"#
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(sc, M::DELETE, "/v1.0/actors/Counter/r/reminders/later", "")
            .await
            .0,
        204
    );
    // Timers fire until deleted.
    assert_eq!(
        call(
            sc,
            M::PUT,
            "/v1.0/actors/Counter/t/timers/beat",
            r#"{"dueTime":"0s","period":"100ms","callback":"cb"}"#
        )
        .await
        .0,
        204
    );
    let timers = |log: &ActorLog| log.timers.lock().expect("log").len();
    wait_until(Duration::from_secs(10), || timers(&log) >= 3).await;
    assert_eq!(
        call(sc, M::DELETE, "/v1.0/actors/Counter/t/timers/beat", "")
            .await
            .0,
        204
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = timers(&log);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(timers(&log), stopped, "a deleted timer fires no more");
    assert_eq!(log.reminder_count("later"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_sidecar_reaches_actors_hosted_elsewhere_and_cannot_remind_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(ActorLog::default());
    let h = host(dir.path(), "h1", CONFIG, &log).await;
    let client_sidecar = SidecarBuilder::new(BIN, "caller", dir.path()).start();
    client_sidecar.wait_ready(Duration::from_secs(30));
    let (status, body) = call(
        &client_sidecar,
        reqwest::Method::POST,
        "/v1.0/actors/Counter/x/method/increment",
        "",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "1"));
    let (status, body) = call(
        &client_sidecar,
        reqwest::Method::PUT,
        "/v1.0/actors/Counter/x/reminders/r",
        "{}",
    )
    .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (403, "ERR_ACTOR_REMINDER_NON_HOSTED"),
        "{body}"
    );
    assert_eq!(
        call(
            &h.sidecar,
            reqwest::Method::GET,
            "/v1.0/actors/Counter/x/state/count",
            ""
        )
        .await,
        (200, "1".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_actors_are_deactivated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(ActorLog::default());
    let h = host(
        dir.path(),
        "h1",
        r#"{"entities":["Counter"],"actorIdleTimeout":"500ms"}"#,
        &log,
    )
    .await;
    assert_eq!(
        call(
            &h.sidecar,
            reqwest::Method::POST,
            "/v1.0/actors/Counter/idle/method/echo",
            ""
        )
        .await
        .0,
        200
    );
    wait_until(Duration::from_secs(10), || {
        log.deactivated
            .lock()
            .expect("log")
            .contains(&"Counter/idle".to_owned())
    })
    .await;
}

pub async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
