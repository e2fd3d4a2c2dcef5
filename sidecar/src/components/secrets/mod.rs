//! Secret stores: read by the secrets API and used to resolve `secretKeyRef`s in other
//! components' metadata while they load.

pub mod env;
pub mod file;

use std::collections::BTreeMap;

/// One secret: its keys and values (most stores give one key, the secret's own name).
pub type Secret = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0}")]
    Backend(String),
}

/// A secret store. The built-in ones answer from memory or the environment, so the calls are
/// synchronous; a networked store would run its I/O before answering.
pub trait SecretStore: Send + Sync + std::fmt::Debug + 'static {
    /// The secret `name`; `None` when it does not exist.
    fn get(&self, name: &str) -> Result<Option<Secret>, SecretError>;
    /// Every secret.
    fn bulk(&self) -> Result<BTreeMap<String, Secret>, SecretError>;
}
