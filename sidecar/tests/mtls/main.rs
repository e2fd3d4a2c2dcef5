//! mTLS between real sidecar processes (standalone, with the local CA in the shared data
//! directory): invocation over mTLS, refused peers (each counted by reason), identity taken
//! from the certificate, access-control policies, and certificate renewal under load.

mod acl;
mod actors;
mod api_access;
mod grpc_proxy;
mod identity;
mod refusals;
mod renewal;

use rcgen::KeyPair;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tandem_sidecar::security::ca::LocalCa;
use tandem_sidecar::security::spiffe::SpiffeId;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

pub fn client() -> reqwest::Client {
    tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A sidecar with `--enable-mtls` in `data`.
pub fn mtls_sidecar(app_id: &str, data: &Path) -> SidecarBuilder {
    SidecarBuilder::new(BIN, app_id, data).arg("--enable-mtls")
}

/// The sum of a metric's samples whose label set contains every `labels` pair.
pub async fn metric(sidecar: &Sidecar, name: &str, labels: &[(&str, &str)]) -> f64 {
    let url = format!("http://127.0.0.1:{}/metrics", sidecar.metrics_port);
    let text = client()
        .get(url)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Access-control outcomes counted by a sidecar: (allowed, blocked), app and global policies
/// together (Dapr's four `dapr_runtime_acl_*_total` counters).
pub async fn acl_outcomes(sidecar: &Sidecar) -> (f64, f64) {
    let mut counts = [0.0; 2];
    for (i, action) in ["allowed", "blocked"].into_iter().enumerate() {
        for policy in ["app", "global"] {
            let name = format!("dapr_runtime_acl_{policy}_policy_action_{action}_total");
            counts[i] += metric(sidecar, &name, &[]).await;
        }
    }
    (counts[0], counts[1])
}

/// Polls `metric` until it reaches `at_least`, or panics after `timeout`.
pub async fn wait_metric(
    sidecar: &Sidecar,
    name: &str,
    labels: &[(&str, &str)],
    at_least: f64,
    timeout: Duration,
) -> f64 {
    let deadline = Instant::now() + timeout;
    loop {
        let value = metric(sidecar, name, labels).await;
        if value >= at_least {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} stayed at {value}, below {at_least}; log:\n{}",
            sidecar.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client certificate for a raw TLS connection to an internal port.
pub struct ClientCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Signs a certificate for `id` with the CA in `ca_dir` (created when missing), valid over
/// `from..until`.
pub fn cert_from(ca_dir: &Path, id: &SpiffeId, from: SystemTime, until: SystemTime) -> ClientCert {
    let ca = LocalCa::ensure(ca_dir).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = ca.issue(id, &key, from, until).expect("certificate");
    ClientCert {
        chain: vec![cert],
        key: PrivateKeyDer::try_from(key.serialize_der()).expect("a PKCS#8 key"),
    }
}

/// A valid certificate for `id` from the sidecars' own CA.
pub fn valid_cert(data: &Path, id: &SpiffeId) -> ClientCert {
    let now = SystemTime::now();
    cert_from(
        &data.join("mtls"),
        id,
        now - Duration::from_secs(60),
        now + Duration::from_secs(3600),
    )
}

/// Accepts any server certificate: these tests look at what the *server* refuses.
#[derive(Debug)]
struct AnyServer;

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a raw request to an internal port got.
#[derive(Debug)]
pub struct RawAnswer {
    /// The status line's code, when an HTTP answer came at all.
    pub status: Option<u16>,
    /// The server's certificate (TLS only).
    pub server_cert: Option<CertificateDer<'static>>,
}

/// One HTTP/1.1 request to `port`, over TLS (with `cert`, or none) when `tls`, else plaintext.
pub async fn raw_request(port: u16, tls: bool, cert: Option<ClientCert>, head: &str) -> RawAnswer {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request =
        format!("{head}\r\nhost: internal\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    if !tls {
        let (status, _) = exchange(stream, &request).await;
        return RawAnswer {
            status,
            server_cert: None,
        };
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyServer));
    let mut config = match cert {
        Some(c) => builder
            .with_client_auth_cert(c.chain, c.key)
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let Ok(tls) = connector.connect(name, stream).await else {
        return RawAnswer {
            status: None,
            server_cert: None,
        };
    };
    let server_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned());
    let (status, _) = exchange(tls, &request).await;
    RawAnswer {
        status,
        server_cert,
    }
}

async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> (Option<u16>, String) {
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (None, String::new());
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = match read {
        Ok(_) => text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok()),
        Err(_) => None,
    };
    (status, text)
}
