//! What the sidecar API reads: the process's shared caches of the dapr.io kinds (Component,
//! Configuration, Subscription; see `crate::cache`), over the operator's scope, and a change counter
//! that every watch event bumps, so each open stream knows when to look again. They run on every
//! replica, leader or not: all of them serve sidecars.

use super::resources::{Resources, Wanted, resources_for};
use crate::cache::Caches;
use kube::runtime::reflector::{self, Store};
use tandem_crds::{Component, Configuration, Subscription};
use tokio::sync::watch;

/// Read access to the cached resources.
#[derive(Clone)]
pub struct Index {
    components: Store<Component>,
    configurations: Store<Configuration>,
    subscriptions: Store<Subscription>,
    changes: watch::Receiver<u64>,
}

impl Index {
    /// The index over `caches` (kept current by whoever started them).
    pub fn new(caches: &Caches) -> Index {
        Index {
            components: caches.components.store(),
            configurations: caches.configurations.store(),
            subscriptions: caches.subscriptions.store(),
            changes: caches.ticks(),
        }
    }

    /// Waits until every kind has been listed once.
    pub async fn ready(&self) -> bool {
        let (a, b, c) = tokio::join!(
            crate::cache::ready(&self.components),
            crate::cache::ready(&self.configurations),
            crate::cache::ready(&self.subscriptions),
        );
        a && b && c
    }

    /// Ticks whenever a cached object is added, changed or deleted.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// The Configuration `name` of `namespace`, if cached.
    pub fn configuration(&self, namespace: &str, name: &str) -> Option<Configuration> {
        self.configurations
            .get(&reflector::ObjectRef::new(name).within(namespace))
            .map(|c| c.as_ref().clone())
    }

    /// What `wanted` may see now, secrets not yet resolved.
    pub fn resources(&self, wanted: &Wanted<'_>) -> Resources {
        let components = self.components.state();
        let configurations = self.configurations.state();
        let subscriptions = self.subscriptions.state();
        resources_for(
            wanted,
            components.iter().map(AsRef::as_ref),
            configurations.iter().map(AsRef::as_ref),
            subscriptions.iter().map(AsRef::as_ref),
        )
    }
}
