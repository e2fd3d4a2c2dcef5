//! Where this sidecar's workload certificates come from. Standalone: the local CA in
//! `<data-dir>/mtls` ([`super::ca`]), read from disk at every issuance. Kubernetes: the
//! control plane's CA, asked over the operator's sidecar API with the pod's ServiceAccount token;
//! the key is made here and only a CSR leaves. What the control plane answers is checked before
//! it is used: the certificate must carry exactly the SPIFFE ID this sidecar expects, chain to
//! the trust anchors that came with it (and to the injected anchors, when given), and its lifetime is read from the certificate itself
//! (the CA decides the TTL).

use super::ca::{BACKDATE, BUNDLE_FILE, LocalCa, read_bundle};
use super::identity::{IdentityError, Material, material};
use super::spiffe::SpiffeId;
use crate::control_plane::{ControlPlane, ControlPlaneTrust};
use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tandem_crds::control_plane::CertificateResponse;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The CA that signs this sidecar's certificates.
#[derive(Debug)]
pub enum Issuer {
    /// The standalone CA in this directory.
    Local(PathBuf),
    /// The control plane's CA, through the operator's sidecar API.
    ControlPlane(ControlPlane),
}

impl std::fmt::Display for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Issuer::Local(dir) => write!(f, "the local CA in {}", dir.display()),
            Issuer::ControlPlane(plane) => write!(f, "the control-plane CA at {}", plane.address),
        }
    }
}

impl Issuer {
    /// Before the first issuance: the local CA is created when missing (never at renewal, so
    /// a CA deleted meanwhile is an error, not a new CA nobody trusts).
    pub async fn prepare(&self) -> Result<(), IdentityError> {
        let Issuer::Local(dir) = self else {
            return Ok(());
        };
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || LocalCa::ensure(&dir).map(drop))
            .await
            .map_err(|e| IdentityError::Bundle(format!("the CA task failed: {e}")))??;
        Ok(())
    }

    /// A fresh key and an SVID for `id`; `ttl` is what the local CA signs for (the control
    /// plane's CA decides its own).
    pub async fn issue(&self, id: &SpiffeId, ttl: Duration) -> Result<Material, IdentityError> {
        match self {
            Issuer::Local(dir) => {
                let (dir, id) = (dir.clone(), id.clone());
                tokio::task::spawn_blocking(move || issue_local(&dir, &id, ttl))
                    .await
                    .map_err(|e| IdentityError::Bundle(format!("the issuing task failed: {e}")))?
            }
            Issuer::ControlPlane(plane) => {
                let key = KeyPair::generate()?;
                let csr = certificate_request(id, &key)?;
                let issued = SystemTime::now();
                let answer = plane.certificate(csr).await?;
                accept(&answer, id, &key, issued, plane.trust())
            }
        }
    }
}

/// A fresh key, an SVID for it from the local CA, and the trust bundle, as they are on disk now.
fn issue_local(ca_dir: &Path, id: &SpiffeId, ttl: Duration) -> Result<Material, IdentityError> {
    let ca = LocalCa::open(ca_dir)?;
    let roots = read_bundle(&ca.dir().join(BUNDLE_FILE))?;
    if !roots.contains(ca.certificate()) {
        // Peers would refuse certificates of a CA they do not trust yet.
        return Err(IdentityError::Bundle(format!(
            "the CA in {} is not in {BUNDLE_FILE}: add its certificate to the bundle first",
            ca_dir.display()
        )));
    }
    let key = KeyPair::generate()?;
    let issued = SystemTime::now();
    let not_after = issued + ttl;
    let cert = ca.issue(id, &key, issued - BACKDATE, not_after)?;
    material(vec![cert], &key, roots, issued, not_after)
}

/// A PEM CSR over `key` naming `id` (the CA takes only the public key from it; the identity
/// it signs is the pod's, whatever the CSR says).
pub fn certificate_request(id: &SpiffeId, key: &KeyPair) -> Result<String, IdentityError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params
        .subject_alt_names
        .push(SanType::URI(id.to_string().try_into()?));
    Ok(params.serialize_request(key)?.pem()?)
}

/// The control plane's answer made into [`Material`], if it is a certificate for exactly
/// `want`, for `key`, chaining to the trust anchors sent with it and, when the sidecar was given
/// anchors of its own (`injected`), to those: anchors the answer brings cannot vouch for it. A
/// pure function of its inputs and the clock.
pub fn accept(
    answer: &CertificateResponse,
    want: &SpiffeId,
    key: &KeyPair,
    issued: SystemTime,
    injected: Option<&ControlPlaneTrust>,
) -> Result<Material, IdentityError> {
    let bad = |what: &str| IdentityError::Certificate(what.to_owned());
    let chain = pem_certificates(&answer.workload_certificate)
        .map_err(|e| bad(&format!("workloadCertificate: {e}")))?;
    let roots = pem_certificates(&answer.trust_anchors)
        .map_err(|e| IdentityError::Bundle(format!("trustAnchors: {e}")))?;
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| bad("workloadCertificate holds no certificate"))?;
    let got = SpiffeId::from_certificate(leaf).map_err(|e| bad(&e.to_string()))?;
    if &got != want {
        return Err(IdentityError::Mismatch {
            got: got.to_string(),
            want: want.clone(),
        });
    }
    let not_after = not_after(leaf).ok_or_else(|| bad("its validity cannot be read"))?;
    let material = material(chain.clone(), key, roots, issued, not_after)?;
    // What peers will check: the chain to the anchors, the validity, the key usage.
    material
        .client_verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .map_err(|e| bad(&format!("does not verify against the trust anchors: {e}")))?;
    if let Some(trust) = injected {
        trust.check_issued(leaf, intermediates).map_err(|e| {
            bad(&format!(
                "does not chain to the injected trust anchors (DAPR_TRUST_ANCHORS): {e}"
            ))
        })?;
    }
    // `CertifiedKey::from_der` has checked that the certificate is for `key`.
    Ok(material)
}

/// The end of a certificate's validity.
pub fn not_after(der: &[u8]) -> Option<SystemTime> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let seconds = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("holds no certificate".to_owned());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests;
