use super::*;
use crate::security::metrics::SecurityMetrics;
use rcgen::{BasicConstraints, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, PublicKeyData};
use time::OffsetDateTime;

/// A CA of the test's own, as the control plane would hold one.
struct TestCa {
    issuer: rcgen::Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> TestCa {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).expect("root").pem();
        TestCa {
            issuer: rcgen::Issuer::new(params, key),
            pem,
        }
    }

    /// What the control plane answers: a certificate for `key`'s public half naming `uri`.
    fn answer(&self, uri: &str, key: &KeyPair, ttl: Duration) -> CertificateResponse {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .subject_alt_names
            .push(SanType::URI(uri.to_owned().try_into().expect("uri")));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = SystemTime::now();
        params.not_before = OffsetDateTime::from(now - BACKDATE);
        params.not_after = OffsetDateTime::from(now + ttl);
        let cert = params.signed_by(key, &self.issuer).expect("signed");
        CertificateResponse {
            workload_certificate: cert.pem(),
            trust_anchors: self.pem.clone(),
            spiffe_id: uri.to_owned(),
        }
    }
}

const URI: &str = "spiffe://public/ns/shop/order";

fn order() -> SpiffeId {
    SpiffeId::new("public", "shop", "order")
}

#[test]
fn the_answer_for_this_identity_is_accepted_and_the_ca_decides_the_lifetime() {
    let (ca, key) = (TestCa::new(), KeyPair::generate().expect("key"));
    let issued = SystemTime::now();
    let material = accept(
        &ca.answer(URI, &key, Duration::from_secs(6)),
        &order(),
        &key,
        issued,
        None,
    )
    .expect("accepted");
    let life = material
        .not_after
        .duration_since(issued)
        .expect("in the future");
    // The certificate's own notAfter (whole seconds), not anything the sidecar asked for.
    assert!(
        life <= Duration::from_secs(6) && life >= Duration::from_secs(4),
        "{life:?}"
    );
    assert_eq!(material.roots.len(), 1);
}

#[test]
fn another_identity_is_refused() {
    let (ca, key) = (TestCa::new(), KeyPair::generate().expect("key"));
    for uri in [
        "spiffe://public/ns/shop/payment",
        "spiffe://public/ns/other/order",
        "spiffe://evil/ns/shop/order",
    ] {
        let refused = accept(
            &ca.answer(uri, &key, Duration::from_secs(60)),
            &order(),
            &key,
            SystemTime::now(),
            None,
        );
        assert!(
            matches!(refused, Err(IdentityError::Mismatch { ref got, .. }) if got == uri),
            "{uri}: {:?}",
            refused.err()
        );
    }
}

#[test]
fn a_certificate_for_another_key_or_from_another_ca_is_refused() {
    let (ca, key) = (TestCa::new(), KeyPair::generate().expect("key"));
    let other_key = KeyPair::generate().expect("key");
    let for_other_key = accept(
        &ca.answer(URI, &other_key, Duration::from_secs(60)),
        &order(),
        &key,
        SystemTime::now(),
        None,
    );
    assert!(
        matches!(for_other_key, Err(IdentityError::Tls(_))),
        "{:?}",
        for_other_key.err()
    );
    let mut foreign = TestCa::new().answer(URI, &key, Duration::from_secs(60));
    foreign.trust_anchors = ca.pem.clone();
    let unanchored = accept(&foreign, &order(), &key, SystemTime::now(), None);
    assert!(
        matches!(unanchored, Err(IdentityError::Certificate(ref m)) if m.contains("trust anchors")),
        "{:?}",
        unanchored.err()
    );
    let mut empty = ca.answer(URI, &key, Duration::from_secs(60));
    empty.workload_certificate = String::new();
    assert!(matches!(
        accept(&empty, &order(), &key, SystemTime::now(), None),
        Err(IdentityError::Certificate(_))
    ));
}

#[test]
fn the_csr_carries_the_key_and_the_expected_identity() {
    let key = KeyPair::generate().expect("key");
    let pem = certificate_request(&order(), &key).expect("csr");
    let der = rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM CSR");
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(der.as_ref())
            .expect("a valid CSR");
    let spki = csr.certification_request_info.subject_pki.raw;
    assert_eq!(spki, key.subject_public_key_info());
    let names: Vec<String> = csr
        .requested_extensions()
        .into_iter()
        .flatten()
        .filter_map(|ext| match ext {
            x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) => Some(san),
            _ => None,
        })
        .flat_map(|san| san.general_names.iter())
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => Some(uri.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(names, [URI]);
}

#[tokio::test]
async fn a_local_ca_missing_from_the_bundle_signs_nothing() {
    let (ours, other) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    LocalCa::ensure(ours.path()).expect("CA");
    LocalCa::ensure(other.path()).expect("another CA");
    std::fs::copy(
        other.path().join(BUNDLE_FILE),
        ours.path().join(BUNDLE_FILE),
    )
    .expect("replace the bundle");
    let metrics = SecurityMetrics::new(&prometheus::Registry::new()).expect("metrics");
    let refused = crate::security::identity::Workload::start(
        order(),
        Issuer::Local(ours.path().to_owned()),
        Duration::from_secs(100),
        metrics,
    )
    .await;
    assert!(
        matches!(refused, Err(IdentityError::Bundle(ref m)) if m.contains("not in")),
        "{:?}",
        refused.err()
    );
}

#[test]
fn with_injected_anchors_the_answer_must_chain_to_them_not_to_anchors_it_brings() {
    let (ca, rogue, key) = (
        TestCa::new(),
        TestCa::new(),
        KeyPair::generate().expect("key"),
    );
    let operator = SpiffeId::new("cluster.local", "tandem", "tandem-operator");
    let injected = ControlPlaneTrust::new(&ca.pem, operator).expect("anchors");
    let genuine = ca.answer(URI, &key, Duration::from_secs(60));
    assert!(accept(&genuine, &order(), &key, SystemTime::now(), Some(&injected)).is_ok());
    // A rogue CA's certificate, with the rogue CA as its own "trust anchors": consistent in
    // itself, refused because the sidecar was told which anchors to trust.
    let forged = rogue.answer(URI, &key, Duration::from_secs(60));
    assert!(accept(&forged, &order(), &key, SystemTime::now(), None).is_ok());
    let refused = accept(&forged, &order(), &key, SystemTime::now(), Some(&injected));
    assert!(
        matches!(refused, Err(IdentityError::Certificate(ref m)) if m.contains("injected trust anchors") && m.contains("unknown CA")),
        "{:?}",
        refused.err()
    );
}
