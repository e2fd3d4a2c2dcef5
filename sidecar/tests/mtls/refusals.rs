//! Bad peers, each refused and counted by reason: no client certificate, a certificate from
//! another CA, an expired one, one of another trust domain (server side), and a server whose
//! SPIFFE ID is not the app the caller meant (client side).

use super::*;
use tandem_sidecar::resolve::local::{Entry, register};
use tandem_sidecar::testing::echo_app::EchoApp;

const REFUSED: &str = "dapr_runtime_mtls_peer_refused_total";
const INVOKE_B: &str = "POST /orders HTTP/1.1\r\ndapr-callee-app-id: b";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_client_certificates_are_refused_by_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app = EchoApp::start().await;
    let b = mtls_sidecar("b", &data).app_port(app.port).start();
    b.wait_ready(Duration::from_secs(30));
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let mallory = SpiffeId::new("public", "default", "mallory");
    let cases: Vec<(&str, Option<ClientCert>)> = vec![
        ("no_client_cert", None),
        (
            "unknown_ca",
            Some(cert_from(
                &dir.path().join("other-ca"),
                &mallory,
                now - hour,
                now + hour,
            )),
        ),
        (
            "expired",
            Some(cert_from(
                &data.join("mtls"),
                &mallory,
                now - 2 * hour,
                now - hour,
            )),
        ),
        (
            "trust_domain",
            Some(valid_cert(
                &data,
                &SpiffeId::new("elsewhere", "default", "mallory"),
            )),
        ),
    ];
    for (reason, cert) in cases {
        let labels = [("side", "server"), ("reason", reason)];
        let before = metric(&b, REFUSED, &labels).await;
        let answer = raw_request(b.internal_port, true, cert, INVOKE_B).await;
        assert_eq!(answer.status, None, "{reason}: the request was answered");
        wait_metric(&b, REFUSED, &labels, before + 1.0, Duration::from_secs(10)).await;
    }
    assert!(app.seen().is_empty(), "a refused peer reached the app");
    // The same request with a good certificate goes through: the refusals were about the peers.
    let good = valid_cert(&data, &mallory);
    let answer = raw_request(b.internal_port, true, Some(good), INVOKE_B).await;
    assert_eq!(answer.status, Some(200));
    assert_eq!(app.seen().len(), 1);
}

/// App `b` resolves to the sidecar of app `c`: the caller refuses `c`'s certificate, and `c`'s
/// app never sees the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_that_is_not_the_target_app_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app = EchoApp::start().await;
    let c = mtls_sidecar("c", &data).app_port(app.port).start();
    c.wait_ready(Duration::from_secs(30));
    let a = mtls_sidecar("a", &data).start();
    let _impostor = register(
        &data.join("registry"),
        &Entry {
            app_id: "b".into(),
            namespace: None,
            address: std::net::SocketAddr::from(([127, 0, 0, 1], c.internal_port)),
            pid: c.pid(),
        },
    )
    .expect("register b at c's address");
    let response = client()
        .post(a.url("/v1.0/invoke/b/method/orders"))
        .body("for b only")
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status().as_u16(), 500);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["errorCode"], "ERR_DIRECT_INVOKE");
    let refused = wait_metric(
        &a,
        REFUSED,
        &[("side", "client"), ("reason", "id_mismatch")],
        1.0,
        Duration::from_secs(10),
    )
    .await;
    assert!(refused >= 1.0);
    assert!(app.seen().is_empty(), "c's app got a call meant for b");
    // Calling c by its own name works.
    let response = client()
        .post(a.url("/v1.0/invoke/c/method/orders"))
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status().as_u16(), 200, "{}", a.log());
    assert_eq!(app.seen().len(), 1);
}
