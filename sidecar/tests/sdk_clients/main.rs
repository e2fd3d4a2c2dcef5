//! The official Dapr SDKs as real clients of real sidecar processes: `@dapr/dapr` (npm, HTTP mode)
//! runs `tests/sdk/js/client.mjs`, and `dapr` (PyPI) runs `tests/sdk/python/invoke.py` (HTTP) and
//! `tests/sdk/python/grpc_client.py` (its gRPC `DaprClient`). The scripts hold the checks and exit
//! non-zero on the first failure; this file starts the sidecars and apps around them.
//!
//! The SDKs are installed by `scripts/test.sh` (`ensure_sdk_clients` in `scripts/lib/deps.sh`),
//! which exports `TANDEM_SDK_JS_DIR` and `TANDEM_SDK_PYTHON`. Without them these tests fail.

mod actors;
#[path = "../common/mod.rs"]
mod common;
mod grpc_app;
mod stream_subscription;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::echo_app::EchoApp;
use tandem_sidecar::testing::free_port;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// An environment variable exported by `ensure_sdk_clients`; its absence is a failure, not a skip.
fn sdk_env(name: &str) -> PathBuf {
    match std::env::var_os(name) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!(
            "{name} is not set: the SDK client tests need the official Dapr SDKs. Run them with \
             `scripts/test.sh` (or `source scripts/lib/deps.sh; root=$PWD; ensure_sdk_clients` first)"
        ),
    }
}

fn write_components(dir: &Path) -> PathBuf {
    resources(
        dir,
        &[
            Component::test("statestore", "state.in-memory"),
            Component::test("envsecrets", "secretstores.local.env"),
        ],
    )
}

/// Writes `components` into `dir/resources`, one file each.
fn resources(dir: &Path, components: &[Component]) -> PathBuf {
    let res = dir.join("resources");
    for (i, component) in components.iter().enumerate() {
        common::write_component(&res, &format!("c{i}.yaml"), &common::manifest(component));
    }
    res
}

/// A process killed when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the variables through which a developer's own Dapr setup could redirect the SDKs.
fn isolate(cmd: &mut Command) {
    for var in [
        "DAPR_HTTP_ENDPOINT",
        "DAPR_GRPC_ENDPOINT",
        "DAPR_RUNTIME_HOST",
        "DAPR_API_TOKEN",
        "DAPR_API_METHOD_INVOCATION_PROTOCOL",
        "DAPR_HTTP_PORT",
        "DAPR_GRPC_PORT",
        "APP_ID",
        "APP_PORT",
    ] {
        cmd.env_remove(var);
    }
}

/// What a finished script printed.
struct Outcome {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to completion (killing it after `SCRIPT_TIMEOUT`), echoing its output.
fn run_script(mut cmd: Command, what: &str) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for script") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {SCRIPT_TIMEOUT:?}; output so far:\n{}\n{}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let outcome = Outcome {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    println!("--- {what} stdout ---\n{}", outcome.stdout);
    println!("--- {what} stderr ---\n{}", outcome.stderr);
    outcome
}

