//! What the CA signs, as pure functions: the identity comes from the verified pod and its
//! Configuration, the CSR gives only the public key (its self-signature is checked, so the caller
//! holds the private key), and everything else in the certificate is set here.

use super::ControlPlaneCa;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::time::{Duration, SystemTime};
use tandem_crds::ConfigurationSpec;
use time::OffsetDateTime;

/// Dapr's `workloadCertTTL` default.
pub const DEFAULT_WORKLOAD_TTL: Duration = Duration::from_secs(24 * 3600);
/// Dapr's default trust domain for apps.
pub const DEFAULT_TRUST_DOMAIN: &str = "public";
/// Certificates start a little in the past, for clocks that disagree slightly.
const BACKDATE: Duration = Duration::from_secs(60);
/// Dapr's self-generated roots last a year.
const CA_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
const CA_COMMON_NAME: &str = "Tandem control-plane CA";
/// Shorter certificates would be renewed faster than is useful.
const MIN_TTL: Duration = Duration::from_secs(2);

/// Why a CSR is not signed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    #[error("the certificate signing request is not a valid, self-signed PEM CSR: {0}")]
    Csr(String),
    #[error("spec.mtls.workloadCertTTL {0:?} is not a duration of at least 2s")]
    Ttl(String),
    #[error("signing: {0}")]
    Sign(String),
}

/// Who a certificate is for: `spiffe://<trust_domain>/ns/<namespace>/<app_id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadIdentity {
    pub trust_domain: String,
    pub namespace: String,
    pub app_id: String,
}

impl WorkloadIdentity {
    /// The identity of an app, its trust domain from its Configuration (`accessControl`).
    pub fn new(config: Option<&ConfigurationSpec>, namespace: &str, app_id: &str) -> Self {
        let trust_domain = config
            .and_then(|c| c.access_control.as_ref())
            .and_then(|a| a.trust_domain.as_deref())
            .filter(|td| !td.is_empty())
            .unwrap_or(DEFAULT_TRUST_DOMAIN);
        WorkloadIdentity {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            app_id: app_id.to_owned(),
        }
    }

    pub fn spiffe_id(&self) -> String {
        format!(
            "spiffe://{}/ns/{}/{}",
            self.trust_domain, self.namespace, self.app_id
        )
    }
}

/// A signed workload certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svid {
    /// The leaf, PEM.
    pub certificate_chain_pem: String,
    pub not_after: SystemTime,
}

/// How long a workload certificate lives: the Configuration's `spec.mtls.workloadCertTTL`, else
/// 24 h.
pub fn workload_ttl(config: Option<&ConfigurationSpec>) -> Result<Duration, SignError> {
    let Some(ttl) = config
        .and_then(|c| c.mtls.as_ref())
        .and_then(|m| m.workload_cert_ttl.as_deref())
        .filter(|t| !t.trim().is_empty())
    else {
        return Ok(DEFAULT_WORKLOAD_TTL);
    };
    humantime::parse_duration(ttl.trim())
        .ok()
        .filter(|d| *d >= MIN_TTL)
        .ok_or_else(|| SignError::Ttl(ttl.to_owned()))
}

/// Signs the public key of `csr_pem` as `id`, valid from `now` (backdated a minute) for `ttl`.
/// Whatever names or extensions the CSR asks for are ignored.
pub fn sign_csr(
    ca: &ControlPlaneCa,
    csr_pem: &str,
    id: &WorkloadIdentity,
    now: SystemTime,
    ttl: Duration,
) -> Result<Svid, SignError> {
    let csr = CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| SignError::Csr(e.to_string()))?;
    let sign_error = |e: rcgen::Error| SignError::Sign(e.to_string());
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(sign_error)?;
    params.distinguished_name = DistinguishedName::new();
    let uri = id.spiffe_id().try_into().map_err(sign_error)?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let not_after = now + ttl;
    params.not_before = OffsetDateTime::from(now - BACKDATE);
    params.not_after = OffsetDateTime::from(not_after);
    let cert = params
        .signed_by(&csr.public_key, ca.issuer())
        .map_err(sign_error)?;
    Ok(Svid {
        certificate_chain_pem: cert.pem(),
        not_after,
    })
}

/// A new self-signed root that is also the issuer: `(trust anchors, issuer cert, issuer key)`.
pub fn generate_ca(now: SystemTime) -> Result<(String, String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = OffsetDateTime::from(now - BACKDATE);
    params.not_after = OffsetDateTime::from(now + CA_VALIDITY);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), cert.pem(), key.serialize_pem()))
}

/// The certificates in a PEM text (at least one).
pub fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
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
