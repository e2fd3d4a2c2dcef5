//! What the injector tells each sidecar about its control plane, as Dapr's does: the trust
//! anchors (`DAPR_TRUST_ANCHORS`, PEM), the control plane's namespace and trust domain
//! (`DAPR_CONTROLPLANE_NAMESPACE`, `DAPR_CONTROLPLANE_TRUST_DOMAIN`), from which the sidecar
//! knows the operator's SPIFFE ID and verifies it over TLS. The anchors come from the ConfigMap the
//! operator publishes (key `ca.crt`; never the CA Secret, which holds the signing key), read at
//! start (every second until they are there; the injector is not ready before) and every
//! [`FOLLOW_INTERVAL`] after. While they are unknown no sidecar is injected: one that could not
//! verify its control plane is worse than a pod that waits.

use crate::patch::PatchError;
use k8s_openapi::api::core::v1::{ConfigMap, EnvVar};
use kube::Api;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tandem_crds::annotations::{defaults, env};
use tokio_util::sync::CancellationToken;

/// How often the ConfigMap is read again.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(30);
/// How often it is read until the first anchors are there (the operator may be starting).
const FIRST_INTERVAL: Duration = Duration::from_secs(1);
/// The ConfigMap's key (Dapr's).
pub const ANCHORS_KEY: &str = "ca.crt";

/// The flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    /// The ConfigMap (in the injector's namespace, the control plane's) holding the trust
    /// anchors; "" injects none (sidecars then reach the operator over plain HTTP).
    #[arg(
        long,
        env = "TANDEM_INJECTOR_TRUST_ANCHORS_CONFIGMAP",
        default_value = ""
    )]
    pub trust_anchors_configmap: String,
    /// The control plane's trust domain (the operator's `--control-plane-trust-domain`).
    #[arg(
        long,
        env = "TANDEM_INJECTOR_CONTROL_PLANE_TRUST_DOMAIN",
        default_value = defaults::CONTROL_PLANE_TRUST_DOMAIN
    )]
    pub control_plane_trust_domain: String,
}

/// The control plane as sidecars must verify it, and the anchors known now.
#[derive(Debug, Clone, Default)]
pub struct ControlPlaneTrust {
    /// Where the anchors are read (`None`: none are passed).
    pub configmap: Option<String>,
    pub namespace: String,
    pub trust_domain: String,
    anchors: Arc<RwLock<Option<String>>>,
}

impl ControlPlaneTrust {
    pub fn new(args: TrustArgs, namespace: &str) -> ControlPlaneTrust {
        ControlPlaneTrust {
            configmap: Some(args.trust_anchors_configmap).filter(|c| !c.is_empty()),
            namespace: namespace.to_owned(),
            trust_domain: args.control_plane_trust_domain,
            anchors: Arc::default(),
        }
    }

