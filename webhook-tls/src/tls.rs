//! Serving: a rustls resolver whose certificate is swapped at runtime ([`ServingCert`]), the
//! `ServerConfig` around it, an HTTPS accept loop for an axum `Router` with graceful shutdown, and
//! the background [`refresh`] that re-runs [`crate::ensure`] and swaps in a renewed certificate.

use crate::certs::{Certificates, Sans};
use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// A TLS handshake that takes longer than this is dropped (slowloris).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may finish after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the serving certificate PEM holds no certificate")]
    NoCertificate,
    #[error("the serving key PEM cannot be read: {0}")]
    Key(#[source] rustls::pki_types::pem::Error),
    #[error("the serving certificate PEM cannot be read: {0}")]
    Cert(#[source] rustls::pki_types::pem::Error),
    #[error("rustls refused the key or configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("accepting connections: {0}")]
    Accept(#[source] std::io::Error),
}

/// The certificate rustls serves, replaceable while serving; also the current [`Certificates`]
/// (for caBundle writers) with a change notification.
#[derive(Debug)]
pub struct ServingCert {
    key: ArcSwap<CertifiedKey>,
    certs: tokio::sync::watch::Sender<Arc<Certificates>>,
}

impl ServingCert {
    pub fn new(certs: Certificates) -> Result<Arc<ServingCert>, Error> {
        let key = certified_key(&certs)?;
        let (sender, _) = tokio::sync::watch::channel(Arc::new(certs));
        Ok(Arc::new(ServingCert {
            key: ArcSwap::from_pointee(key),
            certs: sender,
        }))
    }

    /// Serves `certs` from the next handshake on; returns whether they differ from the current.
    pub fn replace(&self, certs: Certificates) -> Result<bool, Error> {
        if **self.certs.borrow() == certs {
            return Ok(false);
        }
        self.key.store(Arc::new(certified_key(&certs)?));
        self.certs.send_replace(Arc::new(certs));
        Ok(true)
    }

    pub fn current(&self) -> Arc<Certificates> {
        self.certs.borrow().clone()
    }

    /// Sees every change of the certificates (the CA in particular).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Certificates>> {
        self.certs.subscribe()
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key.load_full())
    }
}

fn certified_key(certs: &Certificates) -> Result<CertifiedKey, Error> {
    let chain = CertificateDer::pem_slice_iter(certs.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Cert)?;
    if chain.is_empty() {
        return Err(Error::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(certs.key_pem.as_bytes()).map_err(Error::Key)?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)?;
    Ok(CertifiedKey::new(chain, signing_key))
}

/// TLS 1.2/1.3 with ring, no client auth, ALPN h2 and http/1.1, the certificate from `cert`.
pub fn server_config(cert: Arc<ServingCert>) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS on `listener` until `shutdown`; then stops accepting, lets in-flight
/// requests finish (up to 10 s) and returns.
pub async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: axum::Router,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let connections = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: log and keep serving the others.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let shutdown = shutdown.clone();
        let span = tracing::debug_span!("connection", %peer);
        connections.spawn(
            async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let builder = auto::Builder::new(TokioExecutor::new());
                let connection = builder.serve_connection_with_upgrades(
                    TokioIo::new(tls),
                    TowerToHyperService::new(router),
                );
                tokio::pin!(connection);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    () = shutdown.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
            }
            .instrument(span),
        );
    }
    connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout");
    }
    Ok(())
}

/// Every `interval`, re-runs [`crate::ensure`] (which rotates when due) and swaps the served
/// certificate when the Secret's changed. Errors are logged and retried at the next tick.
pub async fn refresh(
    client: kube::Client,
    namespace: String,
    secret_name: String,
    sans: Sans,
    cert: Arc<ServingCert>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match crate::ensure(client.clone(), &namespace, &secret_name, &sans).await {
            Ok(certs) => match cert.replace(certs) {
                Ok(true) => tracing::info!("serving a renewed certificate"),
                Ok(false) => {}
                Err(error) => tracing::error!(%error, "the renewed certificate cannot be served"),
            },
            Err(error) => tracing::warn!(%error, "cannot refresh the serving certificate"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn certs(name: &str) -> Certificates {
        crate::certs::generate(&Sans::from_names([name, "127.0.0.1"]), SystemTime::now()).unwrap()
    }

    #[test]
    fn replace_reports_changes_only() {
        let first = certs("a");
        let cert = ServingCert::new(first.clone()).unwrap();
        let changes = cert.subscribe();
        assert!(!cert.replace(first).unwrap());
        assert!(!changes.has_changed().unwrap());
        let second = certs("b");
        assert!(cert.replace(second.clone()).unwrap());
        assert!(changes.has_changed().unwrap());
        assert_eq!(*cert.current(), second);
    }

    #[test]
    fn garbage_is_refused_and_the_old_cert_stays() {
        let first = certs("a");
        let cert = ServingCert::new(first.clone()).unwrap();
        let broken = Certificates {
            key_pem: "nope".into(),
            ..certs("b")
        };
        assert!(cert.replace(broken).is_err());
        assert_eq!(*cert.current(), first);
    }
}
