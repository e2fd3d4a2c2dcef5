//! Serving over TLS: a client that trusts the CA gets answers over h2 and HTTP/1.1, a swapped
//! certificate is served from the next connection on, and shutdown returns.

#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

use axum::routing::get;
use std::sync::Arc;
use std::time::SystemTime;
use tandem_webhook_tls::{Certificates, Sans, ServingCert, certs, serve, server_config};
use tokio_util::sync::CancellationToken;

fn client(ca_pem: &str, http2: bool) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

fn generate() -> Certificates {
    certs::generate(
        &Sans::from_names(["localhost", "127.0.0.1"]),
        SystemTime::now(),
    )
    .unwrap()
}

#[tokio::test]
async fn serves_and_swaps_certificates() {
    use rustls::pki_types::pem::PemObject;
    let first = generate();
    let cert = ServingCert::new(first.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/hello",
        listener.local_addr().unwrap().port()
    );
    let router = axum::Router::new().route("/hello", get(|| async { "hello" }));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        server_config(cert.clone()).unwrap(),
        router,
        shutdown.clone(),
    ));

    for http2 in [true, false] {
        let response = client(&first.ca_pem, http2).get(&url).send().await.unwrap();
        let expected = if http2 {
            reqwest::Version::HTTP_2
        } else {
            reqwest::Version::HTTP_11
        };
        assert_eq!(response.version(), expected);
        assert_eq!(response.text().await.unwrap(), "hello");
    }

    let second = generate();
    assert!(cert.replace(second.clone()).unwrap());
    assert!(
        client(&first.ca_pem, true).get(&url).send().await.is_err(),
        "the old CA no longer verifies"
    );
    let response = client(&second.ca_pem, true).get(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "hello");
    let _ = rustls::pki_types::CertificateDer::from_pem_slice(second.cert_pem.as_bytes()).unwrap();

    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(30), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
