//! SPIFFE IDs as Dapr spells them, `spiffe://<trust-domain>/ns/<namespace>/<app-id>`, and reading
//! one out of a certificate's URI SAN. Pure functions.

use std::fmt;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The identity of one app's sidecars.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub app_id: String,
}

/// Why a certificate carries no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("the certificate cannot be parsed")]
    BadCertificate,
    #[error("the certificate has no spiffe:// URI SAN")]
    Missing,
    #[error("the certificate has more than one spiffe:// URI SAN")]
    Several,
    #[error("{0:?} is not spiffe://<trust-domain>/ns/<namespace>/<app-id>")]
    Malformed(String),
}

impl SpiffeId {
    pub fn new(trust_domain: &str, namespace: &str, app_id: &str) -> SpiffeId {
        SpiffeId {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            app_id: app_id.to_owned(),
        }
    }

    /// Parses a URI the way Dapr does: at least `ns/<namespace>/<app-id>` after the trust domain
    /// (more segments are allowed, for later use), none of them empty.
    pub fn parse(uri: &str) -> Result<SpiffeId, IdError> {
        let malformed = || IdError::Malformed(uri.to_owned());
        let rest = uri.strip_prefix("spiffe://").ok_or_else(malformed)?;
        let mut parts = rest.split('/');
        let trust_domain = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(malformed)?;
        if parts.next() != Some("ns") {
            return Err(malformed());
        }
        let namespace = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(malformed)?;
        let app_id = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(malformed)?;
        let valid = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if !(valid(trust_domain) && valid(namespace) && valid(app_id)) {
            return Err(malformed());
        }
        Ok(SpiffeId::new(trust_domain, namespace, app_id))
    }

    /// The one SPIFFE ID in a DER certificate's URI SANs.
    pub fn from_certificate(der: &[u8]) -> Result<SpiffeId, IdError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| IdError::BadCertificate)?;
        let san = cert
            .subject_alternative_name()
            .map_err(|_| IdError::BadCertificate)?;
        let mut found = None;
        for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
            if let GeneralName::URI(uri) = name
                && uri.starts_with("spiffe://")
            {
                if found.is_some() {
                    return Err(IdError::Several);
                }
                found = Some(SpiffeId::parse(uri)?);
            }
        }
        found.ok_or(IdError::Missing)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/{}",
            self.trust_domain, self.namespace, self.app_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dapr_ids() {
        let ok = SpiffeId::parse("spiffe://public/ns/default/orders").expect("valid id");
        assert_eq!(ok, SpiffeId::new("public", "default", "orders"));
        assert_eq!(ok.to_string(), "spiffe://public/ns/default/orders");
        assert!(SpiffeId::parse("spiffe://public/ns/default/orders/extra").is_ok());
        for bad in [
            "spiffe://public/ns/default",
            "spiffe://public/ns//orders",
            "spiffe://public/xx/default/orders",
            "spiffe:///ns/default/orders",
            "https://public/ns/default/orders",
            "spiffe://public/ns/default/or ders",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad} must be refused");
        }
    }
}
