//! Finding a peer sidecar's internal address by app id. Standalone mode reads a registry of
//! files on this machine ([`local`]); Kubernetes mode resolves
//! `<app-id>-dapr.<namespace>.svc.<cluster-domain>` through DNS ([`dns`]) behind the same trait.

pub mod dns;
pub mod local;

use async_trait::async_trait;
use std::net::SocketAddr;

/// Why a peer could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("app id {0} is not registered on this machine")]
    NotFound(String),
    #[error("name resolution failed: {0}")]
    Failed(String),
}

/// Resolves app ids to internal sidecar addresses.
#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// One address for the app (spreading calls over all instances).
    async fn resolve(
        &self,
        app_id: &str,
        namespace: Option<&str>,
    ) -> Result<SocketAddr, ResolveError>;

    /// Forgets a cached address that refused a connection, so the next call re-resolves.
    fn forget(&self, app_id: &str, addr: SocketAddr);
}
