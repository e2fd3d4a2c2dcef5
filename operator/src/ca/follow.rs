//! Follows the CA's Secret after start: when its trust anchors, issuer certificate or key change
//! (a rotation by hand or by a tool such as cert-manager), the new CA replaces the one in use, so
//! the next CSR is signed by it, and the change is counted as Dapr's Sentry counts it
//! (`dapr_sentry_issuercert_changed_total`, with the new expiry). A Secret that stops holding a
//! valid CA is logged and ignored: the CA in use stays, and no running sidecar loses its trust.

use super::secret::from_secret;
use super::{ControlPlaneCa, ISSUER_CERT_KEY, ISSUER_KEY_KEY, TRUST_ANCHORS_KEY};
use crate::metrics::Metrics;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the Secret is read again.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(30);

/// The CA in use now, replaced when its Secret changes.
#[derive(Debug)]
pub struct CurrentCa {
    ca: RwLock<Arc<ControlPlaneCa>>,
}

impl CurrentCa {
    pub fn new(ca: Arc<ControlPlaneCa>) -> CurrentCa {
        CurrentCa {
            ca: RwLock::new(ca),
        }
    }

    /// The CA to sign with (a cheap clone; no lock is held afterwards).
    pub fn get(&self) -> Arc<ControlPlaneCa> {
        let guard = self
            .ca
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(&guard)
    }

    fn replace(&self, ca: Arc<ControlPlaneCa>) {
        let mut guard = self
            .ca
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = ca;
    }
}

/// A digest of the CA's three PEM parts: equal digests, same CA.
pub fn fingerprint(trust_anchors_pem: &str, issuer_pem: &str, issuer_key_pem: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (trust_anchors_pem, issuer_pem, issuer_key_pem).hash(&mut hasher);
    hasher.finish()
}

/// The digest of what a Secret holds, without parsing it (`None`: a part is missing).
pub fn secret_fingerprint(secret: &Secret) -> Option<u64> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| std::str::from_utf8(&data.get(key)?.0).ok();
    Some(fingerprint(
        text(TRUST_ANCHORS_KEY)?,
        text(ISSUER_CERT_KEY)?,
        text(ISSUER_KEY_KEY)?,
    ))
}

/// Reads Secret `namespace/name` every `interval` until `shutdown`, and replaces `current` when
/// it holds another valid CA.
pub async fn follow(
    client: kube::Client,
    namespace: String,
    name: String,
    current: Arc<CurrentCa>,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let secret = match api.get_opt(&name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                tracing::warn!(%namespace, %name, "the CA's Secret is gone; signing with the CA loaded");
                continue;
            }
            Err(error) => {
                tracing::warn!(%namespace, %name, %error, "cannot read the CA's Secret");
                continue;
            }
        };
        if secret_fingerprint(&secret) == Some(current.get().fingerprint()) {
            continue;
        }
        match from_secret(&name, &secret) {
            Ok(next) => {
                let not_after = next.issuer_not_after();
                current.replace(Arc::new(next));
                metrics.issuer_certificate_changed(not_after);
                tracing::info!(%namespace, %name, not_after, "the CA's Secret changed: signing with the new CA");
            }
            Err(error) => {
                tracing::warn!(%error, "the CA's Secret changed but holds no valid CA; signing with the CA loaded");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::sign::generate_ca;
    use k8s_openapi::ByteString;
    use std::time::SystemTime;

    fn secret(anchors: &str, issuer: &str, key: &str) -> Secret {
        let data = [
            (TRUST_ANCHORS_KEY, anchors),
            (ISSUER_CERT_KEY, issuer),
            (ISSUER_KEY_KEY, key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect();
        Secret {
            data: Some(data),
            ..Secret::default()
        }
    }

    #[test]
    fn a_secret_and_the_ca_made_from_it_have_one_fingerprint() {
        let (anchors, issuer, key) = generate_ca(SystemTime::now()).expect("CA");
        let stored = secret(&anchors, &issuer, &key);
        let loaded = from_secret("s", &stored).expect("a CA");
        assert_eq!(secret_fingerprint(&stored), Some(loaded.fingerprint()));

        let (other_anchors, other_issuer, other_key) = generate_ca(SystemTime::now()).expect("CA");
        let rotated = secret(&other_anchors, &other_issuer, &other_key);
        assert_ne!(secret_fingerprint(&rotated), Some(loaded.fingerprint()));
        let mut partial = stored.clone();
        if let Some(data) = partial.data.as_mut() {
            data.remove(ISSUER_KEY_KEY);
        }
        assert_eq!(secret_fingerprint(&partial), None);
    }

    #[test]
    fn the_current_ca_is_the_last_one_set() {
        let make = || {
            let (anchors, issuer, key) = generate_ca(SystemTime::now()).expect("CA");
            Arc::new(ControlPlaneCa::from_pem(&anchors, &issuer, &key).expect("a CA"))
        };
        let (first, second) = (make(), make());
        let current = CurrentCa::new(Arc::clone(&first));
        assert_eq!(current.get().fingerprint(), first.fingerprint());
        current.replace(Arc::clone(&second));
        assert_eq!(current.get().fingerprint(), second.fingerprint());
    }
}
