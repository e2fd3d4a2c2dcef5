//! Start-up and shutdown of real sidecar processes: flag and manifest errors, component init
//! retries and failures, readiness, the `run` mode, graceful drain, metrics and the public port.

mod common;

use common::{client, json_of, write_component};
use std::process::Command;
use std::time::{Duration, Instant};
use tandem_sidecar::testing::echo_app::EchoApp;
use tandem_sidecar::testing::free_port;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// Runs the binary to completion; returns (exit code, stderr).
fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run tandem-sidecar");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_flags_exit_64_with_one_line_naming_flag_and_value() {
    let port = free_port().to_string();
    for (args, needles) in [
        (vec!["--app-port", "http"], vec!["--app-port", "http"]),
        (
            vec!["--dapr-http-port", "70000"],
            vec!["--dapr-http-port", "70000"],
        ),
        (vec!["--app-id", "a.b"], vec!["--app-id", "a.b"]),
        (
            vec!["--max-body-size", "lots"],
            vec!["--max-body-size", "lots"],
        ),
        (vec!["--log-level", "chatty"], vec!["--log-level", "chatty"]),
        (vec!["--no-such-flag"], vec!["--no-such-flag"]),
    ] {
        let mut all = args.clone();
        all.extend(["--dapr-public-port", port.as_str()]);
        let started = Instant::now();
        let (code, stderr) = run_to_exit(&all);
        assert_eq!(code, Some(64), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?} printed more than one line:\n{stderr}"
        );
        for n in needles {
            assert!(stderr.contains(n), "{args:?}: {stderr:?} does not name {n}");
        }
        // Promptly: validation comes before any start-up work (a hang would block `run_to_exit`).
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    // Nothing was bound: the port is still free.
    std::net::TcpListener::bind(("0.0.0.0", port.parse::<u16>().expect("port")))
        .expect("port still free");
}

