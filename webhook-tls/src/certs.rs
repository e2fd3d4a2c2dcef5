//! Pure certificate work: issue a CA and a serving certificate, read them back, and decide when
//! they must be renewed. No I/O; `now` is always passed in.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

/// How long the CA is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a serving certificate is valid.
pub const SERVING_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start being valid this long before `now`, for clocks that lag ours.
const BACKDATE: Duration = Duration::from_secs(3600);
/// The CA's subject. It is fixed so that a serving certificate re-issued from the stored CA key
/// names exactly the subject of the stored CA certificate, and chains to it.
const CA_COMMON_NAME: &str = "tandem webhook CA";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot issue a certificate: {0}")]
    Issue(#[from] rcgen::Error),
    #[error("the {what} PEM is not a certificate")]
    NotACertificate { what: &'static str },
    #[error("the {what} certificate cannot be parsed: {message}")]
    Parse { what: &'static str, message: String },
}

/// The names a serving certificate must carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sans {
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

impl Sans {
    /// Splits names into DNS names and IP addresses (a name that parses as an IP is an IP).
    pub fn from_names<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Sans {
        let mut sans = Sans::default();
        for name in names {
            let name = name.as_ref().trim();
            if name.is_empty() {
                continue;
            }
            match name.parse::<IpAddr>() {
                Ok(ip) => sans.ip_addresses.push(ip),
                Err(_) => sans.dns_names.push(name.to_owned()),
            }
        }
        sans
    }

    fn as_set(&self) -> BTreeSet<String> {
        let dns = self.dns_names.iter().map(|d| d.to_ascii_lowercase());
        let ips = self.ip_addresses.iter().map(|ip| ip.to_string());
        dns.chain(ips).collect()
    }
}

/// A CA and the serving certificate it signed, as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificates {
    pub ca_pem: String,
    /// The CA's private key; kept so the serving certificate can be re-issued under the same CA
    /// (the webhook's caBundle then stays valid). Empty when the Secret did not carry one.
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// When the serving certificate expires.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private keys.
        f.debug_struct("Certificates")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// What has to be renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Everything is valid for long enough and names the wanted SANs.
    Keep,
    /// Re-issue the serving certificate under the existing CA.
    ServingCert,
    /// A new CA and a new serving certificate.
    All,
}

/// A fresh CA (10 years) and a serving certificate for `sans` (1 year), ECDSA P-256.
pub fn generate(sans: &Sans, now: SystemTime) -> Result<Certificates, Error> {
    let ca_key = KeyPair::generate()?;
    issue_serving(sans, &ca_key, ca_params(now)?, now)
}

/// A new serving certificate under the CA of `current` (whose key must be present).
pub fn reissue_serving(
    current: &Certificates,
    sans: &Sans,
    now: SystemTime,
) -> Result<Certificates, Error> {
    let ca_key = KeyPair::from_pem(&current.ca_key_pem)?;
    let mut reissued = issue_serving(sans, &ca_key, ca_params(now)?, now)?;
    reissued.ca_pem = current.ca_pem.clone();
    Ok(reissued)
}

fn ca_params(now: SystemTime) -> Result<CertificateParams, Error> {
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
    Ok(params)
}

fn issue_serving(
    sans: &Sans,
    ca_key: &KeyPair,
    ca_params: CertificateParams,
    now: SystemTime,
) -> Result<Certificates, Error> {
    let ca_pem = ca_params.self_signed(ca_key)?.pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    let common_name = sans
        .dns_names
        .first()
        .map_or("tandem webhook", String::as_str);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    for dns in &sans.dns_names {
        params
            .subject_alt_names
            .push(SanType::DnsName(dns.clone().try_into()?));
    }
    for ip in &sans.ip_addresses {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let not_after = now + SERVING_VALIDITY;
    params.not_before = OffsetDateTime::from(now - BACKDATE);
    params.not_after = OffsetDateTime::from(not_after);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Certificates {
        ca_pem,
        ca_key_pem: ca_key.serialize_pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after: truncate_to_seconds(not_after),
    })
}

/// What a certificate says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub sans: Sans,
}

/// Reads validity and SANs from the first certificate in `pem`.
pub fn inspect(pem: &str, what: &'static str) -> Result<CertInfo, Error> {
    let parse = |message: String| Error::Parse { what, message };
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|_| Error::NotACertificate { what })?;
    let cert = pem.parse_x509().map_err(|e| parse(e.to_string()))?;
    let mut sans = Sans::default();
    if let Some(extension) = cert
        .subject_alternative_name()
        .map_err(|e| parse(e.to_string()))?
    {
        for name in &extension.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => {
                    sans.dns_names.push((*dns).to_owned())
                }
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        sans.ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let validity = cert.validity();
    Ok(CertInfo {
        not_before: system_time(validity.not_before.timestamp()),
        not_after: system_time(validity.not_after.timestamp()),
        sans,
    })
}

/// Whether anything has to be renewed: see [`rotation`].
pub fn needs_rotation(certs: &Certificates, wanted: &Sans, now: SystemTime) -> bool {
    rotation(certs, wanted, now) != Rotation::Keep
}

/// A certificate is renewed when less than a third of its life is left, when it cannot be read,
/// or (the serving one) when its SANs differ from the wanted ones. The CA is renewed only when it
/// is itself near expiry, unreadable, or its key is missing.
pub fn rotation(certs: &Certificates, wanted: &Sans, now: SystemTime) -> Rotation {
    let ca_ok = !certs.ca_key_pem.trim().is_empty()
        && KeyPair::from_pem(&certs.ca_key_pem).is_ok()
        && inspect(&certs.ca_pem, "CA").is_ok_and(|ca| has_life_left(&ca, now));
    if !ca_ok {
        return Rotation::All;
    }
    let serving_ok = KeyPair::from_pem(&certs.key_pem).is_ok()
        && inspect(&certs.cert_pem, "serving").is_ok_and(|serving| {
            has_life_left(&serving, now) && serving.sans.as_set() == wanted.as_set()
        });
    if serving_ok {
        Rotation::Keep
    } else {
        Rotation::ServingCert
    }
}

