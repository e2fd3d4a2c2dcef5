//! This sidecar's workload identity: a fresh key made in memory (it never touches disk), an SVID
//! for it from the CA, and the trust bundle, held together as one [`Material`] that TLS reads
//! at every handshake. [`Workload::renew`] replaces it at half-life (Dapr's `renewalDivisor`),
//! retrying on failure; open connections keep their session, new handshakes get the new one.

use super::ca::{BACKDATE, BUNDLE_FILE, CaError, LocalCa, read_bundle};
use super::metrics::SecurityMetrics;
use super::spiffe::SpiffeId;
use crate::swap::Swap;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Dapr retries a failed renewal every 10 s.
const RETRY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    Ca(#[from] CaError),
    #[error("generating a key: {0}")]
    Key(#[from] rcgen::Error),
    #[error("the trust bundle: {0}")]
    Bundle(String),
    #[error("TLS refused the certificate or key: {0}")]
    Tls(#[from] rustls::Error),
}

/// The key, certificate and trust anchors of one moment.
pub struct Material {
    pub key: Arc<CertifiedKey>,
    pub roots: Arc<RootCertStore>,
    pub client_verifier: Arc<dyn ClientCertVerifier>,
    pub issued: SystemTime,
    pub not_after: SystemTime,
}

/// The identity of this sidecar, renewed while it runs.
pub struct Workload {
    id: SpiffeId,
    /// The CA's directory: the CA and the bundle are read again at every issuance, so a
    /// rotated CA or bundle takes effect at the next renewal.
    ca_dir: PathBuf,
    ttl: Duration,
    current: Swap<Material>,
    metrics: SecurityMetrics,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Workload({})", self.id)
    }
}

/// ring, the provider every Tandem process installs.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Workload {
    /// Opens (or creates) the CA in `ca_dir` and issues the first SVID.
    pub fn start(
        id: SpiffeId,
        ca_dir: &Path,
        ttl: Duration,
        metrics: SecurityMetrics,
    ) -> Result<Arc<Workload>, IdentityError> {
        let first = LocalCa::ensure(ca_dir)
            .map_err(IdentityError::from)
            .and_then(|_| issue(ca_dir, &id, ttl));
        metrics.mtls_init(first.is_ok());
        let material = first?;
        Ok(Arc::new(Workload {
            id,
            ca_dir: ca_dir.to_owned(),
            ttl,
            current: Swap::new(material),
            metrics,
        }))
    }

    pub fn id(&self) -> &SpiffeId {
        &self.id
    }

    pub fn metrics(&self) -> &SecurityMetrics {
        &self.metrics
    }

    pub fn material(&self) -> Arc<Material> {
        self.current.current()
    }

    /// Renews at half-life until `stop`, retrying failures every 10 s (or sooner for TTLs so
    /// short that 10 s would let the certificate expire).
    pub async fn renew(self: Arc<Self>, stop: CancellationToken) {
        let retry = RETRY.min(self.ttl / 4);
        let mut at = renewal_time(&self.material());
        loop {
            let wait = at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            let me = self.clone();
            let renewed =
                tokio::task::spawn_blocking(move || issue(&me.ca_dir, &me.id, me.ttl)).await;
            match renewed {
                Ok(Ok(material)) => {
                    at = renewal_time(&material);
                    self.current.replace(Arc::new(material));
                    self.metrics.cert_rotated(true);
                    tracing::debug!(id = %self.id, "workload certificate renewed");
                }
                Ok(Err(e)) => {
                    self.metrics.cert_rotated(false);
                    tracing::warn!(id = %self.id, error = %e, ?retry, "renewing the workload certificate failed; retrying");
                    at = SystemTime::now() + retry;
                }
                Err(e) => {
                    self.metrics.cert_rotated(false);
                    tracing::warn!(error = %e, "the renewal task failed; retrying");
                    at = SystemTime::now() + retry;
                }
            }
        }
    }
}

/// Half-way between issue and expiry.
pub fn renewal_time(material: &Material) -> SystemTime {
    let life = material
        .not_after
        .duration_since(material.issued)
        .unwrap_or(Duration::ZERO);
    material.issued + life / 2
}

/// A fresh key, an SVID for it from the CA, and the trust bundle, as they are on disk now.
fn issue(ca_dir: &Path, id: &SpiffeId, ttl: Duration) -> Result<Material, IdentityError> {
    let ca = LocalCa::open(ca_dir)?;
    let provider = provider();
    let roots = read_bundle(&ca.dir().join(BUNDLE_FILE))?;
    if !roots.contains(ca.certificate()) {
        // Peers would refuse certificates of a CA they do not trust yet.
        return Err(IdentityError::Bundle(format!(
            "the CA in {} is not in {BUNDLE_FILE}: add its certificate to the bundle first",
            ca_dir.display()
        )));
    }
    let mut store = RootCertStore::empty();
    for root in roots {
        store
            .add(root)
            .map_err(|e| IdentityError::Bundle(e.to_string()))?;
    }
    let roots = Arc::new(store);
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| IdentityError::Bundle(e.to_string()))?;
    let key = rcgen::KeyPair::generate()?;
    let issued = SystemTime::now();
    let not_after = issued + ttl;
    let cert = ca.issue(id, &key, issued - BACKDATE, not_after)?;
    let private = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| IdentityError::Bundle(e.to_owned()))?;
    let certified = CertifiedKey::from_der(vec![cert], private, &provider)?;
    Ok(Material {
        key: Arc::new(certified),
        roots,
        client_verifier,
        issued,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_and_renews_at_half_life() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = prometheus::Registry::new();
        let metrics = SecurityMetrics::new(&registry).expect("metrics");
        let id = SpiffeId::new("public", "default", "a");
        let w = Workload::start(id.clone(), dir.path(), Duration::from_secs(100), metrics)
            .expect("identity");
        let m = w.material();
        let cert = m.key.end_entity_cert().expect("a certificate");
        assert_eq!(SpiffeId::from_certificate(cert), Ok(id));
        let half = renewal_time(&m)
            .duration_since(m.issued)
            .expect("after issue");
        assert_eq!(half, Duration::from_secs(50));
    }

    #[test]
    fn a_ca_missing_from_the_bundle_signs_nothing() {
        let (ours, other) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        LocalCa::ensure(ours.path()).expect("CA");
        LocalCa::ensure(other.path()).expect("another CA");
        std::fs::copy(
            other.path().join(BUNDLE_FILE),
            ours.path().join(BUNDLE_FILE),
        )
        .expect("replace the bundle");
        let metrics = SecurityMetrics::new(&prometheus::Registry::new()).expect("metrics");
        let id = SpiffeId::new("public", "default", "a");
        let refused = Workload::start(id, ours.path(), Duration::from_secs(100), metrics);
        assert!(
            matches!(refused, Err(IdentityError::Bundle(ref m)) if m.contains("not in")),
            "{:?}",
            refused.err()
        );
    }
}
