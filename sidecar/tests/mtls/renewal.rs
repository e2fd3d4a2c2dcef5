//! Certificate renewal on a short TTL (4 s, renewed every 2 s) while calls keep flowing: every
//! call succeeds, both sidecars renew several times, and a new handshake gets a new certificate.

use super::*;
use tandem_sidecar::testing::echo_app::EchoApp;

const ROTATED: &str = "dapr_runtime_mtls_workload_cert_rotated_total";

/// The certificate app `b` serves on its internal port to a new handshake (made with a valid
/// client certificate signed by the CA in `data`).
async fn served_certificate(data: &std::path::Path, port: u16) -> CertificateDer<'static> {
    let probe = valid_cert(data, &SpiffeId::new("public", "default", "probe"));
    raw_request(
        port,
        true,
        Some(probe),
        "GET /x HTTP/1.1\r\ndapr-callee-app-id: b",
    )
    .await
    .server_cert
    .expect("b's certificate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewal_under_load_fails_no_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app = EchoApp::start().await;
    let short = |id: &str| mtls_sidecar(id, &data).arg("--mtls-cert-ttl").arg("4s");
    let b = short("b").app_port(app.port).start();
    let a = short("a").start();
    b.wait_ready(Duration::from_secs(30));
    let first = served_certificate(&data, b.internal_port).await;

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

    let later = served_certificate(&data, b.internal_port).await;
    assert_ne!(first, later, "a new handshake gets the renewed certificate");
    assert_eq!(app.seen().len(), calls as usize + 2);
    eprintln!("renewal: {calls} calls, 0 failed");
}

/// Writes `contents` to `path` atomically (readers see the old or the new file, whole).
fn replace_file(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("test-tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// Calls from `a` to `b` until both have renewed `more` more times; returns (calls, failures).
async fn call_through_renewals(a: &Sidecar, b: &Sidecar, more: f64) -> (u32, Vec<String>) {
    let goal_a = metric(a, ROTATED, &[]).await + more;
    let goal_b = metric(b, ROTATED, &[]).await + more;
    let http = client();
    let (mut calls, mut failures) = (0u32, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = http
            .post(a.url("/v1.0/invoke/b/method/rotate"))
            .body("x")
            .send()
            .await;
        match response {
            Ok(r) if r.status().as_u16() == 200 => {}
            Ok(r) => failures.push(format!("status {}", r.status())),
            Err(e) => failures.push(e.to_string()),
        }
        calls += 1;
        if calls % 20 == 0
            && metric(a, ROTATED, &[]).await >= goal_a
            && metric(b, ROTATED, &[]).await >= goal_b
        {
            return (calls, failures);
        }
        assert!(Instant::now() < deadline, "no renewals; log:\n{}", b.log());
    }
}

/// Dapr's zero-downtime rotation: add the new root to the bundle, switch the CA, drop the old
/// root; calls keep flowing and none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trust_anchor_rotation_fails_no_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mtls = data.join("mtls");
    let app = EchoApp::start().await;
    let short = |id: &str| mtls_sidecar(id, &data).arg("--mtls-cert-ttl").arg("4s");
    let b = short("b").app_port(app.port).start();
    let a = short("a").start();
    b.wait_ready(Duration::from_secs(30));
    let old_ca = std::fs::read(mtls.join("ca.pem")).expect("the old CA");
    let old_root = std::fs::read(mtls.join("trust-bundle.pem")).expect("the old bundle");
    let new_dir = dir.path().join("new-ca");
    let new_ca = LocalCa::ensure(&new_dir).expect("a new CA");
    let new_root = std::fs::read(new_dir.join("trust-bundle.pem")).expect("the new root");
    let mut total = (0, Vec::new());
    let mut tally = |(calls, failures): (u32, Vec<String>)| {
        total.0 += calls;
        total.1.extend(failures);
    };

    // 1. Both roots trusted.
    replace_file(
        &mtls.join("trust-bundle.pem"),
        &[old_root.clone(), new_root.clone()].concat(),
    );
    tally(call_through_renewals(&a, &b, 2.0).await);
    // 2. The new CA signs.
    replace_file(
        &mtls.join("ca.pem"),
        &std::fs::read(new_dir.join("ca.pem")).expect("new CA"),
    );
    tally(call_through_renewals(&a, &b, 2.0).await);
    // 3. Only the new root.
    replace_file(&mtls.join("trust-bundle.pem"), &new_root);
    tally(call_through_renewals(&a, &b, 2.0).await);

    let (calls, failures) = total;
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {failures:?}",
        failures.len()
    );
    let b_cert = served_certificate(&data, b.internal_port).await;
    let mut only_new = rustls::RootCertStore::empty();
    only_new.add(new_ca.certificate().clone()).expect("root");
    let parsed = rustls::server::ParsedCertificate::try_from(&b_cert).expect("parse");
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &only_new,
        &[],
        UnixTime::now(),
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all,
    )
    .expect("b's certificate comes from the new CA");
    // A certificate of the retired CA is refused now.
    let old_dir = dir.path().join("old-ca");
    std::fs::create_dir_all(&old_dir).expect("dir");
    std::fs::write(old_dir.join("ca.pem"), &old_ca).expect("old CA");
    std::fs::write(old_dir.join("trust-bundle.pem"), &old_root).expect("old root");
    let now = SystemTime::now();
    let stale = cert_from(
        &old_dir,
        &SpiffeId::new("public", "default", "stale"),
        now - Duration::from_secs(60),
        now + Duration::from_secs(3600),
    );
    let refused = raw_request(
        b.internal_port,
        true,
        Some(stale),
        "GET /x HTTP/1.1\r\ndapr-callee-app-id: b",
    )
    .await;
    assert_eq!(
        refused.status, None,
        "the retired root is no longer trusted"
    );
    eprintln!("rotation: {calls} calls, 0 failed");
}
