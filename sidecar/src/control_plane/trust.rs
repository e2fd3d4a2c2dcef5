//! The control plane, verified: with the trust anchors the injector passes (`DAPR_TRUST_ANCHORS`),
//! the sidecar reaches the operator over TLS whose roots are exactly those anchors, and accepts
//! the server only if its certificate carries the operator's SPIFFE ID
//! (`spiffe://<control-plane trust domain>/ns/<control-plane namespace>/tandem-operator`), not
//! "any certificate from the CA". No DNS name is checked: the SPIFFE ID is the name. The
//! workload certificates the operator answers must chain to the same injected anchors.

use crate::cli::control_plane::ControlPlaneTrustArgs;
use crate::security::identity::provider;
use crate::security::refusal::{IdentityRefusal, Reason, classify};
use crate::security::spiffe::SpiffeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::sync::{Arc, Mutex};
use tandem_crds::annotations::{defaults, env};

/// The anchors and the identity the operator must prove.
#[derive(Debug, Clone)]
pub struct ControlPlaneTrust {
    roots: Arc<RootCertStore>,
    operator: SpiffeId,
    /// Why the last handshake refused the server (taken by the request that failed on it: the
    /// HTTP client's error does not carry the TLS error in a form that can be read back).
    refused: Arc<Mutex<Option<String>>>,
}

impl ControlPlaneTrust {
    /// From the flags: `None` without anchors (the operator is not verified); an error for
    /// anchors that are not PEM certificates, or without the control plane's namespace.
    pub fn from_args(args: &ControlPlaneTrustArgs) -> Result<Option<ControlPlaneTrust>, String> {
        let Some(pem) = args
            .trust_anchors
            .as_deref()
            .filter(|p| !p.trim().is_empty())
        else {
            return Ok(None);
        };
        let namespace = args
            .control_plane_namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                format!(
                    "{} needs {} (the operator's SPIFFE ID names it)",
                    env::DAPR_TRUST_ANCHORS,
                    env::DAPR_CONTROLPLANE_NAMESPACE
                )
            })?;
        let operator = SpiffeId::new(
            &args.control_plane_trust_domain,
            namespace,
            defaults::CONTROL_PLANE_APP_ID,
        );
        ControlPlaneTrust::new(pem, operator).map(Some)
    }

    /// Trusts the certificates of `anchors_pem` for a server that is `operator`.
    pub fn new(anchors_pem: &str, operator: SpiffeId) -> Result<ControlPlaneTrust, String> {
        let bad = |e: String| format!("{}: {e}", env::DAPR_TRUST_ANCHORS);
        let anchors = CertificateDer::pem_slice_iter(anchors_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
        if anchors.is_empty() {
            return Err(bad("holds no certificate".to_owned()));
        }
        let mut roots = RootCertStore::empty();
        for anchor in anchors {
            roots.add(anchor).map_err(|e| bad(e.to_string()))?;
        }
        Ok(ControlPlaneTrust {
            roots: Arc::new(roots),
            operator,
            refused: Arc::default(),
        })
    }

    /// The SPIFFE ID the operator must present.
    pub fn operator(&self) -> &SpiffeId {
        &self.operator
    }

    /// The TLS of every connection to the operator (HTTP/1.1, as the rest of the client).
    pub fn client_config(&self) -> Result<rustls::ClientConfig, Error> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(OperatorAuth(self.clone())))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Why the last handshake refused the server, once.
    pub fn take_refusal(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The server's check: the chain to the anchors, then exactly the operator's SPIFFE ID.
    pub fn check_server(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        let algorithms = provider().signature_verification_algorithms;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            algorithms.all,
        )?;
        let id = SpiffeId::from_certificate(end_entity)
            .map_err(|e| IdentityRefusal::from(e).into_tls())?;
        if id != self.operator {
            return Err(IdentityRefusal::Mismatch {
                got: id.to_string(),
                want: self.operator.to_string(),
            }
            .into_tls());
        }
        Ok(())
    }

    /// Whether a workload certificate the operator signed chains to the injected anchors.
    pub fn check_issued(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), String> {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .map_err(|e| e.to_string())?;
        verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(drop)
            .map_err(|e| explain(&e))
    }
}

/// Why the operator's TLS was refused, in words that name the cause.
pub fn explain(error: &Error) -> String {
    let why = match classify(error) {
        Reason::UnknownCa => format!(
            "its certificate is not signed by the trust anchors in {} (unknown CA)",
            env::DAPR_TRUST_ANCHORS
        ),
        Reason::Expired => "its certificate has expired or is not valid yet".to_owned(),
        Reason::IdMismatch | Reason::TrustDomain | Reason::BadIdentity => {
            "wrong identity".to_owned()
        }
        Reason::NotTls => "it does not speak TLS".to_owned(),
        Reason::NoClientCert | Reason::Handshake => "the TLS handshake failed".to_owned(),
    };
    format!("{why}: {error}")
}

/// The TLS error behind a failed request, explained, if a TLS error is why it failed.
pub fn tls_refusal(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(tls) = current.downcast_ref::<Error>() {
            return Some(explain(tls));
        }
        if let Some(tls) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<Error>())
        {
            return Some(explain(tls));
        }
        next = current.source();
    }
    None
}

#[derive(Debug)]
struct OperatorAuth(ControlPlaneTrust);

impl ServerCertVerifier for OperatorAuth {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if let Err(error) = self.0.check_server(end_entity, intermediates, now) {
            let reason = explain(&error);
            tracing::warn!(%reason, "the control plane's certificate is refused");
            *self.0.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
            return Err(error);
        }
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

#[cfg(test)]
mod tests;
