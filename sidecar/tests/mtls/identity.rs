//! Invocation over mTLS, the caller's identity taken from its certificate, and the attack of
//! issue 15 (plaintext to the internal port with forged headers) refused.

use super::*;
use dapr::dapr::proto::common::v1::{HttpExtension, InvokeRequest, http_extension::Verb};
use dapr::dapr::proto::runtime::v1 as rt;
use rt::dapr_client::DaprClient;
use tandem_sidecar::testing::echo_app::EchoApp;

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invocation_works_over_mtls_on_http_and_grpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app = EchoApp::start().await;
    let b = mtls_sidecar("b", &data).app_port(app.port).start();
    let a = mtls_sidecar("a", &data).start();
    b.wait_ready(Duration::from_secs(30));

    let response = client()
        .post(a.url("/v1.0/invoke/b/method/orders/7?x=1"))
        .body("hello")
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status().as_u16(), 200, "{}", a.log());
    assert_eq!(response.text().await.expect("body"), "hello");

    let channel = tonic::transport::Endpoint::from_shared(a.grpc_endpoint())
        .expect("endpoint")
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("connect");
    let answer = DaprClient::new(channel)
        .invoke_service(rt::InvokeServiceRequest {
            id: "b".into(),
            message: Some(InvokeRequest {
                method: "grpc-path".into(),
                data: Some(prost_types::Any {
                    type_url: String::new(),
                    value: b"over grpc".to_vec(),
                }),
                content_type: "text/plain".into(),
                http_extension: Some(HttpExtension {
                    verb: Verb::Put as i32,
                    querystring: String::new(),
                }),
            }),
        })
        .await
        .expect("InvokeService over mTLS");
    assert_eq!(
        answer
            .into_inner()
            .data
            .map(|d| d.value)
            .unwrap_or_default(),
        b"over grpc"
    );

    let seen = app.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(header(&s.headers, "dapr-caller-app-id"), "a");
        assert_eq!(header(&s.headers, "dapr-caller-namespace"), "default");
    }
    let refused = metric(&b, "dapr_runtime_mtls_peer_refused_total", &[]).await;
    let handshakes_failed = metric(&a, "dapr_runtime_mtls_peer_refused_total", &[]).await;
    assert_eq!(
        (refused, handshakes_failed),
        (0.0, 0.0),
        "no refusals between good peers"
    );
    assert_eq!(metric(&a, "dapr_runtime_mtls_init_total", &[]).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_certificate_names_the_caller_not_the_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app = EchoApp::start().await;
    let b = mtls_sidecar("b", &data).app_port(app.port).start();
    b.wait_ready(Duration::from_secs(30));
    let cert = valid_cert(&data, &SpiffeId::new("public", "default", "c"));
    let answer = raw_request(
        b.internal_port,
        true,
        Some(cert),
        "POST /orders HTTP/1.1\r\ndapr-callee-app-id: b\r\ndapr-caller-app-id: trusted-admin\r\ndapr-caller-namespace: kube-system",
    )
    .await;
    assert_eq!(answer.status, Some(200), "{}", b.log());
    let seen = app.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(header(&seen[0].headers, "dapr-caller-app-id"), "c");
    assert_eq!(header(&seen[0].headers, "dapr-caller-namespace"), "default");
    let server_id = answer
        .server_cert
        .map(|c| SpiffeId::from_certificate(&c).expect("a SPIFFE ID"));
    assert_eq!(server_id, Some(SpiffeId::new("public", "default", "b")));
}

/// Issue 15's attack: a plain POST to the internal port with forged callee and caller, over
/// HTTP/1.1 and as an h2c preface, with the app token configured. Nothing reaches the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plaintext_to_the_internal_port_never_reaches_the_app() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app = EchoApp::start().await;
    let b = mtls_sidecar("victim", &data)
        .app_port(app.port)
        .env("APP_API_TOKEN", "app-secret")
        .env("DAPR_API_TOKEN", "api-secret")
        .start();
    b.wait_ready(Duration::from_secs(30));
    let before = metric(
        &b,
        "dapr_runtime_mtls_peer_refused_total",
        &[("reason", "not_tls")],
    )
    .await;
    let attack = "POST /admin/delete-everything HTTP/1.1\r\ndapr-callee-app-id: victim\r\ndapr-caller-app-id: trusted-admin";
    for _ in 0..3 {
        let answer = raw_request(b.internal_port, false, None, attack).await;
        assert_eq!(answer.status, None, "plaintext got an HTTP answer");
    }
    let h2c = raw_request(b.internal_port, false, None, "PRI * HTTP/2.0\r\n\r\nSM").await;
    assert_eq!(h2c.status, None);
    wait_metric(
        &b,
        "dapr_runtime_mtls_peer_refused_total",
        &[("side", "server"), ("reason", "not_tls")],
        before + 4.0,
        Duration::from_secs(10),
    )
    .await;
    assert!(app.seen().is_empty(), "the app was reached");
    let warnings = b
        .log()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("mTLS peer refused") && l.contains("not_tls"))
        .count();
    assert_eq!(
        warnings,
        1,
        "one warning per reason, not one per connection:\n{}",
        b.log()
    );
}