fn has_life_left(info: &CertInfo, now: SystemTime) -> bool {
    let Ok(life) = info.not_after.duration_since(info.not_before) else {
        return false;
    };
    match info.not_after.duration_since(now) {
        Ok(left) => left > life / 3,
        Err(_) => false,
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn system_time(unix_seconds: i64) -> SystemTime {
    match u64::try_from(unix_seconds) {
        Ok(secs) => SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

fn truncate_to_seconds(at: SystemTime) -> SystemTime {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn sans() -> Sans {
        Sans::from_names(["svc", "svc.ns.svc", "127.0.0.1"])
    }

    #[test]
    fn generates_a_ca_and_a_serving_cert_with_the_sans() {
        let now = SystemTime::now();
        let certs = generate(&sans(), now).unwrap();
        let serving = inspect(&certs.cert_pem, "serving").unwrap();
        assert_eq!(serving.sans, sans());
        let left = serving.not_after.duration_since(now).unwrap();
        assert!(left > 364 * DAY && left <= 365 * DAY, "{left:?}");
        assert_eq!(certs.not_after, serving.not_after);
        let ca = inspect(&certs.ca_pem, "CA").unwrap();
        assert!(ca.not_after.duration_since(now).unwrap() > 3649 * DAY);
        assert_eq!(rotation(&certs, &sans(), now), Rotation::Keep);
    }

    #[test]
    fn sans_split_ips_from_names_and_compare_as_sets() {
        let a = Sans::from_names(["b", "::1", "a", " ", "10.0.0.1"]);
        assert_eq!(a.dns_names, ["b", "a"]);
        assert_eq!(a.ip_addresses.len(), 2);
        let b = Sans::from_names(["10.0.0.1", "A", "::1", "b"]);
        assert_eq!(a.as_set(), b.as_set());
    }

    #[test]
    fn rotation_decisions() {
        let now = SystemTime::now();
        let certs = generate(&sans(), now).unwrap();
        let cases = [
            ("fresh", certs.clone(), sans(), now, Rotation::Keep),
            (
                "at 60% of the serving life",
                certs.clone(),
                sans(),
                now + 219 * DAY,
                Rotation::Keep,
            ),
            (
                "at 70% of the serving life",
                certs.clone(),
                sans(),
                now + 256 * DAY,
                Rotation::ServingCert,
            ),
            (
                "serving expired",
                certs.clone(),
                sans(),
                now + 400 * DAY,
                Rotation::ServingCert,
            ),
            (
                "CA near expiry",
                certs.clone(),
                sans(),
                now + 2500 * DAY,
                Rotation::All,
            ),
            (
                "extra SAN wanted",
                certs.clone(),
                Sans::from_names(["svc", "svc.ns.svc", "127.0.0.1", "x"]),
                now,
                Rotation::ServingCert,
            ),
            (
                "SAN dropped",
                certs.clone(),
                Sans::from_names(["svc"]),
                now,
                Rotation::ServingCert,
            ),
            (
                "garbage serving cert",
                Certificates {
                    cert_pem: "garbage".into(),
                    ..certs.clone()
                },
                sans(),
                now,
                Rotation::ServingCert,
            ),
            (
                "garbage serving key",
                Certificates {
                    key_pem: "garbage".into(),
                    ..certs.clone()
                },
                sans(),
                now,
                Rotation::ServingCert,
            ),
            (
                "no CA key",
                Certificates {
                    ca_key_pem: String::new(),
                    ..certs.clone()
                },
                sans(),
                now,
                Rotation::All,
            ),
            (
                "garbage CA",
                Certificates {
                    ca_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
                    ..certs.clone()
                },
                sans(),
                now,
                Rotation::All,
            ),
        ];
        for (name, certs, wanted, at, expected) in cases {
            assert_eq!(rotation(&certs, &wanted, at), expected, "{name}");
            assert_eq!(
                needs_rotation(&certs, &wanted, at),
                expected != Rotation::Keep,
                "{name}"
            );
        }
    }

    #[test]
    fn reissue_keeps_the_ca_and_chains_to_it() {
        let now = SystemTime::now();
        let certs = generate(&sans(), now).unwrap();
        let later = now + 300 * DAY;
        let wanted = Sans::from_names(["other"]);
        let reissued = reissue_serving(&certs, &wanted, later).unwrap();
        assert_eq!(reissued.ca_pem, certs.ca_pem);
        assert_eq!(reissued.ca_key_pem, certs.ca_key_pem);
        assert_ne!(reissued.cert_pem, certs.cert_pem);
        assert_eq!(rotation(&reissued, &wanted, later), Rotation::Keep);
        // The re-issued certificate names the stored CA as its issuer.
        let (_, ca) = x509_parser::pem::parse_x509_pem(certs.ca_pem.as_bytes()).unwrap();
        let ca = ca.parse_x509().unwrap();
        let (_, leaf) = x509_parser::pem::parse_x509_pem(reissued.cert_pem.as_bytes()).unwrap();
        let leaf = leaf.parse_x509().unwrap();
        assert_eq!(leaf.issuer(), ca.subject());
    }

    #[test]
    fn debug_never_prints_keys() {
        let certs = generate(&sans(), SystemTime::now()).unwrap();
        assert!(!format!("{certs:?}").contains("PRIVATE"));
    }
}
