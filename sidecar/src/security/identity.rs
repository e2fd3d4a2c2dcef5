//! This sidecar's workload identity: a fresh key made in memory (it never touches disk), an SVID
//! for it from the [`Issuer`] (the local CA, or the control plane's), and the trust bundle, held
//! together as one [`Material`] that TLS reads at every handshake. [`Workload::renew`] replaces it
//! at half-life (Dapr's `renewalDivisor`), retrying on failure; open connections keep their
//! session, new handshakes get the new one.

use super::ca::CaError;
use super::issuer::Issuer;
use super::metrics::SecurityMetrics;
use super::spiffe::SpiffeId;
use crate::control_plane::ControlPlaneError;
use crate::resiliency::Backoff;
use crate::swap::Swap;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
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
    #[error("{0}")]
    ControlPlane(#[from] ControlPlaneError),
    #[error("the control plane's certificate: {0}")]
    Certificate(String),
    #[error("the control plane signed {got}, not this sidecar's identity {want}")]
    Mismatch { got: String, want: SpiffeId },
}

impl IdentityError {
    /// Worth asking again at start: the operator may be starting, or a network blip.
    pub fn is_transient(&self) -> bool {
        matches!(self, IdentityError::ControlPlane(e) if e.is_transient())
    }
}

/// How long the first certificate may keep failing transiently before start-up gives up.
const START_WAIT: Duration = Duration::from_secs(30);
const START_BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));

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
    /// Asked again at every renewal, so a rotated CA or bundle takes effect then.
    issuer: Issuer,
    /// The lifetime asked of the local CA (the control plane's CA decides its own).
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
    /// Prepares the issuer (the local CA is created when missing) and gets the first SVID,
    /// asking the control plane again while its failures are transient.
    pub async fn start(
        id: SpiffeId,
        issuer: Issuer,
        ttl: Duration,
        metrics: SecurityMetrics,
    ) -> Result<Arc<Workload>, IdentityError> {
        let first = first_material(&issuer, &id, ttl).await;
        metrics.mtls_init(first.is_ok());
        let material = first?;
        Ok(Arc::new(Workload {
            id,
            issuer,
            ttl,
            current: Swap::new(material),
            metrics,
        }))
    }

    pub fn issuer(&self) -> &Issuer {
        &self.issuer
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

    /// Renews at half-life until `stop`, retrying failures every 10 s (or sooner for
    /// certificates so short that 10 s would let them expire).
    pub async fn renew(self: Arc<Self>, stop: CancellationToken) {
        let mut at = renewal_time(&self.material());
        loop {
            let wait = at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match self.issuer.issue(&self.id, self.ttl).await {
                Ok(material) => {
                    at = renewal_time(&material);
                    self.current.replace(Arc::new(material));
                    self.metrics.cert_rotated(true);
                    tracing::debug!(id = %self.id, "workload certificate renewed");
                }
                Err(e) => {
                    self.metrics.cert_rotated(false);
                    let retry = retry_after(&self.material());
                    tracing::warn!(id = %self.id, error = %e, ?retry, "renewing the workload certificate failed; retrying");
                    at = SystemTime::now() + retry;
                }
            }
        }
    }
}

async fn first_material(
    issuer: &Issuer,
    id: &SpiffeId,
    ttl: Duration,
) -> Result<Material, IdentityError> {
    issuer.prepare().await?;
    let deadline = tokio::time::Instant::now() + START_WAIT;
    let mut backoff = START_BACKOFF;
    loop {
        let error = match issuer.issue(id, ttl).await {
            Ok(material) => return Ok(material),
            Err(error) => error,
        };
        let delay = backoff.next();
        if !error.is_transient() || tokio::time::Instant::now() + delay >= deadline {
            return Err(error);
        }
        tracing::warn!(%error, "asking for the workload certificate again");
        tokio::time::sleep(delay).await;
    }
}

/// How soon to try again after a failed renewal: 10 s, or a quarter of the certificate's life
/// when that is shorter.
pub fn retry_after(material: &Material) -> Duration {
    RETRY.min(life(material) / 4)
}

fn life(material: &Material) -> Duration {
    material
        .not_after
        .duration_since(material.issued)
        .unwrap_or(Duration::ZERO)
}

/// Half-way between issue and expiry.
pub fn renewal_time(material: &Material) -> SystemTime {
    material.issued + life(material) / 2
}

/// The material of one issuance: `chain` (leaf first) for `key`, trusted by peers holding
/// `roots`, valid until `not_after`.
pub fn material(
    chain: Vec<CertificateDer<'static>>,
    key: &rcgen::KeyPair,
    roots: Vec<CertificateDer<'static>>,
    issued: SystemTime,
    not_after: SystemTime,
) -> Result<Material, IdentityError> {
    let provider = provider();
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
    let private = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| IdentityError::Bundle(e.to_owned()))?;
    let certified = CertifiedKey::from_der(chain, private, &provider)?;
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

    #[tokio::test]
    async fn issues_and_renews_at_half_life() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = prometheus::Registry::new();
        let metrics = SecurityMetrics::new(&registry).expect("metrics");
        let id = SpiffeId::new("public", "default", "a");
        let issuer = Issuer::Local(dir.path().to_owned());
        let w = Workload::start(id.clone(), issuer, Duration::from_secs(100), metrics)
            .await
            .expect("identity");
        let m = w.material();
        let cert = m.key.end_entity_cert().expect("a certificate");
        assert_eq!(SpiffeId::from_certificate(cert), Ok(id));
        let half = renewal_time(&m)
            .duration_since(m.issued)
            .expect("after issue");
        assert_eq!(half, Duration::from_secs(50));
        assert_eq!(retry_after(&m), RETRY);
    }
}
