//! rustls configuration for the internal port. The server side requires a client certificate
//! that chains to the trust bundle and names a SPIFFE ID in this sidecar's trust domain; the
//! client side requires the server's SPIFFE ID to be exactly the app it meant to reach. Both
//! read the current [`Material`](super::identity::Material) at every handshake, so renewals and
//! bundle changes take effect without a restart.

use super::identity::{Workload, provider};
use super::refusal::{IdentityRefusal, classify};
use super::spiffe::SpiffeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use std::sync::Arc;

/// Serves and presents the current SVID.
#[derive(Debug)]
struct Svid(Arc<Workload>);

impl ResolvesServerCert for Svid {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.material().key.clone())
    }
}

impl ResolvesClientCert for Svid {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.material().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    provider().signature_verification_algorithms
}

/// Which SPIFFE IDs a client accepts from the server.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Exactly this app (service invocation: the caller knows whom it calls).
    Exactly(SpiffeId),
    /// Any app of this trust domain (actor calls, routed to a host by placement).
    TrustDomain(String),
}

/// The server's check of a client: the chain (webpki, against the current bundle), then the
/// trust domain of its SPIFFE ID.
#[derive(Debug)]
struct ClientAuth(Arc<Workload>);

impl ClientCertVerifier for ClientAuth {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let material = self.0.material();
        material
            .client_verifier
            .verify_client_cert(end_entity, intermediates, now)?;
        let id = SpiffeId::from_certificate(end_entity)
            .map_err(|e| IdentityRefusal::from(e).into_tls())?;
        let want = &self.0.id().trust_domain;
        if &id.trust_domain != want {
            return Err(IdentityRefusal::TrustDomain {
                got: id.trust_domain,
                want: want.clone(),
            }
            .into_tls());
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// The client's check of a server: the chain against the current bundle (no DNS name: peers
/// are reached by address and named by SPIFFE ID), then the ID. A refusal is counted here,
/// where its reason is known.
#[derive(Debug)]
struct ServerAuth {
    workload: Arc<Workload>,
    expect: Expect,
}

impl ServerAuth {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), Error> {
        let material = self.workload.material();
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &material.roots,
            intermediates,
            now,
            algorithms().all,
        )?;
        let id = SpiffeId::from_certificate(end_entity)
            .map_err(|e| IdentityRefusal::from(e).into_tls())?;
        let matches = match &self.expect {
            Expect::Exactly(want) => &id == want,
            Expect::TrustDomain(td) => &id.trust_domain == td,
        };
        if !matches {
            let want = match &self.expect {
                Expect::Exactly(want) => want.to_string(),
                Expect::TrustDomain(td) => format!("an app of trust domain {td}"),
            };
            return Err(IdentityRefusal::Mismatch {
                got: id.to_string(),
                want,
            }
            .into_tls());
        }
        Ok(())
    }
}

impl ServerCertVerifier for ServerAuth {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.check(end_entity, intermediates, now) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(e) => {
                self.workload
                    .metrics()
                    .peer_refused("client", classify(&e), &e);
                Err(e)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// The internal port's TLS: client certificates required, ALPN h2 and http/1.1.
pub fn server_config(workload: &Arc<Workload>) -> Result<Arc<rustls::ServerConfig>, Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(ClientAuth(workload.clone())))
        .with_cert_resolver(Arc::new(Svid(workload.clone())));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The peer channel's TLS towards servers that must match `expect`.
pub fn client_config(
    workload: &Arc<Workload>,
    expect: Expect,
) -> Result<rustls::ClientConfig, Error> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerAuth {
            workload: workload.clone(),
            expect,
        }))
        .with_client_cert_resolver(Arc::new(Svid(workload.clone())));
    Ok(config)
}

/// A TLS handshake that takes longer than this is dropped (slowloris).
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts mTLS connections on the internal port; refusals are counted by reason.
#[derive(Clone)]
pub struct Acceptor {
    tls: tokio_rustls::TlsAcceptor,
    workload: Arc<Workload>,
}

impl Acceptor {
    pub fn new(workload: &Arc<Workload>) -> Result<Acceptor, Error> {
        Ok(Acceptor {
            tls: tokio_rustls::TlsAcceptor::from(server_config(workload)?),
            workload: workload.clone(),
        })
    }

    /// The TLS stream and the client's verified identity, or `None` (counted) when the client
    /// failed the handshake.
    pub async fn accept(
        &self,
        stream: tokio::net::TcpStream,
    ) -> Option<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        super::PeerIdentity,
    )> {
        let metrics = self.workload.metrics();
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.tls.accept(stream)).await {
            Err(_) => {
                let reason = super::refusal::Reason::Handshake;
                metrics.peer_refused("server", reason, &"the handshake timed out");
                return None;
            }
            Ok(Err(e)) => {
                metrics.peer_refused("server", super::refusal::classify_io(&e), &e);
                return None;
            }
            Ok(Ok(tls)) => tls,
        };
        let id = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| SpiffeId::from_certificate(cert));
        match id {
            Some(Ok(id)) => Some((tls, super::PeerIdentity(id))),
            _ => {
                let reason = super::refusal::Reason::BadIdentity;
                metrics.peer_refused("server", reason, &"no SPIFFE ID after the handshake");
                None
            }
        }
    }
}
