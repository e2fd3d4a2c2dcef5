//! Why a peer was refused at the TLS layer, read from the handshake's error: a pure mapping, so
//! the metric label and the log line say the same thing.

use super::spiffe::IdError;
use rustls::{CertificateError, Error as TlsError};

/// A refusal reason, a bounded metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The client spoke plaintext (or anything else that is not TLS).
    NotTls,
    /// The client presented no certificate.
    NoClientCert,
    /// The chain does not end at a trusted root (another CA, a self-signed certificate).
    UnknownCa,
    /// The certificate has expired (or is not valid yet).
    Expired,
    /// The certificate carries no well-formed SPIFFE ID.
    BadIdentity,
    /// The SPIFFE ID is of another trust domain.
    TrustDomain,
    /// The server's SPIFFE ID is not the app the caller meant to reach.
    IdMismatch,
    /// Anything else that broke the handshake.
    Handshake,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::NotTls,
        Reason::NoClientCert,
        Reason::UnknownCa,
        Reason::Expired,
        Reason::BadIdentity,
        Reason::TrustDomain,
        Reason::IdMismatch,
        Reason::Handshake,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotTls => "not_tls",
            Reason::NoClientCert => "no_client_cert",
            Reason::UnknownCa => "unknown_ca",
            Reason::Expired => "expired",
            Reason::BadIdentity => "bad_identity",
            Reason::TrustDomain => "trust_domain",
            Reason::IdMismatch => "id_mismatch",
            Reason::Handshake => "handshake",
        }
    }
}

/// What Tandem's own verifiers refuse beyond chain validation (carried inside
/// `CertificateError::Other`).
#[derive(Debug, thiserror::Error)]
pub enum IdentityRefusal {
    #[error("{0}")]
    Id(#[from] IdError),
    #[error("trust domain {got:?} is not {want:?}")]
    TrustDomain { got: String, want: String },
    #[error("the peer is {got}, not {want}")]
    Mismatch { got: String, want: String },
}

impl IdentityRefusal {
    pub fn into_tls(self) -> TlsError {
        TlsError::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            std::sync::Arc::new(self),
        )))
    }
}

/// The reason a handshake failed with `error`.
pub fn classify(error: &TlsError) -> Reason {
    match error {
        TlsError::InvalidMessage(_)
        | TlsError::InappropriateMessage { .. }
        | TlsError::InappropriateHandshakeMessage { .. } => Reason::NotTls,
        TlsError::NoCertificatesPresented => Reason::NoClientCert,
        TlsError::InvalidCertificate(cert) => match cert {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Reason::Expired,
            CertificateError::UnknownIssuer | CertificateError::BadSignature => Reason::UnknownCa,
            CertificateError::Other(other) => match other.0.downcast_ref::<IdentityRefusal>() {
                Some(IdentityRefusal::Id(_)) => Reason::BadIdentity,
                Some(IdentityRefusal::TrustDomain { .. }) => Reason::TrustDomain,
                Some(IdentityRefusal::Mismatch { .. }) => Reason::IdMismatch,
                None => Reason::Handshake,
            },
            _ => Reason::Handshake,
        },
        _ => Reason::Handshake,
    }
}

/// The reason behind an I/O error from a TLS stream (tokio-rustls wraps rustls errors).
pub fn classify_io(error: &std::io::Error) -> Reason {
    match error.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) {
        Some(tls) => classify(tls),
        None if error.kind() == std::io::ErrorKind::InvalidData => Reason::NotTls,
        None => Reason::Handshake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::InvalidMessage;

    #[test]
    fn reasons() {
        let cases = [
            (
                TlsError::InvalidMessage(InvalidMessage::InvalidContentType),
                Reason::NotTls,
            ),
            (TlsError::NoCertificatesPresented, Reason::NoClientCert),
            (
                TlsError::InvalidCertificate(CertificateError::UnknownIssuer),
                Reason::UnknownCa,
            ),
            (
                TlsError::InvalidCertificate(CertificateError::Expired),
                Reason::Expired,
            ),
            (
                IdentityRefusal::TrustDomain {
                    got: "other".into(),
                    want: "public".into(),
                }
                .into_tls(),
                Reason::TrustDomain,
            ),
            (
                IdentityRefusal::Mismatch {
                    got: "a".into(),
                    want: "b".into(),
                }
                .into_tls(),
                Reason::IdMismatch,
            ),
            (
                IdentityRefusal::Id(IdError::Missing).into_tls(),
                Reason::BadIdentity,
            ),
            (TlsError::HandshakeNotComplete, Reason::Handshake),
        ];
        for (error, want) in cases {
            assert_eq!(classify(&error), want, "{error:?}");
        }
    }
}
