//! The operator's own cache of what sidecars are sent: a reflector per kind (Component,
//! Configuration, Subscription) over the operator's scope, and a change counter that every watch
//! event bumps, so each open stream knows when to look again. It runs on every replica, leader or
//! not: all of them serve sidecars.

use super::resources::{Resources, Wanted, resources_for};
use crate::controller::Scope;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use tandem_crds::{Component, Configuration, Subscription};
use tokio::sync::watch;
use tracing::Instrument;

/// Read access to the cached resources.
#[derive(Clone)]
pub struct Index {
    components: Store<Component>,
    configurations: Store<Configuration>,
    subscriptions: Store<Subscription>,
    changes: watch::Receiver<u64>,
}

impl Index {
    /// The index and the future that keeps it current (run it for as long as the index is used).
    pub fn start(client: &Client, scope: &Scope) -> (Index, BoxFuture<'static, ()>) {
        let (changed, changes) = watch::channel(0_u64);
        let (components, feed_components) = reflect::<Component>(client, scope, changed.clone());
        let (configurations, feed_configurations) =
            reflect::<Configuration>(client, scope, changed.clone());
        let (subscriptions, feed_subscriptions) = reflect::<Subscription>(client, scope, changed);
        let feeding = async move {
            tokio::join!(feed_components, feed_configurations, feed_subscriptions);
        };
        let index = Index {
            components,
            configurations,
            subscriptions,
            changes,
        };
        (index, feeding.boxed())
    }

    /// Waits until every kind has been listed once.
    pub async fn ready(&self) -> bool {
        let (a, b, c) = tokio::join!(
            self.components.wait_until_ready(),
            self.configurations.wait_until_ready(),
            self.subscriptions.wait_until_ready(),
        );
        a.is_ok() && b.is_ok() && c.is_ok()
    }

    /// Ticks whenever a cached object is added, changed or deleted.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
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

/// A reflector over `scope` for `K`, and the future that feeds it, bumping `changed` on every event.
fn reflect<K>(
    client: &Client,
    scope: &Scope,
    changed: watch::Sender<u64>,
) -> (Store<K>, BoxFuture<'static, ()>)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let events = watcher(scope.api::<K>(client), watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    let kind = K::kind(&()).into_owned();
    let feeding = events
        .for_each(move |event| {
            match event {
                // Objects listed during a (re)list arrive one by one; look once the list is whole.
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => changed.send_modify(|n| *n = n.wrapping_add(1)),
                Err(error) => tracing::warn!(%error, "watch failed; retrying with backoff"),
            }
            std::future::ready(())
        })
        .instrument(tracing::info_span!("sidecar_api_watch", %kind));
    (reader, feeding.boxed())
}
