use super::*;
use crate::ca::ControlPlaneCa;
use tandem_crds::access_control::{AccessControlSpec, MtlsSpec};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

fn ca() -> ControlPlaneCa {
    let (anchors, issuer, key) = generate_ca(SystemTime::now()).expect("CA");
    ControlPlaneCa::from_pem(&anchors, &issuer, &key).expect("loaded")
}

fn uris(pem: &str) -> Vec<String> {
    let der = pem_certificates(pem).expect("PEM").remove(0);
    let (_, cert) = X509Certificate::from_der(&der).expect("X.509");
    let san = cert
        .subject_alternative_name()
        .expect("SAN parses")
        .expect("a SAN");
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect()
}

fn id(app: &str) -> WorkloadIdentity {
    WorkloadIdentity::new(None, "shop", app)
}

#[test]
fn the_certificate_names_the_pod_identity_not_the_csr() {
    let key = KeyPair::generate().expect("key");
    let mut asked = CertificateParams::new(vec!["admin.example".to_owned()]).expect("params");
    asked.subject_alt_names.push(SanType::URI(
        "spiffe://public/ns/kube-system/admin"
            .try_into()
            .expect("uri"),
    ));
    let csr = asked
        .serialize_request(&key)
        .expect("CSR")
        .pem()
        .expect("PEM");
    let now = SystemTime::now();
    let svid = sign_csr(&ca(), &csr, &id("orders"), now, Duration::from_secs(60)).expect("signed");
    assert_eq!(
        uris(&svid.certificate_chain_pem),
        vec!["spiffe://public/ns/shop/orders"]
    );
    assert_eq!(svid.not_after, now + Duration::from_secs(60));
}

#[test]
fn a_csr_that_is_not_self_signed_is_refused() {
    let key = KeyPair::generate().expect("key");
    let csr = CertificateParams::default()
        .serialize_request(&key)
        .expect("CSR");
    let mut der = csr.der().to_vec();
    let last = der.len() - 1;
    der[last] ^= 0xff; // breaks the signature
    let tampered = pem_text("CERTIFICATE REQUEST", &der);
    let refused = sign_csr(&ca(), &tampered, &id("a"), SystemTime::now(), MIN_TTL);
    assert!(matches!(refused, Err(SignError::Csr(_))), "{refused:?}");
    let garbage = sign_csr(&ca(), "hello", &id("a"), SystemTime::now(), MIN_TTL);
    assert!(matches!(garbage, Err(SignError::Csr(_))));
}

fn pem_text(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
}

#[test]
fn ttl_and_trust_domain_come_from_the_configuration() {
    let with = |ttl: Option<&str>, td: Option<&str>| ConfigurationSpec {
        mtls: Some(MtlsSpec {
            workload_cert_ttl: ttl.map(str::to_owned),
            ..MtlsSpec::default()
        }),
        access_control: Some(AccessControlSpec {
            trust_domain: td.map(str::to_owned),
            ..AccessControlSpec::default()
        }),
        ..ConfigurationSpec::default()
    };
    let cases: [(Option<&str>, Result<Duration, ()>); 5] = [
        (None, Ok(DEFAULT_WORKLOAD_TTL)),
        (Some("30s"), Ok(Duration::from_secs(30))),
        (Some("1h30m"), Ok(Duration::from_secs(5400))),
        (Some("1s"), Err(())),
        (Some("soon"), Err(())),
    ];
    for (ttl, expected) in cases {
        let got = workload_ttl(Some(&with(ttl, None))).map_err(|_| ());
        assert_eq!(got, expected, "{ttl:?}");
    }
    assert_eq!(workload_ttl(None), Ok(DEFAULT_WORKLOAD_TTL));
    let id = WorkloadIdentity::new(Some(&with(None, Some("example.org"))), "ns", "app");
    assert_eq!(id.spiffe_id(), "spiffe://example.org/ns/ns/app");
    assert_eq!(
        WorkloadIdentity::new(None, "ns", "app").spiffe_id(),
        "spiffe://public/ns/ns/app"
    );
}