fn assert_passed(outcome: &Outcome, what: &str, sidecars: &[&Sidecar]) {
    if outcome.status.success() {
        return;
    }
    let logs: String = sidecars
        .iter()
        .map(|s| {
            format!(
                "--- sidecar {} log (tail) ---\n{}\n",
                s.app_id,
                tail(&s.log(), 60)
            )
        })
        .collect();
    panic!(
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}\n{logs}",
        outcome.status, outcome.stdout, outcome.stderr
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `@dapr/dapr` over HTTP: start, health, metadata get/set, state (save, get, bulk, delete with
/// etags, TTL metadata, transactions), secrets, and invocation of a node app behind a second
/// sidecar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_http_client() {
    let js_dir = sdk_env("TANDEM_SDK_JS_DIR");
    assert!(
        js_dir
            .join("node_modules/@dapr/dapr/package.json")
            .is_file(),
        "@dapr/dapr is not installed in {}: run scripts/test.sh (ensure_sdk_clients runs `npm ci` there)",
        js_dir.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let resources = write_components(dir.path());

    // The callee app is served by client.mjs itself, on a port chosen here.
    let callee_port = free_port();
    let callee = SidecarBuilder::new(BIN, "js-callee", &data)
        .app_port(callee_port)
        .start();
    let caller = SidecarBuilder::new(BIN, "js-caller", &data)
        .resources(&resources)
        .env("TEST_SECRET_1", "secret_val_1")
        .start();

    let mut cmd = Command::new("node");
    isolate(&mut cmd);
    cmd.arg("client.mjs")
        .current_dir(&js_dir)
        .env("DAPR_HTTP_PORT", caller.http_port.to_string())
        .env("DAPR_GRPC_PORT", free_port().to_string())
        .env("TANDEM_APP_ID", &caller.app_id)
        .env("TANDEM_CALLEE_APP_ID", &callee.app_id)
        .env("TANDEM_CALLEE_PORT", callee_port.to_string())
        .env("TANDEM_SECRET_NAME", "TEST_SECRET_1")
        .env("TANDEM_SECRET_VALUE", "secret_val_1");
    let outcome = tokio::task::spawn_blocking(move || run_script(cmd, "node client.mjs"))
        .await
        .expect("script runner");
    assert_passed(
        &outcome,
        "the @dapr/dapr scenario (tests/sdk/js/client.mjs)",
        &[&caller, &callee],
    );
    assert!(
        outcome.stdout.contains("all @dapr/dapr checks passed"),
        "the scenario did not finish"
    );
}

/// `dapr` (PyPI): `DaprClient().invoke_method(...)` over HTTP through two sidecars to the echo
/// app, with an API token on the caller's sidecar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_invoke_method() {
    let python = sdk_env("TANDEM_SDK_PYTHON");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/python/invoke.py");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let token = "py-api-token";

    let app = EchoApp::start().await;
    let callee = SidecarBuilder::new(BIN, "py-callee", &data)
        .app_port(app.port)
        .start();
    callee.wait_ready(Duration::from_secs(30));
    let caller = SidecarBuilder::new(BIN, "py-caller", &data)
        .env("DAPR_API_TOKEN", token)
        .start();

    let mut cmd = Command::new(&python);
    isolate(&mut cmd);
    cmd.arg(&script)
        .env("DAPR_HTTP_PORT", caller.http_port.to_string())
        // Never used: invoke_method goes over HTTP, and the gRPC channel is opened lazily.
        .env("DAPR_GRPC_PORT", free_port().to_string())
        .env("DAPR_API_TOKEN", token)
        .env("DAPR_HEALTH_TIMEOUT", "30")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("TANDEM_APP_ID", &caller.app_id)
        .env("TANDEM_CALLEE_APP_ID", &callee.app_id);
    let outcome = tokio::task::spawn_blocking(move || run_script(cmd, "python invoke.py"))
        .await
        .expect("script runner");
    assert_passed(
        &outcome,
        "the dapr (PyPI) scenario (tests/sdk/python/invoke.py)",
        &[&caller, &callee],
    );
    assert!(
        outcome.stdout.contains("all dapr (python) checks passed"),
        "the scenario did not finish"
    );

    // What reached the app: each call once (no retries), the rejected and unroutable ones never,
    // and never the caller's API token.
    let seen = app.seen();
    let calls: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.uri))
        .collect();
    assert_eq!(
        calls,
        [
            "POST /orders/42?q=1&tag=v-1.2",
            "PUT /notes/7",
            "GET /items/9",
            "DELETE /items/9",
            "GET /default-verb",
            "POST /teapot",
            "GET /after-token",
        ]
    );
    for s in &seen {
        assert!(
            s.headers.get("dapr-api-token").is_none(),
            "the api token reached the app: {s:?}"
        );
        assert_eq!(s.headers["dapr-caller-app-id"], "py-caller");
    }
}

