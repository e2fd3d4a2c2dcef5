//! The certificates live in a Secret so every replica serves the same one: [`ensure`] reads it,
//! creates it when absent and rotates it when due, always with optimistic concurrency (a create
//! that loses the race, or a replace on a stale resourceVersion, re-reads and adopts the winner's).

use crate::certs::{self, Certificates, Rotation, Sans};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::time::SystemTime;

pub const CA_CERT_KEY: &str = "ca.crt";
/// Not in the brief's three keys: without the CA key a rotation would need a new CA (and a new
/// caBundle everywhere), so it is stored next to them.
pub const CA_KEY_KEY: &str = "ca.key";
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";

/// How many times a lost create or replace race is retried before giving up.
const ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading Secret {namespace}/{name}: {source}")]
    Read {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing Secret {namespace}/{name}: {source}")]
    Write {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("Secret {namespace}/{name} kept changing under us ({ATTEMPTS} conflicts in a row)")]
    Contended { namespace: String, name: String },
    #[error(transparent)]
    Certs(#[from] certs::Error),
}

/// Loads the certificates from Secret `namespace/name`, creating or rotating them as needed, and
/// returns what the Secret holds afterwards.
pub async fn ensure(
    client: kube::Client,
    namespace: &str,
    name: &str,
    sans: &Sans,
) -> Result<Certificates, Error> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let read_error = |source| Error::Read {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    };
    let write_error = |source| Error::Write {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    };
    for _ in 0..ATTEMPTS {
        let now = SystemTime::now();
        match api.get_opt(name).await.map_err(read_error)? {
            None => {
                let certs = certs::generate(sans, now)?;
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        namespace: Some(namespace.to_owned()),
                        ..ObjectMeta::default()
                    },
                    type_: Some("kubernetes.io/tls".to_owned()),
                    data: Some(to_data(&certs)),
                    ..Secret::default()
                };
                match api.create(&PostParams::default(), &secret).await {
                    Ok(_) => {
                        tracing::info!(%namespace, %name, "created the webhook TLS Secret");
                        return Ok(certs);
                    }
                    Err(e) if is_conflict(&e) => continue,
                    Err(e) => return Err(write_error(e)),
                }
            }
            Some(mut secret) => {
                let current = from_secret(&secret);
                let rotation = current
                    .as_ref()
                    .map_or(Rotation::All, |c| certs::rotation(c, sans, now));
                let renewed = match (rotation, current) {
                    (Rotation::Keep, Some(current)) => return Ok(current),
                    (Rotation::ServingCert, Some(current)) => {
                        certs::reissue_serving(&current, sans, now)?
                    }
                    _ => certs::generate(sans, now)?,
                };
                let mut data = secret.data.take().unwrap_or_default();
                data.extend(to_data(&renewed));
                secret.data = Some(data);
                // `replace` sends the resourceVersion we read: a concurrent writer makes it 409.
                match api.replace(name, &PostParams::default(), &secret).await {
                    Ok(_) => {
                        tracing::info!(%namespace, %name, ?rotation, "rotated the webhook TLS Secret");
                        return Ok(renewed);
                    }
                    Err(e) if is_conflict(&e) => continue,
                    Err(e) => return Err(write_error(e)),
                }
            }
        }
    }
    Err(Error::Contended {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

/// The certificates a Secret holds, when it has all four keys as UTF-8 and the serving cert parses.
pub fn from_secret(secret: &Secret) -> Option<Certificates> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| {
        data.get(key)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    let cert_pem = text(TLS_CERT_KEY)?;
    let not_after = certs::inspect(&cert_pem, "serving").ok()?.not_after;
    Some(Certificates {
        ca_pem: text(CA_CERT_KEY)?,
        ca_key_pem: text(CA_KEY_KEY).unwrap_or_default(),
        cert_pem,
        key_pem: text(TLS_KEY_KEY)?,
        not_after,
    })
}

fn to_data(certs: &Certificates) -> BTreeMap<String, ByteString> {
    [
        (CA_CERT_KEY, &certs.ca_pem),
        (CA_KEY_KEY, &certs.ca_key_pem),
        (TLS_CERT_KEY, &certs.cert_pem),
        (TLS_KEY_KEY, &certs.key_pem),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.clone().into_bytes())))
    .collect()
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;

    #[test]
    fn secret_round_trip() {
        let certs = certs::generate(&Sans::from_names(["a"]), SystemTime::now()).unwrap();
        let secret = Secret {
            data: Some(to_data(&certs)),
            ..Secret::default()
        };
        assert_eq!(from_secret(&secret), Some(certs));
    }

    #[test]
    fn incomplete_secret_is_none() {
        let certs = certs::generate(&Sans::from_names(["a"]), SystemTime::now()).unwrap();
        let mut data = to_data(&certs);
        data.remove(TLS_KEY_KEY);
        let secret = Secret {
            data: Some(data),
            ..Secret::default()
        };
        assert_eq!(from_secret(&secret), None);
        assert_eq!(from_secret(&Secret::default()), None);
    }
}
