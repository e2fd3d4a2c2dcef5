//! The sidecar API's own TLS: a serving certificate the control-plane CA issues for the operator
//! itself, `spiffe://<control-plane trust domain>/ns/<its namespace>/tandem-operator` plus the
//! `tandem-api` Service's DNS names. Sidecars given the trust anchors accept exactly that SPIFFE
//! ID. The certificate is re-issued at half-life and as soon as the CA in use changes (the CA
//! Secret is followed, [`super::follow`]); the trust anchors are published in a ConfigMap for the
//! injector ([`super::bundle`]) on start and whenever they change.

use super::follow::CurrentCa;
use super::sign::SignError;
use super::{ControlPlaneCa, bundle};
use rcgen::{
    CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose,
    SanType,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tandem_webhook_tls::{Certificates, ServingCert};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// How long the operator's serving certificate lives (re-issued at half of it).
pub const SERVING_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often the certificate and the published anchors are checked against the CA in use.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(10);
const BACKDATE: Duration = Duration::from_secs(60);

/// Who the sidecar API is, and where its trust anchors are published.
#[derive(Debug, Clone)]
pub struct ServingIdentity {
    /// `spiffe://<trust domain>/ns/<namespace>/tandem-operator`.
    pub spiffe_id: String,
    /// The `tandem-api` Service's names (and any others to put in the certificate).
    pub dns_names: Vec<String>,
    /// The operator's namespace: where the ConfigMap lives.
    pub namespace: String,
    /// The ConfigMap holding the trust anchors for the injector (`None`: not published).
    pub bundle_configmap: Option<String>,
}

impl ServingIdentity {
    /// The operator in `namespace`: its SPIFFE ID in `trust_domain`, the `tandem-api` Service's
    /// DNS names, the anchors published in `bundle_configmap` ("" publishes none).
    pub fn operator(trust_domain: &str, namespace: &str, bundle_configmap: &str) -> Self {
        ServingIdentity {
            spiffe_id: tandem_crds::control_plane::operator_spiffe_id(trust_domain, namespace),
            dns_names: tandem_webhook_tls::service_dns_names(
                crate::sidecar_api::SERVICE_NAME,
                namespace,
                tandem_crds::cluster_dns::DEFAULT_CLUSTER_DOMAIN,
            ),
            namespace: namespace.to_owned(),
            bundle_configmap: Some(bundle_configmap.to_owned()).filter(|n| !n.is_empty()),
        }
    }
}

/// A serving certificate for `id`, signed by `ca`, valid from `now` for `ttl`.
pub fn issue(
    ca: &ControlPlaneCa,
    id: &ServingIdentity,
    now: SystemTime,
    ttl: Duration,
) -> Result<Certificates, SignError> {
    let sign_error = |e: rcgen::Error| SignError::Sign(e.to_string());
    let key = KeyPair::generate().map_err(sign_error)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(sign_error)?;
    params.distinguished_name = DistinguishedName::new();
    let mut sans = vec![SanType::URI(
        id.spiffe_id.clone().try_into().map_err(sign_error)?,
    )];
    for name in &id.dns_names {
        sans.push(SanType::DnsName(
            name.clone().try_into().map_err(sign_error)?,
        ));
    }
    params.subject_alt_names = sans;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = OffsetDateTime::from(now - BACKDATE);
    params.not_after = OffsetDateTime::from(now + ttl);
    let cert = params.signed_by(&key, ca.issuer()).map_err(sign_error)?;
    Ok(Certificates {
        ca_pem: ca.trust_anchors_pem().to_owned(),
        ca_key_pem: String::new(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after: now + ttl,
    })
}

/// What is served now: by which CA, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub ca_fingerprint: u64,
    pub issued: SystemTime,
    pub not_after: SystemTime,
}

/// Whether the served certificate must be re-issued: another CA is in use, or half its life is
/// gone.
pub fn needs_renewal(served: &Served, ca_fingerprint: u64, now: SystemTime) -> bool {
    if served.ca_fingerprint != ca_fingerprint {
        return true;
    }
    let life = served
        .not_after
        .duration_since(served.issued)
        .unwrap_or_default();
    now >= served.issued + life / 2
}

/// Issues the first certificate from the CA in use and keeps it (and the published anchors)
/// current every `interval` until `shutdown`, in the background.
pub fn start(
    client: kube::Client,
    current: Arc<CurrentCa>,
    id: ServingIdentity,
    interval: Duration,
    shutdown: CancellationToken,
) -> Result<Arc<ServingCert>, SignError> {
    let ca = current.get();
    let now = SystemTime::now();
    let certs = issue(&ca, &id, now, SERVING_TTL)?;
    let served = Served {
        ca_fingerprint: ca.fingerprint(),
        issued: now,
        not_after: certs.not_after,
    };
    let cert = ServingCert::new(certs).map_err(|e| SignError::Sign(e.to_string()))?;
    let keeping = keep_current(client, current, Arc::clone(&cert), id, served, interval);
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = keeping => {}
        }
    });
    Ok(cert)
}

