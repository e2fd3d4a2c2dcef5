//! Certificate renewal on a short TTL (4 s, renewed every 2 s) while calls keep flowing: every
//! call succeeds, both sidecars renew several times, and a new handshake gets a new certificate.

use super::*;
use tandem_sidecar::testing::echo_app::EchoApp;

const ROTATED: &str = "dapr_runtime_mtls_workload_cert_rotated_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewal_under_load_fails_no_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app = EchoApp::start().await;
    let short = |id: &str| mtls_sidecar(id, &data).arg("--mtls-cert-ttl").arg("4s");
    let b = short("b").app_port(app.port).start();
    let a = short("a").start();
    b.wait_ready(Duration::from_secs(30));
    let probe = valid_cert(&data, &SpiffeId::new("public", "default", "probe"));
    let first = raw_request(
        b.internal_port,
        true,
        Some(probe),
        "GET /x HTTP/1.1\r\ndapr-callee-app-id: b",
    )
    .await
    .server_cert
    .expect("b's certificate");

    let http = client();
    let (mut calls, mut failures) = (0u32, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = http
            .post(a.url(&format!("/v1.0/invoke/b/method/call/{calls}")))
            .body("x")
            .send()
            .await;
        match response {
            Ok(r) if r.status().as_u16() == 200 => {}
            Ok(r) => failures.push(format!("status {}", r.status())),
            Err(e) => failures.push(e.to_string()),
        }
        calls += 1;
        if calls % 50 == 0 {
            let rotated_a = metric(&a, ROTATED, &[]).await;
            let rotated_b = metric(&b, ROTATED, &[]).await;
            if calls >= 300 && rotated_a >= 3.0 && rotated_b >= 3.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "renewals a={rotated_a} b={rotated_b} after {calls} calls; log:\n{}",
                b.log()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {failures:?}",
        failures.len()
    );
    assert_eq!(
        app.seen().len(),
        calls as usize + 1,
        "every call and the probe"
    );
    assert_eq!(
        metric(
            &a,
            "dapr_runtime_mtls_workload_cert_rotated_fail_total",
            &[]
        )
        .await,
        0.0
    );

    let probe = valid_cert(&data, &SpiffeId::new("public", "default", "probe"));
    let later = raw_request(
        b.internal_port,
        true,
        Some(probe),
        "GET /x HTTP/1.1\r\ndapr-callee-app-id: b",
    )
    .await
    .server_cert
    .expect("b's certificate");
    assert_ne!(first, later, "a new handshake gets the renewed certificate");
    assert_eq!(app.seen().len(), calls as usize + 2);
    eprintln!("renewal: {calls} calls, 0 failed");
}
