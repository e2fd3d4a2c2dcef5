//! The CA's Secret, made once for all replicas: [`ensure`] reads it, and only when it is absent
//! generates a CA and creates it. A create that loses the race (409) re-reads and adopts the
//! winner's, so replicas starting together end with one CA. An existing Secret is never
//! overwritten: a Secret that is not a CA is an error to fix, not a reason to mint a new root
//! that every running sidecar would distrust.

use super::sign::generate_ca;
use super::{CaError, ControlPlaneCa, ISSUER_CERT_KEY, ISSUER_KEY_KEY, TRUST_ANCHORS_KEY};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The default name of the CA's Secret (Dapr's is `dapr-trust-bundle`).
pub const CA_SECRET_NAME: &str = "tandem-trust-bundle";

/// Lost create races retried before giving up (one is enough unless the Secret is being deleted).
const ATTEMPTS: usize = 5;

/// The CA in Secret `namespace/name`, created when absent.
pub async fn ensure(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> Result<ControlPlaneCa, CaError> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let kube_error = |source| CaError::Kube {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    };
    for _ in 0..ATTEMPTS {
        if let Some(secret) = api.get_opt(name).await.map_err(kube_error)? {
            return from_secret(name, &secret);
        }
        let (anchors, issuer, key) = generate_ca(SystemTime::now())?;
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(to_data(&anchors, &issuer, &key)),
            ..Secret::default()
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(created) => {
                tracing::info!(%namespace, %name, "created the control-plane CA");
                return from_secret(name, &created);
            }
            // Another replica created it first: read theirs.
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => return Err(kube_error(e)),
        }
    }
    Err(CaError::Contended {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

/// The CA a Secret holds.
pub fn from_secret(name: &str, secret: &Secret) -> Result<ControlPlaneCa, CaError> {
    let content = |what: String| CaError::Content {
        name: name.to_owned(),
        what,
    };
    let data = secret.data.as_ref();
    let text = |key: &str| {
        data.and_then(|d| d.get(key))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .ok_or_else(|| content(format!("no UTF-8 key {key}")))
    };
    ControlPlaneCa::from_pem(
        &text(TRUST_ANCHORS_KEY)?,
        &text(ISSUER_CERT_KEY)?,
        &text(ISSUER_KEY_KEY)?,
    )
    .map_err(content)
}

fn to_data(anchors: &str, issuer: &str, key: &str) -> BTreeMap<String, ByteString> {
    [
        (TRUST_ANCHORS_KEY, anchors),
        (ISSUER_CERT_KEY, issuer),
        (ISSUER_KEY_KEY, key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_ca_round_trips_through_its_secret() {
        let (anchors, issuer, key) = generate_ca(SystemTime::now()).expect("CA");
        let secret = Secret {
            data: Some(to_data(&anchors, &issuer, &key)),
            ..Secret::default()
        };
        let ca = from_secret("s", &secret).expect("a CA");
        assert_eq!(ca.trust_anchors_pem(), anchors);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let a_year_on = now + 365 * 24 * 3600;
        assert!(
            (ca.issuer_not_after() - a_year_on).abs() < 120,
            "{} vs {a_year_on}",
            ca.issuer_not_after()
        );
    }

    #[test]
    fn an_incomplete_or_foreign_secret_is_refused() {
        let (anchors, issuer, key) = generate_ca(SystemTime::now()).expect("CA");
        let mut data = to_data(&anchors, &issuer, &key);
        data.remove(ISSUER_KEY_KEY);
        let partial = Secret {
            data: Some(data),
            ..Secret::default()
        };
        assert!(from_secret("s", &partial).is_err());
        let (other_anchors, _, _) = generate_ca(SystemTime::now()).expect("another CA");
        let foreign = Secret {
            data: Some(to_data(&other_anchors, &issuer, &key)),
            ..Secret::default()
        };
        let refused = from_secret("s", &foreign)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("not among the trust anchors")),
            "{refused:?}"
        );
    }
}
