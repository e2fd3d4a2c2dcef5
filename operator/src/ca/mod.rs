//! The control plane's CA: it signs workload certificates (SVIDs) for sidecars in Kubernetes
//! mode, as Dapr's Sentry does. The key and the trust bundle live in one Secret ([`secret`]),
//! created race-free by whichever replica starts first, so every replica signs with the same CA.
//! A sidecar proves who it is with its pod's ServiceAccount token (`sidecar_api::certificate`);
//! what it gets is decided here, by pure functions ([`sign`]): the SPIFFE ID
//! `spiffe://<trust domain>/ns/<namespace>/<app id>` from the verified pod, never from the CSR,
//! whose only use is to carry the sidecar's public key (and prove it holds the private half).
//! The CA also issues the operator's own serving certificate for the sidecar API ([`serving`]),
//! and publishes its trust anchors for the injector ([`bundle`]).

pub mod bundle;
pub mod follow;
pub mod secret;
pub mod serving;
pub mod sign;

pub use follow::{CurrentCa, FOLLOW_INTERVAL, follow};
pub use secret::{CA_SECRET_NAME, ensure};
pub use sign::{SignError, Svid, WorkloadIdentity, sign_csr, workload_ttl};

use rcgen::{Issuer, KeyPair};

/// Secret keys, Dapr's names (`dapr-trust-bundle`): the roots peers check against, and the
/// certificate and key that sign.
pub const TRUST_ANCHORS_KEY: &str = "ca.crt";
pub const ISSUER_CERT_KEY: &str = "issuer.crt";
pub const ISSUER_KEY_KEY: &str = "issuer.key";

/// Why the CA cannot be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("Secret {namespace}/{name}: {source}")]
    Kube {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("Secret {namespace}/{name} kept changing under us")]
    Contended { namespace: String, name: String },
    #[error("Secret {name} is not a CA: {what}")]
    Content { name: String, what: String },
    #[error("making the CA: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the sidecar API's serving certificate: {0}")]
    Serving(#[from] SignError),
}

/// The loaded CA: what signs, and the trust anchors handed to every sidecar.
pub struct ControlPlaneCa {
    issuer: Issuer<'static, KeyPair>,
    trust_anchors_pem: String,
    /// When the issuer certificate expires (unix seconds).
    issuer_not_after: i64,
    /// Digest of the PEM parts it was made from ([`follow::fingerprint`]).
    fingerprint: u64,
}

impl std::fmt::Debug for ControlPlaneCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlPlaneCa")
    }
}

impl ControlPlaneCa {
    /// The CA from its PEM parts; the issuer must be one of the trust anchors (otherwise no peer
    /// would accept what it signs).
    pub fn from_pem(
        trust_anchors_pem: &str,
        issuer_pem: &str,
        issuer_key_pem: &str,
    ) -> Result<ControlPlaneCa, String> {
        let key = KeyPair::from_pem(issuer_key_pem).map_err(|e| format!("issuer key: {e}"))?;
        let issuer = Issuer::from_ca_cert_pem(issuer_pem, key)
            .map_err(|e| format!("issuer certificate: {e}"))?;
        let issuer_der = sign::pem_certificates(issuer_pem)?;
        let anchors = sign::pem_certificates(trust_anchors_pem)?;
        if !issuer_der.iter().all(|cert| anchors.contains(cert)) {
            return Err("the issuer certificate is not among the trust anchors".to_owned());
        }
        let issuer_not_after = issuer_der
            .first()
            .ok_or_else(|| "no issuer certificate".to_owned())
            .and_then(|der| {
                x509_parser::parse_x509_certificate(der)
                    .map(|(_, cert)| cert.validity().not_after.timestamp())
                    .map_err(|e| format!("issuer certificate: {e}"))
            })?;
        Ok(ControlPlaneCa {
            issuer,
            trust_anchors_pem: trust_anchors_pem.to_owned(),
            issuer_not_after,
            fingerprint: follow::fingerprint(trust_anchors_pem, issuer_pem, issuer_key_pem),
        })
    }

    /// The roots every sidecar trusts (PEM, possibly several during a rotation).
    pub fn trust_anchors_pem(&self) -> &str {
        &self.trust_anchors_pem
    }

    /// When the issuer certificate expires, in unix seconds.
    pub fn issuer_not_after(&self) -> i64 {
        self.issuer_not_after
    }

    /// Digest of the PEM parts it was made from: equal for the same CA.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}
