//! The secrets block: one secret or all of a store, with the Configuration's secret scopes
//! applied (a secret the scopes hide is refused, or left out of a bulk answer).

use super::Sidecar;
use super::error::{BlockError, Code};
use crate::components::registry::Lookup;
use crate::components::secrets::SecretStore;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A secret: its keys and values.
pub type Secret = BTreeMap<String, String>;

/// The secrets block of one sidecar.
pub struct SecretsBlock<'a> {
    sidecar: &'a Sidecar,
}

impl Sidecar {
    pub fn secrets(&self) -> SecretsBlock<'_> {
        SecretsBlock { sidecar: self }
    }
}

impl SecretsBlock<'_> {
    fn lookup(&self, store: &str) -> Result<Arc<dyn SecretStore>, BlockError> {
        self.sidecar
            .registry()
            .secrets(store)
            .map(Arc::clone)
            .map_err(|why| match why {
                Lookup::NoneConfigured => BlockError::new(
                    Code::SecretStoresNotConfigured,
                    "secret store is not configured",
                ),
                Lookup::NotFound => BlockError::new(
                    Code::SecretStoreNotFound,
                    format!("failed finding secret store with key {store}"),
                ),
                Lookup::NotReady(status) => BlockError::new(
                    Code::SecretGet,
                    format!("secret store {store} is not ready: {status:?}"),
                ),
            })
    }

    /// Whether the Configuration's secret scopes let the app read `key` from `store`.
    fn allowed(&self, store: &str, key: &str) -> bool {
        let config = self.sidecar.config();
        let scopes = config
            .secrets
            .as_ref()
            .map(|s| s.scopes.as_slice())
            .unwrap_or_default();
        scopes
            .iter()
            .filter(|s| s.store_name == store)
            .all(|s| s.allows(key))
    }

    pub async fn get(&self, store: &str, key: &str) -> Result<Secret, BlockError> {
        let secrets = self.lookup(store)?;
        if !self.allowed(store, key) {
            return Err(BlockError::new(
                Code::SecretPermissionDenied,
                format!("access denied by policy to get {key:?} from {store:?}"),
            ));
        }
        let started = std::time::Instant::now();
        let answer = secrets.get(key).await;
        self.sidecar
            .metrics()
            .components()
            .secret(store, "get", answer.is_ok(), started.elapsed());
        match answer {
            Ok(Some(secret)) => Ok(secret),
            Ok(None) => Err(BlockError::new(
                Code::SecretGet,
                format!(
                    "failed getting secret with key {key} from secret store {store}: secret not found"
                ),
            )),
            Err(e) => Err(BlockError::new(
                Code::SecretGet,
                format!("failed getting secret with key {key} from secret store {store}: {e}"),
            )),
        }
    }

    /// Every secret of `store` the scopes allow.
    pub async fn bulk(&self, store: &str) -> Result<BTreeMap<String, Secret>, BlockError> {
        let secrets = self.lookup(store)?;
        let started = std::time::Instant::now();
        let all = secrets.bulk().await;
        self.sidecar.metrics().components().secret(
            store,
            "bulk_get",
            all.is_ok(),
            started.elapsed(),
        );
        let all = all.map_err(|e| {
            BlockError::new(
                Code::SecretGet,
                format!("failed getting secrets from secret store {store}: {e}"),
            )
        })?;
        Ok(all
            .into_iter()
            .filter(|(name, _)| self.allowed(store, name))
            .collect())
    }
}
