use super::*;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::time::SystemTime;
use time::OffsetDateTime;

const OPERATOR: &str = "spiffe://cluster.local/ns/tandem/tandem-operator";

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca() -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key).expect("root").pem();
    Ca {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// A server certificate naming `uri`, valid from `from` to `to` (seconds from now).
fn leaf(ca: &Ca, uri: &str, from: i64, to: i64) -> CertificateDer<'static> {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .subject_alt_names
        .push(SanType::URI(uri.to_owned().try_into().expect("uri")));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let at = |s: i64| OffsetDateTime::from(SystemTime::now()) + time::Duration::seconds(s);
    params.not_before = at(from);
    params.not_after = at(to);
    params
        .signed_by(&key, &ca.issuer)
        .expect("signed")
        .der()
        .clone()
}

fn trust(ca: &Ca) -> ControlPlaneTrust {
    let operator = SpiffeId::parse(OPERATOR).expect("id");
    ControlPlaneTrust::new(&ca.pem, operator).expect("anchors")
}

#[test]
fn only_the_operator_identity_from_the_anchors_ca_is_accepted() {
    let (ours, theirs) = (ca(), ca());
    let trust = trust(&ours);
    let now = UnixTime::now();
    let cases = [
        ("the operator", leaf(&ours, OPERATOR, -60, 3600), None),
        (
            "a workload of the same CA",
            leaf(&ours, "spiffe://public/ns/tandem/order", -60, 3600),
            Some("wrong identity"),
        ),
        (
            "the operator's id in another trust domain",
            leaf(
                &ours,
                "spiffe://public/ns/tandem/tandem-operator",
                -60,
                3600,
            ),
            Some("wrong identity"),
        ),
        (
            "another CA",
            leaf(&theirs, OPERATOR, -60, 3600),
            Some("unknown CA"),
        ),
        (
            "expired",
            leaf(&ours, OPERATOR, -7200, -3600),
            Some("expired"),
        ),
    ];
    for (case, cert, refused) in cases {
        let checked = trust.check_server(&cert, &[], now).map_err(|e| explain(&e));
        match refused {
            None => assert!(checked.is_ok(), "{case}: {checked:?}"),
            Some(reason) => assert!(
                checked.as_ref().is_err_and(|e| e.contains(reason)),
                "{case}: {checked:?} should say {reason:?}"
            ),
        }
    }
}

#[test]
fn anchors_need_the_namespace_and_must_be_certificates() {
    let args = |anchors: Option<&str>, namespace: Option<&str>| ControlPlaneTrustArgs {
        trust_anchors: anchors.map(str::to_owned),
        control_plane_namespace: namespace.map(str::to_owned),
        control_plane_trust_domain: "cluster.local".to_owned(),
    };
    assert!(matches!(
        ControlPlaneTrust::from_args(&args(None, None)),
        Ok(None)
    ));
    assert!(matches!(
        ControlPlaneTrust::from_args(&args(Some(" "), None)),
        Ok(None)
    ));
    let pem = ca().pem;
    let missing = ControlPlaneTrust::from_args(&args(Some(&pem), None));
    assert!(missing.is_err_and(|e| e.contains("DAPR_CONTROLPLANE_NAMESPACE")));
    let garbage = ControlPlaneTrust::from_args(&args(Some("not pem"), Some("tandem")));
    assert!(garbage.is_err_and(|e| e.contains("DAPR_TRUST_ANCHORS")));
    let trust = ControlPlaneTrust::from_args(&args(Some(&pem), Some("tandem")))
        .expect("valid")
        .expect("some");
    assert_eq!(trust.operator().to_string(), OPERATOR);
}

#[test]
fn a_tls_error_inside_an_io_error_is_found_and_explained() {
    let tls = Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
    let found = tls_refusal(&io);
    assert!(found.is_some_and(|m| m.contains("unknown CA")));
    let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    assert_eq!(tls_refusal(&plain), None);
}

#[test]
fn a_refused_handshake_leaves_its_reason_for_the_failed_request() {
    let (ours, theirs) = (ca(), ca());
    let trust = trust(&ours);
    let auth = OperatorAuth(trust.clone());
    let name = ServerName::try_from("tandem-api").expect("name");
    let refused = auth.verify_server_cert(
        &leaf(&theirs, OPERATOR, -60, 3600),
        &[],
        &name,
        &[],
        UnixTime::now(),
    );
    assert!(refused.is_err());
    assert!(
        trust
            .take_refusal()
            .is_some_and(|r| r.contains("unknown CA"))
    );
    assert_eq!(trust.take_refusal(), None, "taken once");
    let accepted = auth.verify_server_cert(
        &leaf(&ours, OPERATOR, -60, 3600),
        &[],
        &name,
        &[],
        UnixTime::now(),
    );
    assert!(accepted.is_ok());
    assert_eq!(trust.take_refusal(), None);
}