    /// The anchors known now.
    pub fn anchors(&self) -> Option<String> {
        self.anchors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Returns once sidecars can be injected: the anchors are known, or none are needed.
    pub async fn ready(&self) {
        while self.configmap.is_some() && self.anchors().is_none() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Replaces the anchors; whether they changed.
    pub fn set_anchors(&self, anchors: String) -> bool {
        let mut current = self.anchors.write().unwrap_or_else(|p| p.into_inner());
        let changed = current.as_deref() != Some(anchors.as_str());
        *current = Some(anchors);
        changed
    }

    /// The sidecar's env: nothing without a ConfigMap; the anchors, namespace and trust domain
    /// with one; an error while the anchors are unknown.
    pub fn env_vars(&self) -> Result<Vec<EnvVar>, PatchError> {
        let Some(configmap) = &self.configmap else {
            return Ok(Vec::new());
        };
        let anchors = self.anchors().ok_or_else(|| PatchError::NoTrustAnchors {
            namespace: self.namespace.clone(),
            configmap: configmap.clone(),
        })?;
        let var = |name: &str, value: &str| EnvVar {
            name: name.to_owned(),
            value: Some(value.to_owned()),
            ..EnvVar::default()
        };
        Ok(vec![
            var(env::DAPR_TRUST_ANCHORS, &anchors),
            var(env::DAPR_CONTROLPLANE_NAMESPACE, &self.namespace),
            var(env::DAPR_CONTROLPLANE_TRUST_DOMAIN, &self.trust_domain),
        ])
    }
}

/// The anchors a ConfigMap holds (a PEM certificate, at least).
pub fn anchors_of(map: &ConfigMap) -> Option<String> {
    map.data
        .as_ref()?
        .get(ANCHORS_KEY)
        .filter(|pem| pem.contains("-----BEGIN CERTIFICATE-----"))
        .cloned()
}

/// Reads the ConfigMap now and every `interval` until `shutdown`, keeping `trust`'s anchors
/// current (nothing to do without a ConfigMap). A missing or unreadable ConfigMap keeps the
/// anchors known.
pub async fn follow(
    client: kube::Client,
    trust: ControlPlaneTrust,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let Some(name) = trust.configmap.clone() else {
        return;
    };
    let api: Api<ConfigMap> = Api::namespaced(client, &trust.namespace);
    loop {
        match api.get_opt(&name).await {
            Ok(Some(map)) => match anchors_of(&map) {
                Some(anchors) => {
                    if trust.set_anchors(anchors) {
                        tracing::info!(configmap = %name, "trust anchors for sidecars loaded");
                    }
                }
                None => tracing::warn!(configmap = %name, "the ConfigMap holds no {ANCHORS_KEY}"),
            },
            Ok(None) => {
                tracing::warn!(configmap = %name, "no trust anchors yet: the operator publishes them")
            }
            Err(error) => {
                tracing::warn!(%error, configmap = %name, "cannot read the trust anchors")
            }
        }
        let wait = if trust.anchors().is_some() {
            interval
        } else {
            FIRST_INTERVAL.min(interval)
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn trust(configmap: &str) -> ControlPlaneTrust {
        let args = TrustArgs {
            trust_anchors_configmap: configmap.to_owned(),
            control_plane_trust_domain: "cluster.local".to_owned(),
        };
        ControlPlaneTrust::new(args, "tandem-system")
    }

    #[test]
    fn env_is_the_anchors_namespace_and_trust_domain() {
        assert_eq!(trust("").env_vars(), Ok(Vec::new()));
        let waiting = trust("tandem-trust-bundle");
        assert!(matches!(
            waiting.env_vars(),
            Err(PatchError::NoTrustAnchors { .. })
        ));
        assert!(waiting.set_anchors(PEM.to_owned()));
        assert!(!waiting.set_anchors(PEM.to_owned()));
        let vars: Vec<(String, Option<String>)> = waiting
            .env_vars()
            .expect("env")
            .into_iter()
            .map(|v| (v.name, v.value))
            .collect();
        assert_eq!(
            vars,
            [
                ("DAPR_TRUST_ANCHORS".to_owned(), Some(PEM.to_owned())),
                (
                    "DAPR_CONTROLPLANE_NAMESPACE".to_owned(),
                    Some("tandem-system".to_owned())
                ),
                (
                    "DAPR_CONTROLPLANE_TRUST_DOMAIN".to_owned(),
                    Some("cluster.local".to_owned())
                ),
            ]
        );
    }

    #[test]
    fn only_a_pem_under_ca_crt_counts() {
        let map = |key: &str, value: &str| ConfigMap {
            data: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
            ..ConfigMap::default()
        };
        assert_eq!(anchors_of(&map("ca.crt", PEM)).as_deref(), Some(PEM));
        assert_eq!(anchors_of(&map("ca.crt", "")), None);
        assert_eq!(anchors_of(&map("tls.crt", PEM)), None);
        assert_eq!(anchors_of(&ConfigMap::default()), None);
    }
}
