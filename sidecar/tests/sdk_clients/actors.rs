//! The Python SDK's actor runtime (`dapr[fastapi]`, `tests/sdk/python/actors.py`)
//! hosting `Counter` behind one sidecar, and its `ActorProxy` calling it through another: both
//! sidecars share the embedded SQLite actor state store in one data directory. The same with the
//! JS SDK (`@dapr/dapr`'s `DaprServer` actors and `ActorProxyBuilder`, `tests/sdk/js/actors.mjs`).

use super::{BIN, Killed, assert_passed, isolate, run_script, sdk_env};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tandem_sidecar::testing::free_port;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_actor_host_and_proxy() {
    let python = sdk_env("TANDEM_SDK_PYTHON");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/python/actors.py");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");

    // The sidecar asks the app for its actor configuration until it answers, so the app may
    // start after it (it needs the sidecar's port).
    let app_port = free_port();
    let host = SidecarBuilder::new(BIN, "py-actors", &data)
        .app_port(app_port)
        .start();
    let mut app = Command::new(&python);
    isolate(&mut app);
    app.arg(&script)
        .arg("host")
        .env("APP_PORT", app_port.to_string())
        .env("DAPR_HTTP_PORT", host.http_port.to_string())
        .env("DAPR_GRPC_PORT", host.grpc_port.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null());
    let _app = Killed(app.spawn().expect("start the python actor host"));
    host.wait_ready(Duration::from_secs(60));
    let caller = SidecarBuilder::new(BIN, "py-actor-client", &data).start();
    caller.wait_ready(Duration::from_secs(30));

    let mut cmd = Command::new(&python);
    isolate(&mut cmd);
    cmd.arg(&script)
        .arg("client")
        .env("DAPR_HTTP_PORT", caller.http_port.to_string())
        .env("DAPR_GRPC_PORT", caller.grpc_port.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    let outcome = tokio::task::spawn_blocking(move || run_script(cmd, "python actors.py client"))
        .await
        .expect("script runner");
    assert_passed(
        &outcome,
        "the dapr (PyPI) actor scenario (tests/sdk/python/actors.py)",
        &[&caller, &host],
    );
    assert!(
        outcome.stdout.contains("all dapr actor checks passed"),
        "the scenario did not finish"
    );

    // What the host's sidecar saw: the actor type registered from the SDK's /dapr/config.
    let metadata: serde_json::Value = tandem_sidecar::http_client::builder()
        .build()
        .expect("client")
        .get(host.url("/v1.0/metadata"))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("metadata json");
    let types: Vec<&str> = metadata["actors"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(types, ["Counter"], "{metadata}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_actor_host_and_proxy_builder() {
    let js_dir = sdk_env("TANDEM_SDK_JS_DIR");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app_port = free_port();
    let host = SidecarBuilder::new(BIN, "js-actors", &data)
        .app_port(app_port)
        .start();
    let mut app = Command::new("node");
    isolate(&mut app);
    app.arg("actors.mjs")
        .arg("host")
        .current_dir(&js_dir)
        .env("APP_PORT", app_port.to_string())
        .env("DAPR_HTTP_PORT", host.http_port.to_string())
        .stdin(Stdio::null());
    let _app = Killed(app.spawn().expect("start the node actor host"));
    host.wait_ready(Duration::from_secs(60));
    let caller = SidecarBuilder::new(BIN, "js-actor-client", &data).start();
    caller.wait_ready(Duration::from_secs(30));

    let mut cmd = Command::new("node");
    isolate(&mut cmd);
    cmd.arg("actors.mjs")
        .arg("client")
        .current_dir(&js_dir)
        .env("DAPR_HTTP_PORT", caller.http_port.to_string());
    let outcome = tokio::task::spawn_blocking(move || run_script(cmd, "node actors.mjs client"))
        .await
        .expect("script runner");
    assert_passed(
        &outcome,
        "the @dapr/dapr actor scenario (tests/sdk/js/actors.mjs)",
        &[&caller, &host],
    );
    assert!(
        outcome
            .stdout
            .contains("all @dapr/dapr actor checks passed"),
        "the scenario did not finish"
    );
}
