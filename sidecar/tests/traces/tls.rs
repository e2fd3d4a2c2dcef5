//! OTLP over TLS: `otel.isSecure: true` exports to an `https` collector, trusted through
//! `OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE` as daprd's exporter reads it. The receiver serves a
//! certificate from a CA the test makes; a sidecar told to trust that CA delivers its spans over
//! gRPC and over HTTP, one that is not delivers nothing, and its requests do not suffer for it.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};

/// A CA (its PEM at `ca.pem`) and a server certificate for 127.0.0.1 (`cert.pem`, `key.pem`).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("ca").pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let cert = leaf.signed_by(&key, &issuer).expect("signed");
    let paths = ["ca.pem", "cert.pem", "key.pem"].map(|n| dir.join(n));
    for (path, pem) in paths.iter().zip([ca_pem, cert.pem(), key.serialize_pem()]) {
        std::fs::write(path, pem).expect("write pem");
    }
    let [ca, cert, key] = paths;
    (ca, cert, key)
}

fn secure(port: u16, protocol: &str) -> String {
    format!(
        "{{samplingRate: '1', otel: {{endpointAddress: '127.0.0.1:{port}', protocol: {protocol}, isSecure: true}}}}"
    )
}

/// `n` metadata calls under `trace`; each must answer 200. Returns the slowest.
async fn calls(sc: &Sidecar, trace: &str, n: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..n {
        let started = std::time::Instant::now();
        let response = client()
            .get(sc.url("/v1.0/metadata"))
            .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
            .send()
            .await
            .expect("metadata");
        assert_eq!(response.status().as_u16(), 200);
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

const GRPC_TRUSTED: &str = "0000000000000000000000000000000a";
const HTTP_TRUSTED: &str = "0000000000000000000000000000000b";
const GRPC_UNTRUSTED: &str = "0000000000000000000000000000000c";
const HTTP_UNTRUSTED: &str = "0000000000000000000000000000000d";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn otlp_over_tls_reaches_a_trusted_collector_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificates(dir.path());
    let receiver = Receiver::otlp_tls(&cert, &key);
    let (grpc_port, http_port) = (receiver.ports[0], receiver.ports[1]);
    let grpc_cfg = config(dir.path(), "grpc", &secure(grpc_port, "grpc"));
    let http_cfg = config(dir.path(), "http", &secure(http_port, "http"));
    let ca = ca.to_str().expect("utf-8 path");

    let mut trusted = [
        sidecar(dir.path(), "tls-grpc", &grpc_cfg, None)
            .env("OTEL_EXPORTER_OTLP_CERTIFICATE", ca)
            .start(),
        sidecar(dir.path(), "tls-http", &http_cfg, None)
            .env("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", ca)
            .start(),
    ];
    let mut untrusted = [
        sidecar(dir.path(), "plain-grpc", &grpc_cfg, None).start(),
        sidecar(dir.path(), "plain-http", &http_cfg, None).start(),
    ];
    for sc in trusted.iter().chain(&untrusted) {
        sc.wait_ready(WAIT);
    }
    calls(&trusted[0], GRPC_TRUSTED, 1).await;
    calls(&trusted[1], HTTP_TRUSTED, 1).await;
    // An untrusted collector fails every export; the requests must not notice.
    for (sc, trace) in untrusted.iter().zip([GRPC_UNTRUSTED, HTTP_UNTRUSTED]) {
        let slowest = calls(sc, trace, 50).await;
        assert!(
            slowest < Duration::from_secs(1),
            "{} slowest call {slowest:?}",
            sc.app_id
        );
    }

    let spans = receiver
        .wait_for(WAIT, |s| {
            !in_trace(s, GRPC_TRUSTED).is_empty() && !in_trace(s, HTTP_TRUSTED).is_empty()
        })
        .await;
    for (trace, service, transport) in [
        (GRPC_TRUSTED, "tls-grpc", "grpc+tls"),
        (HTTP_TRUSTED, "tls-http", "http+tls"),
    ] {
        let spans = in_trace(&spans, trace);
        let span = find(&spans, service, SERVER);
        assert_eq!(span["transport"], transport);
        assert_eq!(str_of(span, "name"), "/v1.0/metadata");
        assert_eq!(str_of(span, "parentSpanId"), "b7ad6b7169203331");
        assert_eq!(span["status"], STATUS_OK);
    }

    // Stopping flushes what each sidecar holds: the untrusted ones still deliver nothing, and
    // a failing flush does not hold up the shutdown.
    for sc in untrusted.iter_mut().chain(trusted.iter_mut()) {
        stop(sc);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spans = receiver.spans();
    for trace in [GRPC_UNTRUSTED, HTTP_UNTRUSTED] {
        assert!(
            in_trace(&spans, trace).is_empty(),
            "{trace} crossed an untrusted TLS link"
        );
    }
}