async fn keep_current(
    client: kube::Client,
    current: Arc<CurrentCa>,
    cert: Arc<ServingCert>,
    id: ServingIdentity,
    mut served: Served,
    interval: Duration,
) {
    let mut published: Option<String> = None;
    loop {
        let ca = current.get();
        let now = SystemTime::now();
        if needs_renewal(&served, ca.fingerprint(), now) {
            match issue(&ca, &id, now, SERVING_TTL)
                .map_err(|e| e.to_string())
                .and_then(|certs| {
                    let not_after = certs.not_after;
                    cert.replace(certs).map_err(|e| e.to_string())?;
                    Ok(not_after)
                }) {
                Ok(not_after) => {
                    served = Served {
                        ca_fingerprint: ca.fingerprint(),
                        issued: now,
                        not_after,
                    };
                    tracing::info!(spiffe_id = %id.spiffe_id, "the sidecar API serves a new certificate");
                }
                Err(error) => tracing::warn!(%error, "cannot renew the sidecar API's certificate"),
            }
        }
        if let Some(name) = &id.bundle_configmap
            && published.as_deref() != Some(ca.trust_anchors_pem())
        {
            let anchors = ca.trust_anchors_pem();
            match bundle::publish(client.clone(), &id.namespace, name, anchors).await {
                Ok(()) => published = Some(anchors.to_owned()),
                Err(error) => {
                    tracing::warn!(%error, configmap = %name, "cannot publish the trust anchors")
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::sign::generate_ca;
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

    #[test]
    fn the_certificate_names_the_operator_and_its_service() {
        let (anchors, issuer, key) = generate_ca(SystemTime::now()).expect("CA");
        let ca = ControlPlaneCa::from_pem(&anchors, &issuer, &key).expect("a CA");
        let id = ServingIdentity {
            spiffe_id: "spiffe://cluster.local/ns/tandem/tandem-operator".into(),
            dns_names: vec!["tandem-api.tandem.svc".into()],
            namespace: "tandem".into(),
            bundle_configmap: None,
        };
        let certs = issue(&ca, &id, SystemTime::now(), SERVING_TTL).expect("issued");
        assert_eq!(certs.ca_pem, anchors);
        let der = crate::ca::sign::pem_certificates(&certs.cert_pem).expect("PEM");
        let (_, cert) = X509Certificate::from_der(&der[0]).expect("X.509");
        let san = cert.subject_alternative_name().expect("SAN").expect("SAN");
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::URI(u) => u.to_string(),
                GeneralName::DNSName(d) => d.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "spiffe://cluster.local/ns/tandem/tandem-operator",
                "tandem-api.tandem.svc"
            ]
        );
    }

    #[test]
    fn renewal_at_half_life_or_on_another_ca() {
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let served = Served {
            ca_fingerprint: 7,
            issued,
            not_after: issued + Duration::from_secs(100),
        };
        let at = |s: u64| issued + Duration::from_secs(s);
        for (fingerprint, now, renew) in [
            (7, at(0), false),
            (7, at(49), false),
            (7, at(50), true),
            (7, at(200), true),
            (8, at(0), true),
        ] {
            assert_eq!(needs_renewal(&served, fingerprint, now), renew, "{now:?}");
        }
    }
}
