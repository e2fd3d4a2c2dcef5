//! The `tandem-operator` binary itself: flags, the admin port, the sidecar API over TLS from its
//! CA, and a clean exit on SIGTERM.

use crate::support::{REACT, api, env_with_crds, wait_ready};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Instant;
use tandem_crds::Component;
use tandem_envtest::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_tandem-operator");

/// `GET path` over HTTP/1.0: the status code and the body, or `None` when nothing answers.
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

#[tokio::test]
async fn the_binary_serves_its_admin_port_reconciles_and_stops_on_sigterm() {
    let env = env_with_crds().await;
    let admin = free_port();
    let sidecar_api = free_port();
    let mut child = Command::new(BINARY)
        .args([
            "--admin-addr",
            &admin.to_string(),
            "--sidecar-api-addr",
            &sidecar_api.to_string(),
            "--namespace",
            env.namespace(),
            "--leader-election-namespace",
            env.namespace(),
            // The conversion test alone points subscriptions.dapr.io at a webhook.
            "--enable-conversion-webhook=false",
        ])
        .env("KUBECONFIG", env.control_plane().kubeconfig())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tandem-operator");

    let live = eventually("/healthz", REACT, || get(admin, "/healthz")).await;
    assert_eq!(live, (200, "ok".to_owned()));
    eventually("/readyz 200", REACT, || async {
        get(admin, "/readyz")
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    // The sidecar API is up too, over TLS from the CA (on by default), and wants a token; the
    // anchors are published for the injector; plain HTTP gets no answer.
    let resources = format!(
        "/v1/namespaces/{}/pods/p/resources?appId=a",
        env.namespace()
    );
    let maps: Api<ConfigMap> = Api::namespaced(env.client(), env.namespace());
    let anchors = eventually("the trust anchors ConfigMap", REACT, || async {
        maps.get_opt("tandem-trust-bundle")
            .await
            .ok()??
            .data?
            .remove("ca.crt")
    })
    .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(anchors.as_bytes()).expect("PEM"))
        .resolve("tandem-api", sidecar_api)
        .build()
        .expect("client");
    let url = format!("https://tandem-api:{}{resources}", sidecar_api.port());
    let refused = eventually("the sidecar API", REACT, || async {
        let response = tls.get(&url).send().await.ok()?;
        Some((response.status().as_u16(), response.text().await.ok()?))
    })
    .await;
    assert_eq!(refused.0, 401, "{}", refused.1);
    assert!(refused.1.contains("ERR_UNAUTHENTICATED"), "{}", refused.1);
    assert_eq!(
        get(sidecar_api, &resources).await,
        None,
        "plain HTTP answered"
    );

    let component = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: cache}\nspec: {type: state.in-memory, version: v1}\n";
    env.kubectl_apply(component).await.expect("apply");
    wait_ready(&api::<Component>(&env), "cache", "True", "Valid").await;
    let (status, metrics) = get(admin, "/metrics").await.expect("/metrics");
    assert_eq!(status, 200);
    for series in [
        "tandem_operator_reconciles_total{kind=\"component\"}",
        "tandem_operator_reconcile_duration_seconds_bucket{kind=\"component\",le=\"0.5\"}",
        "tandem_operator_leader 1",
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }

    let pid = child.id().expect("running") as i32;
    let stopping = Instant::now();
    kill(Pid::from_raw(pid), Signal::SIGTERM).expect("SIGTERM");
    let exit = tokio::time::timeout(REACT, child.wait())
        .await
        .expect("it exits in time")
        .expect("wait");
    eprintln!("exited {exit} {:?} after SIGTERM", stopping.elapsed());
    assert!(exit.success(), "{exit}");
    assert!(
        get(admin, "/healthz").await.is_none(),
        "the admin port is closed"
    );
}

#[tokio::test]
async fn a_bad_flag_exits_64_before_binding_anything() {
    let output = Command::new(BINARY)
        .args(["--admin-addr", "not-an-address"])
        .output()
        .await
        .expect("run");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--admin-addr"), "{stderr}");
    let help = Command::new(BINARY)
        .arg("--help")
        .output()
        .await
        .expect("run");
    assert_eq!(help.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&help.stdout);
    let timings = Command::new(BINARY)
        .args(["--leader-election-renew-deadline", "20"])
        .output()
        .await
        .expect("run");
    assert_eq!(timings.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&timings.stderr);
    assert!(stderr.contains("renew deadline"), "{stderr}");
    for flag in [
        "--admin-addr",
        "--namespace",
        "--log-as-json",
        "--leader-elect",
        "--leader-election-namespace",
        "--sidecar-api-addr",
        "--sidecar-token-audience",
        "--enable-conversion-webhook",
        "--webhook-addr",
        "--webhook-url",
        "--webhook-tls-san",
        "--control-plane-trust-domain",
        "--trust-bundle-configmap",
    ] {
        assert!(stdout.contains(flag), "{flag} in\n{stdout}");
    }
}
