//! `kubernetes`: the built-in secret store of Kubernetes mode. It reads the Secrets of the pod's
//! namespace through the operator (`tandem_crds::control_plane::secrets_path`), which checks the
//! pod's token and applies the pod's Configuration secret scopes; the sidecar's secrets API applies
//! them again. The sidecar itself needs no Kubernetes API access.

use super::{Secret, SecretError, SecretStore};
use crate::components::factory::{Instance, Settings};
use crate::control_plane::{ControlPlane, ControlPlaneError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The store's component name and type, as in Dapr.
pub const NAME: &str = tandem_crds::annotations::defaults::KUBERNETES_SECRET_STORE;
pub const TYPE: &str = "secretstores.kubernetes";

#[derive(Debug)]
pub struct KubernetesSecretStore {
    control_plane: ControlPlane,
}

impl KubernetesSecretStore {
    pub fn new(control_plane: ControlPlane) -> KubernetesSecretStore {
        KubernetesSecretStore { control_plane }
    }
}

fn backend(error: ControlPlaneError) -> SecretError {
    SecretError::Backend(error.to_string())
}

#[async_trait::async_trait]
impl SecretStore for KubernetesSecretStore {
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        self.control_plane.secret(name).await.map_err(backend)
    }

    async fn bulk(&self) -> Result<BTreeMap<String, Secret>, SecretError> {
        self.control_plane.secrets().await.map_err(backend)
    }
}

/// The built-in store's settings: the operator client that serves it.
#[derive(Debug)]
pub struct KubernetesSettings(pub ControlPlane);

#[async_trait::async_trait]
impl Settings for KubernetesSettings {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::Secrets(Arc::new(KubernetesSecretStore::new(
            self.0.clone(),
        ))))
    }
}