#[test]
fn bad_manifests_exit_64_naming_file_component_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    write_component(
        &res,
        "cache.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: cache}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - {name: redisHost, value: 'localhost:1'}\n  - {name: redisDB, value: 'zero'}\n",
    );
    let ports: Vec<String> = (0..4).map(|_| free_port().to_string()).collect();
    let base = [
        "--dapr-http-port",
        &ports[0],
        "--dapr-public-port",
        &ports[1],
        "--dapr-internal-grpc-port",
        &ports[2],
        "--metrics-port",
        &ports[3],
    ];
    let (code, stderr) = run_to_exit(
        &[
            &base[..],
            &[
                "--app-id",
                "x",
                "--resources-path",
                res.to_str().expect("utf8"),
                "--data-dir",
                dir.path().to_str().expect("utf8"),
            ],
        ]
        .concat(),
    );
    assert_eq!(code, Some(64), "{stderr}");
    for needle in ["cache.yaml", "\"cache\"", "redisDB", "zero"] {
        assert!(stderr.contains(needle), "{stderr} does not name {needle}");
    }
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: c}\nspec: {tracing: {samplingRate: '7'}}\n").expect("write");
    let (code, stderr) = run_to_exit(
        &[
            &base[..],
            &[
                "--app-id",
                "x",
                "--config",
                cfg.to_str().expect("utf8"),
                "--data-dir",
                dir.path().to_str().expect("utf8"),
            ],
        ]
        .concat(),
    );
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("samplingRate") && stderr.contains('7'),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ignored_failures_are_reported_in_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    write_component(
        &res,
        "a.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: broken}\nspec: {type: state.cassandra, version: v1, ignoreErrors: true}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: unreachable}\nspec:\n  type: state.redis\n  version: v1\n  ignoreErrors: true\n  initTimeout: 300ms\n  metadata:\n  - {name: redisHost, value: '127.0.0.1:1'}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: statestore}\nspec: {type: state.in-memory, version: v1}\n",
    );
    let s = SidecarBuilder::new(BIN, "x", dir.path())
        .resources(&res)
        .start();
    let md = json_of(
        client()
            .get(s.url("/v1.0/metadata"))
            .send()
            .await
            .expect("metadata"),
    )
    .await;
    let failed: Vec<&str> = md["failedComponents"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        failed.contains(&"broken") && failed.contains(&"unreachable"),
        "{md}"
    );
    let ok: Vec<&str> = md["components"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(ok, vec!["statestore"]);
    let r = client()
        .get(s.url("/v1.0/state/unreachable/k"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 500);
}

#[test]
fn a_component_that_never_comes_up_stops_the_sidecar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    write_component(
        &res,
        "redis.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: cache}\nspec:\n  type: state.redis\n  version: v1\n  initTimeout: 700ms\n  metadata:\n  - {name: redisHost, value: '127.0.0.1:1'}\n",
    );
    let mut s = SidecarBuilder::new(BIN, "x", dir.path())
        .resources(&res)
        .spawn();
    // Not ready while retrying.
    s.wait_status("/v1.0/healthz/outbound", 500, Duration::from_secs(30));
    let status = s
        .wait_exit(Duration::from_secs(30))
        .expect("the sidecar must exit");
    assert_eq!(status.code(), Some(1));
    let log = s.log();
    assert!(log.contains("cache") && log.contains("attempts"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthz_waits_for_the_app_but_outbound_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app_port = free_port();
    let s = SidecarBuilder::new(BIN, "late", dir.path())
        .app_port(app_port)
        .start();
    let r = client()
        .get(s.url("/v1.0/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status().as_u16(), 500);
    assert_eq!(json_of(r).await["errorCode"], "ERR_HEALTH_NOT_READY");
    let r = client()
        .get(s.public_url("/v1.0/healthz/outbound"))
        .send()
        .await
        .expect("outbound");
    assert_eq!(r.status().as_u16(), 204);
    let _app = std::net::TcpListener::bind(("127.0.0.1", app_port)).expect("app listens late");
    s.wait_ready(Duration::from_secs(30));
    let r = client()
        .get(s.url("/v1.0/healthz?appid=someone-else"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(json_of(r).await["errorCode"], "ERR_HEALTH_APPID_NOT_MATCH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn public_port_serves_only_health_and_metadata_and_metrics_are_scraped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SidecarBuilder::new(BIN, "pub", dir.path())
        .env("DAPR_API_TOKEN", "t")
        .start();
    let c = client();
    assert_eq!(
        c.get(s.public_url("/v1.0/metadata"))
            .send()
            .await
            .expect("md")
            .status()
            .as_u16(),
        200,
        "no token on the public port"
    );
    let r = c
        .get(s.public_url("/v1.0/state/statestore/k"))
        .send()
        .await
        .expect("state");
    assert_eq!(r.status().as_u16(), 404);
    assert!(json_of(r).await["errorCode"].is_string());
    for _ in 0..3 {
        c.get(s.url("/v1.0/state/statestore/k"))
            .header("dapr-api-token", "t")
            .send()
            .await
            .expect("get");
    }
    let text = c
        .get(format!("http://127.0.0.1:{}/", s.metrics_port))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let counted = text.lines().any(|l| {
        l.starts_with("dapr_http_server_request_count{")
            && [
                "app_id=\"pub\"",
                "method=\"GET\"",
                // Low cardinality by default: no path without increasedCardinality.
                "path=\"\"",
                "status=\"204\"",
            ]
            .iter()
            .all(|p| l.contains(p))
            // the three reads and the readiness probe's one 204 from /v1.0/healthz
            && l.ends_with(" 4")
    });
    assert!(counted, "{text}");
    assert!(
        text.contains("dapr_component_state_count")
            && text.contains("process_resident_memory_bytes")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_in_flight_requests_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = EchoApp::start().await;
    let mut a = SidecarBuilder::new(BIN, "a", dir.path()).start();
    let b = SidecarBuilder::new(BIN, "b", dir.path())
        .app_port(app.port)
        .start();
    b.wait_ready(Duration::from_secs(30));
    let slow = tokio::spawn(
        client()
            .get(a.url("/v1.0/invoke/b/method/slow"))
            .header("x-delay-ms", "1500")
            .send(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.seen().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the slow call never reached the app"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.signal(nix::sys::signal::Signal::SIGTERM);
    let r = slow
        .await
        .expect("join")
        .expect("in-flight call must finish");
    assert_eq!(r.status().as_u16(), 200);
    let status = a.wait_exit(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0));
    // Within the grace period by the sidecar's own clock: it did not have to stop anyway.
    assert!(!a.log().contains("after the grace period"), "{}", a.log());
    assert!(
        !dir.path()
            .join(format!("registry/a.{}.json", a.pid()))
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_api_stops_the_sidecar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = SidecarBuilder::new(BIN, "x", dir.path()).start();
    let r = client()
        .post(s.url("/v1.0/shutdown"))
        .send()
        .await
        .expect("shutdown");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        s.wait_exit(Duration::from_secs(30)).expect("exits").code(),
        Some(0)
    );
}

#[test]
fn run_mode_starts_the_app_with_dapr_env_and_exits_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_file = dir.path().join("env.txt");
    let script = format!(
        "echo \"$DAPR_HTTP_PORT $APP_ID $DAPR_GRPC_PORT\" > {}; exit 3",
        out_file.display()
    );
    let (http, grpc) = (free_port(), free_port());
    let cmd = SidecarBuilder::new(BIN, "runner", dir.path()).command([
        http,
        free_port(),
        free_port(),
        free_port(),
        grpc,
    ]);
    // `run` must come first: rebuild the argument list with it in front.
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let status = Command::new(BIN)
        .arg("run")
        .args(&args)
        .args(["--", "sh", "-c", &script])
        .status()
        .expect("run");
    assert_eq!(
        status.code(),
        Some(3),
        "the sidecar exits with the app's code"
    );
    let seen = std::fs::read_to_string(&out_file).expect("app wrote its env");
    assert_eq!(seen.trim(), format!("{http} runner {grpc}"));
}

#[test]
fn run_mode_forwards_sigterm_to_the_app() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("got-term");
    let script = format!(
        "trap 'touch {}; exit 0' TERM; while true; do sleep 0.05; done",
        marker.display()
    );
    let status = run_then_terminate(dir.path(), &script);
    assert_eq!(status.code(), Some(0));
    assert!(marker.exists(), "the app did not get SIGTERM");
}

/// An app without a SIGTERM handler dies of the forwarded signal: the sidecar exits 0 as
/// `dapr run` does (not 143). `exec`, so the signal reaches the sleeping process itself.
#[test]
fn run_mode_exits_cleanly_when_the_forwarded_sigterm_ends_the_app() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = run_then_terminate(dir.path(), "exec sleep 600");
    assert_eq!(status.code(), Some(0), "exited {status:?}");
}

/// `tandem-sidecar run -- sh -c <script>`: waits until the sidecar is up, sends it SIGTERM, and
/// returns how it exited.
fn run_then_terminate(dir: &std::path::Path, script: &str) -> std::process::ExitStatus {
    let ports = [
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    ];
    let args: Vec<String> = SidecarBuilder::new(BIN, "runner", dir)
        .command(ports)
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut child = Command::new(BIN)
        .arg("run")
        .args(&args)
        .args(["--", "sh", "-c", script])
        .spawn()
        .expect("run");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tandem_sidecar::testing::http_status(ports[0], "/v1.0/healthz/outbound") != Some(204) {
        assert!(Instant::now() < deadline, "sidecar never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    child.wait().expect("wait")
}

#[test]
fn slow_headers_are_cut_off() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SidecarBuilder::new(BIN, "slow", dir.path()).start();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", s.http_port)).expect("connect");
    stream
        .write_all(b"GET /v1.0/metadata HTTP/1.1\r\nHost: x\r\n")
        .expect("partial headers");
    // Far longer than the sidecar's header timeout (10 s): the sidecar ends the exchange, not us.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = stream.read_to_end(&mut buf);
    let waited = started.elapsed();
    let ours = read.as_ref().is_err_and(|e| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    });
    assert!(!ours, "a slow client held the connection for {waited:?}");
    // Meanwhile the sidecar still serves everyone else.
    assert_eq!(
        tandem_sidecar::testing::http_status(s.http_port, "/v1.0/healthz/outbound"),
        Some(204)
    );
}

#[test]
fn the_internal_port_listens_on_loopback_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SidecarBuilder::new(BIN, "local", dir.path()).start();
    // Port numbers are hex in /proc/net/tcp; 0100007F is 127.0.0.1, state 0A is LISTEN.
    let tcp = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let port = format!(":{:04X}", s.internal_port);
    let listeners: Vec<&str> = tcp
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|local| local.ends_with(&port))
        })
        .filter(|l| l.split_whitespace().nth(3) == Some("0A"))
        .collect();
    assert!(
        !listeners.is_empty(),
        "nothing listens on the internal port"
    );
    for l in listeners {
        let local = l.split_whitespace().nth(1).unwrap_or_default();
        assert!(
            local.starts_with("0100007F:"),
            "internal port bound beyond loopback: {local}"
        );
    }
}
