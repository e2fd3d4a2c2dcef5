//! TLS towards the app for `--app-protocol https` and `grpcs`. As daprd does, the sidecar
//! encrypts the hop but does not check the app's certificate: the app is its own pod or process
//! on the same host, and its certificate is usually self-signed or issued for a public name that
//! loopback does not carry. The handshake signatures are still verified (a certificate whose key
//! the server does not hold fails), TLS 1.2 is the floor, and ALPN says which HTTP the app gets.

use crate::security::identity::provider;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The app's certificate is accepted as presented (daprd: `InsecureSkipVerify`).
#[derive(Debug)]
struct AppCertificateNotChecked;

impl ServerCertVerifier for AppCertificateNotChecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration for the app: TLS 1.2 or 1.3, the app's certificate not checked, and
/// `alpn` offered (`http/1.1` for an HTTPS app, `h2` for a gRPC one).
pub fn app_client_config(alpn: &[&[u8]]) -> Result<rustls::ClientConfig, Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AppCertificateNotChecked))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Connects to a gRPC app over TLS whatever the URI's scheme says. tonic's own TLS cannot skip
/// the certificate check, and its connector refuses `https://` without it, so the channel is
/// built on `http://` and this connector adds the TLS.
#[derive(Clone)]
pub struct GrpcsConnector {
    tls: TlsConnector,
    connect_timeout: Duration,
}

impl GrpcsConnector {
    pub fn new(connect_timeout: Duration) -> Result<GrpcsConnector, Error> {
        let config = app_client_config(&[b"h2"])?;
        Ok(GrpcsConnector {
            tls: TlsConnector::from(Arc::new(config)),
            connect_timeout,
        })
    }
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TokioIo<TlsStream<TcpStream>>>> + Send>>;

impl tower::Service<http::Uri> for GrpcsConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = self.tls.clone();
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
            let host = uri
                .host()
                .ok_or_else(|| invalid("the app URI has no host"))?;
            let port = uri
                .port_u16()
                .ok_or_else(|| invalid("the app URI has no port"))?;
            let bare = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let name = ServerName::try_from(bare.clone())
                .map_err(|e| invalid(&format!("the app host {host:?}: {e}")))?;
            let connect = async {
                let tcp = TcpStream::connect((bare.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                tls.connect(name, tcp).await
            };
            let stream = tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting to the app"))??;
            Ok(TokioIo::new(stream))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_offers_the_alpn_it_is_given() {
        let config = app_client_config(&[b"h2"]).expect("config");
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
        let config = app_client_config(&[b"http/1.1"]).expect("config");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[tokio::test]
    async fn a_uri_without_a_port_is_an_error_not_a_panic() {
        use tower::Service;
        let mut connector = GrpcsConnector::new(Duration::from_secs(1)).expect("connector");
        let uri: http::Uri = "http://127.0.0.1".parse().expect("uri");
        let error = connector.call(uri).await.expect_err("an error");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
