//! What the operator holds of the cluster, and how little: one watch and one store per kind
//! ([`Shared`]), whoever reads it, with each object trimmed to what its readers use before it is
//! stored. The dapr.io kinds ([`Caches`]) are read by the controllers (while leading) and by the
//! sidecar API (always), so they live as long as the process; Services and workloads only by the
//! controllers.

mod shared;
mod workload;

pub use shared::Shared;
pub use workload::TrimmedWorkload;

use crate::controller::Scope;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, Resource};
use tandem_crds::{Component, Configuration, Subscription};
use tokio::sync::watch;

/// The annotation `kubectl apply` leaves: a copy of the whole object, read by nobody here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what no reader of a cached object looks at: managedFields (often the largest part of a
/// small object) and kubectl's last-applied copy of it.
pub fn trim_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// A dapr.io object as cached: what the controllers judge and what sidecars are sent (which
/// never had managedFields; annotations, kubectl's included, are sent as they are).
pub fn trim_resource<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// A labelled `<app-id>-dapr` Service as cached: what a workload reconcile compares and deletes
/// by (identity, owners, labels, annotations, cluster IP, selector, ports); the status and the
/// other spec fields the apiserver defaults are dropped.
pub fn trim_service(service: &mut Service) {
    trim_meta(&mut service.metadata);
    service.status = None;
    service.spec = service.spec.take().map(|spec| ServiceSpec {
        cluster_ip: spec.cluster_ip,
        selector: spec.selector,
        ports: spec.ports,
        ..ServiceSpec::default()
    });
}

/// How often [`ready`] looks at a store again.
const READY_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Waits until `store` has been listed once; false when its writer is gone. A store wakes only
/// the latest of the tasks waiting on it, and shared stores have many (each controller's runner,
/// each subscriber, the sidecar API, readiness), so this looks again now and then rather than wait
/// once.
pub async fn ready<K>(store: &Store<K>) -> bool
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    loop {
        let waited = tokio::time::timeout(READY_POLL, store.wait_until_ready()).await;
        if let Ok(outcome) = waited {
            return outcome.is_ok();
        }
    }
}

/// A watch that starts from the API server's watch cache (`resourceVersion=0`, as client-go's
/// informers list): no read through etcd and no paging for the first list, so the caches fill and
/// the first reconcile starts sooner; the watch then brings anything newer.
pub fn list_from_cache() -> watcher::Config {
    watcher::Config::default().any_semantic()
}

/// The dapr.io kinds, one store each, and a counter every change of any of them bumps.
#[derive(Clone)]
pub struct Caches {
    pub components: Shared<Component>,
    pub configurations: Shared<Configuration>,
    pub subscriptions: Shared<Subscription>,
    ticks: watch::Receiver<u64>,
}

impl Caches {
    /// The caches over `scope` and the future that keeps them current (run it for as long as
    /// they are read).
    pub fn start(client: &Client, scope: &Scope) -> (Caches, BoxFuture<'static, ()>) {
        let (ticked, ticks) = watch::channel(0_u64);
        let config = list_from_cache;
        let (components, feed_components) = Shared::start(
            scope.api::<Component>(client),
            config(),
            trim_resource::<Component>,
            Some(ticked.clone()),
        );
        let (configurations, feed_configurations) = Shared::start(
            scope.api::<Configuration>(client),
            config(),
            trim_resource::<Configuration>,
            Some(ticked.clone()),
        );
        let (subscriptions, feed_subscriptions) = Shared::start(
            scope.api::<Subscription>(client),
            config(),
            trim_resource::<Subscription>,
            Some(ticked),
        );
        let feeding = async move {
            tokio::join!(feed_components, feed_configurations, feed_subscriptions);
        };
        let caches = Caches {
            components,
            configurations,
            subscriptions,
            ticks,
        };
        (caches, feeding.boxed())
    }

    /// Ticks whenever a cached object is added, changed or deleted, or a kind is listed again.
    pub fn ticks(&self) -> watch::Receiver<u64> {
        self.ticks.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use std::collections::BTreeMap;

    fn meta(annotations: &[(&str, &str)]) -> ObjectMeta {
        let annotations: BTreeMap<_, _> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ObjectMeta {
            name: Some("a".to_owned()),
            annotations: Some(annotations),
            managed_fields: Some(vec![ManagedFieldsEntry::default()]),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn trimming_metadata_drops_managed_fields_and_the_last_applied_copy_only() {
        let cases = [
            (vec![(LAST_APPLIED, "{}")], None),
            (
                vec![(LAST_APPLIED, "{}"), ("dapr.io/app-id", "x")],
                Some(vec!["dapr.io/app-id"]),
            ),
            (vec![("team", "a")], Some(vec!["team"])),
        ];
        for (annotations, kept) in cases {
            let mut trimmed = meta(&annotations);
            trim_meta(&mut trimmed);
            assert_eq!(trimmed.managed_fields, None);
            assert_eq!(trimmed.name.as_deref(), Some("a"));
            let keys = trimmed
                .annotations
                .map(|a| a.keys().map(|k| k.to_string()).collect::<Vec<_>>());
            let kept = kept.map(|k| k.iter().map(|k| k.to_string()).collect::<Vec<_>>());
            assert_eq!(keys, kept, "{annotations:?}");
        }
    }

    #[test]
    fn a_trimmed_service_keeps_what_the_workload_reconcile_compares() {
        let ports = vec![ServicePort {
            name: Some("dapr-http".to_owned()),
            port: 80,
            ..ServicePort::default()
        }];
        let selector = BTreeMap::from([("app".to_owned(), "a".to_owned())]);
        let mut service = Service {
            metadata: meta(&[("dapr.io/app-id", "a")]),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".to_owned()),
                cluster_ips: Some(vec!["None".to_owned()]),
                selector: Some(selector.clone()),
                ports: Some(ports.clone()),
                session_affinity: Some("None".to_owned()),
                type_: Some("ClusterIP".to_owned()),
                ..ServiceSpec::default()
            }),
            status: Some(ServiceStatus::default()),
        };
        trim_service(&mut service);
        assert_eq!(service.status, None);
        assert_eq!(service.metadata.managed_fields, None);
        let expected = ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(selector),
            ports: Some(ports),
            ..ServiceSpec::default()
        };
        assert_eq!(service.spec, Some(expected));
        let annotations = service.metadata.annotations.expect("kept");
        assert_eq!(annotations["dapr.io/app-id"], "a");
    }
}