/// `@dapr/dapr`'s `DaprServer` subscribes through its sidecar and receives what the SDK's
/// `DaprClient` publishes through another sidecar (shared Redis Streams pubsub, JSON and raw
/// payload, one by one and with `subscribeBulk`), answers the client's invocation, and the same
/// client drives an output binding (`bindings.localstorage`) — over HTTP, or over gRPC with
/// `DaprServer` as a gRPC app.
async fn js_sdk_pubsub_server_and_bindings(protocol: &str) {
    let js_dir = sdk_env("TANDEM_SDK_JS_DIR");
    let redis = tandem_sidecar::testing::RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let files = dir.path().join("files");
    let resources = dir.path().join("resources");
    std::fs::create_dir_all(&resources).expect("resources dir");
    std::fs::write(
        resources.join("pubsub.yaml"),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: pubsub\nspec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: {}\n",
            redis.addr()
        ),
    )
    .expect("write pubsub.yaml");
    std::fs::write(
        resources.join("files.yaml"),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: files\nspec:\n  type: bindings.localstorage\n  version: v1\n  metadata:\n  - name: rootPath\n    value: {}\n",
            files.display()
        ),
    )
    .expect("write files.yaml");
    let app_port = free_port();
    let subscriber = SidecarBuilder::new(BIN, "js-subscriber", &data)
        .app_port(app_port)
        .arg("--app-protocol")
        .arg(protocol)
        .resources(&resources)
        .start();
    let publisher = SidecarBuilder::new(BIN, "js-publisher", &data)
        .resources(&resources)
        .start();
    let mut cmd = Command::new("node");
    isolate(&mut cmd);
    cmd.arg("pubsub.mjs")
        .current_dir(&js_dir)
        .env("TANDEM_PROTOCOL", protocol)
        .env("TANDEM_SUB_HTTP_PORT", subscriber.http_port.to_string())
        .env("TANDEM_SUB_GRPC_PORT", subscriber.grpc_port.to_string())
        .env("TANDEM_SUB_APP_PORT", app_port.to_string())
        .env("TANDEM_PUB_HTTP_PORT", publisher.http_port.to_string())
        .env("TANDEM_PUB_GRPC_PORT", publisher.grpc_port.to_string())
        .env("TANDEM_FILES_ROOT", &files);
    let what = format!("node pubsub.mjs ({protocol})");
    let outcome = tokio::task::spawn_blocking(move || run_script(cmd, &what))
        .await
        .expect("script runner");
    assert_passed(
        &outcome,
        "the @dapr/dapr pub/sub scenario (tests/sdk/js/pubsub.mjs)",
        &[&subscriber, &publisher],
    );
    assert!(
        outcome
            .stdout
            .contains("all @dapr/dapr pub/sub and binding checks passed"),
        "the scenario did not finish"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_pubsub_server_and_bindings_over_http() {
    js_sdk_pubsub_server_and_bindings("http").await;
}

/// The same scenario in `CommunicationProtocolEnum.GRPC` mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_pubsub_server_and_bindings_over_grpc() {
    js_sdk_pubsub_server_and_bindings("grpc").await;
}

/// `dapr` (PyPI): the gRPC `DaprClient` — state with ETags (a stale one raises ABORTED), an
/// unknown store, publish_event (delivered to the script's own app), get_secret, invoke_binding,
/// get/set_metadata and an RPC Tandem does not serve — with an API token on the sidecar. What
/// the SDK saved over gRPC then reads back byte for byte over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_grpc_client() {
    let python = sdk_env("TANDEM_SDK_PYTHON");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/python/grpc_client.py");
    let dir = tempfile::tempdir().expect("tempdir");
    let resources = write_components(dir.path());
    let files = dir.path().join("files");
    std::fs::write(
        resources.join("more.yaml"),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: pubsub}}\nspec: {{type: pubsub.in-memory, version: v1}}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: files}}\nspec:\n  type: bindings.localstorage\n  version: v1\n  metadata:\n  - {{name: rootPath, value: '{}'}}\n",
            files.display()
        ),
    )
    .expect("write more.yaml");
    let token = "py-grpc-token";
    let app_port = free_port();
    let sidecar = SidecarBuilder::new(BIN, "py-grpc", &dir.path().join("data"))
        .app_port(app_port)
        .resources(&resources)
        .env("DAPR_API_TOKEN", token)
        .env("TANDEM_PY_SECRET", "py-secret-value")
        .start();

    let mut cmd = Command::new(&python);
    isolate(&mut cmd);
    cmd.arg(&script)
        .env("DAPR_HTTP_PORT", sidecar.http_port.to_string())
        .env("DAPR_GRPC_PORT", sidecar.grpc_port.to_string())
        .env("DAPR_API_TOKEN", token)
        .env("DAPR_HEALTH_TIMEOUT", "30")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("TANDEM_APP_ID", &sidecar.app_id)
        .env("TANDEM_APP_PORT", app_port.to_string())
        .env("TANDEM_FILES_ROOT", &files)
        .env("TANDEM_SECRET_NAME", "TANDEM_PY_SECRET")
        .env("TANDEM_SECRET_VALUE", "py-secret-value");
    let outcome = tokio::task::spawn_blocking(move || run_script(cmd, "python grpc_client.py"))
        .await
        .expect("script runner");
    assert_passed(
        &outcome,
        "the dapr (PyPI) gRPC scenario (tests/sdk/python/grpc_client.py)",
        &[&sidecar],
    );
    assert!(
        outcome
            .stdout
            .contains("all dapr (python, gRPC) checks passed"),
        "the scenario did not finish"
    );
    let http = tandem_sidecar::http_client::builder()
        .build()
        .expect("HTTP client");
    let saved = http
        .get(sidecar.url("/v1.0/state/statestore/py-order"))
        .header("dapr-api-token", token)
        .send()
        .await
        .expect("GET over HTTP");
    assert_eq!(saved.status().as_u16(), 200);
    assert_eq!(&saved.bytes().await.expect("body")[..], br#"{"id":8}"#);
}
