//! The standalone CA: a root key and certificate in `<data-dir>/mtls/`, created on first use by
//! whichever sidecar starts first, and the trust bundle beside it. Files are written whole to a
//! private temporary name and then hard-linked into place, which fails when the name exists: two
//! sidecars starting at once both generate, one link wins, and both read the winner's files.
//!
//! `ca.pem` holds the signing certificate and key (0600, in a 0700 directory).
//! `trust-bundle.pem` holds the roots peers are checked against; it may hold several (the old
//! and the new root while a CA is rotated), and is read again at every renewal.

use super::spiffe::SpiffeId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

const CA_FILE: &str = "ca.pem";
pub const BUNDLE_FILE: &str = "trust-bundle.pem";
/// The root's common name; the issuer name of every SVID, so it is rebuilt from this constant.
const CA_COMMON_NAME: &str = "Tandem standalone CA";
/// Dapr's self-generated roots last a year.
const CA_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start a little in the past, for clocks that disagree slightly.
pub const BACKDATE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Content { path: PathBuf, what: String },
    #[error("issuing a certificate: {0}")]
    Issue(#[from] rcgen::Error),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A CA that can sign SVIDs.
pub struct LocalCa {
    dir: PathBuf,
    key: KeyPair,
    cert: CertificateDer<'static>,
}

impl LocalCa {
    /// The CA in `dir`, created (with the trust bundle) when missing.
    pub fn ensure(dir: &Path) -> Result<LocalCa, CaError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir))?;
        let ca_path = dir.join(CA_FILE);
        if !ca_path.exists() {
            let key = KeyPair::generate()?;
            let cert = ca_params(SystemTime::now())?.self_signed(&key)?;
            let contents = format!("{}{}", cert.pem(), key.serialize_pem());
            create_exclusive(&ca_path, contents.as_bytes())?;
        }
        let bundle_path = dir.join(BUNDLE_FILE);
        if !bundle_path.exists() {
            let pem = std::fs::read_to_string(&ca_path).map_err(io_error(&ca_path))?;
            let cert_end = pem.find("-----BEGIN PRIVATE KEY-----").unwrap_or(pem.len());
            create_exclusive(&bundle_path, &pem.as_bytes()[..cert_end])?;
        }
        LocalCa::open(dir)
    }

    /// The CA in `dir` as it is (renewals: a missing CA is an error, never a new CA nobody
    /// trusts).
    pub fn open(dir: &Path) -> Result<LocalCa, CaError> {
        let ca_path = dir.join(CA_FILE);
        let pem = std::fs::read_to_string(&ca_path).map_err(io_error(&ca_path))?;
        let key = private_key_block(&pem)
            .and_then(|block| KeyPair::from_pem(block).ok())
            .ok_or_else(|| CaError::Content {
                path: ca_path.clone(),
                what: "holds no readable private key".to_owned(),
            })?;
        let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| CaError::Content {
                path: ca_path.clone(),
                what: "holds no readable certificate".to_owned(),
            })?;
        Ok(LocalCa {
            dir: dir.to_owned(),
            key,
            cert,
        })
    }

    /// The CA's own certificate (it must be in the trust bundle before it signs anything).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Signs an SVID for `id` over `key`'s public half, valid from `not_before` to `not_after`.
    pub fn issue(
        &self,
        id: &SpiffeId,
        key: &KeyPair,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<CertificateDer<'static>, CaError> {
        let issuer = Issuer::new(ca_params(not_before)?, &self.key);
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .subject_alt_names
            .push(SanType::URI(id.to_string().try_into()?));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = OffsetDateTime::from(not_before);
        params.not_after = OffsetDateTime::from(not_after);
        Ok(params.signed_by(key, &issuer)?.der().clone())
    }
}

/// The roots in a trust bundle file.
pub fn read_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let pem = std::fs::read(path).map_err(io_error(path))?;
    let roots = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError::Content {
            path: path.to_owned(),
            what: e.to_string(),
        })?;
    if roots.is_empty() {
        return Err(CaError::Content {
            path: path.to_owned(),
            what: "holds no certificate".to_owned(),
        });
    }
    Ok(roots)
}

fn ca_params(now: SystemTime) -> Result<CertificateParams, CaError> {
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

fn private_key_block(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN PRIVATE KEY-----")?;
    let end_marker = "-----END PRIVATE KEY-----";
    let end = start + pem[start..].find(end_marker)? + end_marker.len();
    Some(&pem[start..end])
}

/// Writes `contents` to `path` only if `path` does not exist, atomically: readers see no file
/// or the whole file. Losing the race to another writer is not an error.
fn create_exclusive(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    let tmp = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result.map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_privately_and_shared() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mtls = dir.path().join("mtls");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let mtls = mtls.clone();
                std::thread::spawn(move || LocalCa::ensure(&mtls).map(|ca| ca.key.serialize_pem()))
            })
            .collect();
        let keys: Vec<String> = threads
            .into_iter()
            .map(|t| t.join().expect("thread").expect("CA"))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "one CA for all");
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&mtls), 0o700);
        assert_eq!(mode(&mtls.join(CA_FILE)), 0o600);
        let leftovers = std::fs::read_dir(&mtls).expect("dir").count();
        assert_eq!(leftovers, 2, "ca.pem and the bundle, no temporary files");
        assert_eq!(
            read_bundle(&mtls.join(BUNDLE_FILE)).expect("bundle").len(),
            1
        );
    }

    #[test]
    fn issues_an_svid_with_the_uri_san() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = LocalCa::ensure(dir.path()).expect("CA");
        let id = SpiffeId::new("public", "default", "orders");
        let key = KeyPair::generate().expect("key");
        let now = SystemTime::now();
        let der = ca
            .issue(&id, &key, now, now + Duration::from_secs(60))
            .expect("issued");
        assert_eq!(SpiffeId::from_certificate(&der), Ok(id));
    }
}
