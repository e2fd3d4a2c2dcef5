//! Secret stores: read by the secrets API and used to resolve `secretKeyRef`s in other
//! components' metadata while they load.

pub mod env;
pub mod file;
pub mod kubernetes;

use std::collections::BTreeMap;

/// One secret: its keys and values (most stores give one key, the secret's own name).
pub type Secret = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0}")]
    Backend(String),
}

/// A secret store. The local ones answer at once (so `secretKeyRef`s can be resolved through them
/// while components are planned); the `kubernetes` one asks the operator.
#[async_trait::async_trait]
pub trait SecretStore: Send + Sync + std::fmt::Debug + 'static {
    /// The secret `name`; `None` when it does not exist.
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretError>;
    /// Every secret.
    async fn bulk(&self) -> Result<BTreeMap<String, Secret>, SecretError>;
}
