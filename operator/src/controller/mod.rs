//! The reconcilers and what they share. Each is a `kube::runtime::Controller`: watches feed its
//! queue, `reconcile` reads what it needs (fresh from the API, only in the object's namespace),
//! asks a pure function for the verdict or the desired Service, and writes only when that differs
//! from what is there; `error_policy` backs off per object.
//!
//! - Component, Subscription, Configuration (`validated`): a `Ready` condition, written to the
//!   status subresource by server-side apply, and an Event when the verdict changes.
//! - Deployment, StatefulSet (`workload`): the `<app-id>-dapr` headless Service they own.

mod backoff;
mod component;
mod configuration;
mod events;
mod run;
mod subscription;
mod validated;
mod workload;

pub use component::{
    KUBERNETES_SECRET_STORE, SecretIndex, component_verdict, components_reading,
    external_secret_store, referenced_secrets,
};
pub use configuration::{configuration_verdict, valid_sampling_rate};
pub use run::run;
pub use subscription::{compile_match, subscription_verdict, subscriptions_using};

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use backoff::Backoff;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::{self, Store};
use kube::{Api, Client, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
pub(crate) use validated::Validate;

/// The one field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "tandem-operator";

/// How often an object is looked at again with nothing changed (to catch drift). A look that finds
/// nothing to change writes nothing.
const RESYNC: Duration = Duration::from_secs(300);

/// A reconciled kind's `kind` label on metrics and logs.
pub(crate) trait Labelled {
    const LABEL: &'static str;
}

/// Which namespaces the operator watches: all, or one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    namespace: Option<String>,
}

impl Scope {
    /// `None`: every namespace.
    pub fn new(namespace: Option<String>) -> Scope {
        Scope { namespace }
    }

    /// Whether objects of `namespace` are in the scope.
    pub fn contains(&self, namespace: &str) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ours| ours == namespace)
    }

    /// An `Api` over the whole scope (for watches).
    pub(crate) fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match &self.namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }
}

/// Whether reconciles do their work, or only count themselves (a benchmark baseline: the same
/// watches and queues with no reads or writes behind them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reconciles {
    #[default]
    Real,
    /// Every reconcile is counted and timed, then returns `Action::await_change()` at once.
    Noop,
}

/// What every reconcile shares.
pub struct Context {
    pub(crate) client: Client,
    reconciles: Reconciles,
    pub(crate) metrics: Arc<Metrics>,
    backoff: Backoff,
    /// Held while a workload claims its `<app-id>-dapr` Service (read, decide, apply), so two
    /// workloads reconciled at once cannot both create it: one apply would replace the other's
    /// owner reference, the Service would flap. Striped by Service name, so workloads of other app
    /// ids go on in parallel.
    service_claims: Vec<tokio::sync::Mutex<()>>,
    /// The labelled `<app-id>-dapr` Services, as watched: what a workload reconcile compares with
    /// (a missing one is read fresh before it is created).
    pub(crate) services: Store<Service>,
}

/// How many claim stripes.
const CLAIM_STRIPES: usize = 64;

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Context {
        Context {
            client,
            reconciles: Reconciles::Real,
            metrics,
            backoff: Backoff::default(),
            service_claims: (0..CLAIM_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            services: reflector::store::<Service>().0,
        }
    }

    /// Reads Services from `store` (fed by a watch of the labelled Services).
    pub fn with_services(self, services: Store<Service>) -> Context {
        Context { services, ..self }
    }

    /// The claim lock of Service `namespace/name`.
    pub(crate) async fn claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (namespace, name).hash(&mut hasher);
        let stripe = usize::try_from(hasher.finish() % CLAIM_STRIPES as u64).unwrap_or_default();
        self.service_claims[stripe].lock().await
    }

    /// Whether reconciles do their work or are counted no-ops.
    pub fn with_reconciles(self, reconciles: Reconciles) -> Context {
        Context { reconciles, ..self }
    }
}

/// The namespace of a namespaced object (the apiserver always sets it).
pub(crate) fn namespace_of<K: Resource<DynamicType = ()>>(object: &K) -> Result<String> {
    object.namespace().ok_or_else(|| Error::Incomplete {
        object: describe(object),
        field: "namespace",
    })
}

/// `Kind namespace/name`, for messages and backoff keys.
pub(crate) fn describe<K: Resource<DynamicType = ()>>(object: &K) -> String {
    let namespace = object.namespace().map(|ns| format!("{ns}/"));
    format!(
        "{} {}{}",
        K::kind(&()),
        namespace.unwrap_or_default(),
        object.name_any()
    )
}

#[cfg(test)]
mod verifier_tests;
