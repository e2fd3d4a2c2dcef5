//! `secretstores.local.env`: secrets are the sidecar's environment variables. With `prefix`, only
//! variables starting with it are visible, and names are given without it.

use super::{Secret, SecretError, SecretStore};
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct EnvStore {
    prefix: String,
}

impl EnvStore {
    pub fn new(prefix: Option<&str>) -> Self {
        EnvStore {
            prefix: prefix.unwrap_or_default().to_owned(),
        }
    }
}

impl EnvStore {
    pub fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        Ok(std::env::var(format!("{}{name}", self.prefix))
            .ok()
            .map(|v| BTreeMap::from([(name.to_owned(), v)])))
    }

    pub fn bulk(&self) -> Result<BTreeMap<String, Secret>, SecretError> {
        Ok(std::env::vars()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix(&self.prefix)?.to_owned();
                (!name.is_empty()).then(|| (name.clone(), BTreeMap::from([(name, v)])))
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl SecretStore for EnvStore {
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        EnvStore::get(self, name)
    }

    async fn bulk(&self) -> Result<BTreeMap<String, Secret>, SecretError> {
        EnvStore::bulk(self)
    }
}

/// `secretstores.local.env`'s settings.
#[derive(Debug)]
pub struct EnvSettings {
    prefix: Option<String>,
}

#[async_trait::async_trait]
impl Settings for EnvSettings {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::Secrets(Arc::new(EnvStore::new(
            self.prefix.as_deref(),
        ))))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(EnvSettings {
        prefix: md.get("prefix").map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_with_and_without_prefix() {
        // PATH exists in every test environment; no need to set variables (unsafe in 2024).
        let plain = EnvStore::new(None);
        let path = plain.get("PATH").expect("get").expect("PATH is set");
        assert!(path.contains_key("PATH"));
        assert!(
            plain
                .get("TANDEM_SURELY_UNSET_VARIABLE")
                .expect("get")
                .is_none()
        );
        let prefixed = EnvStore::new(Some("PA"));
        assert!(prefixed.get("TH").expect("get").is_some());
        assert!(prefixed.bulk().expect("bulk").contains_key("TH"));
        assert!(!prefixed.bulk().expect("bulk").contains_key("HOME"));
    }
}
