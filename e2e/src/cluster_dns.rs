//! Cluster DNS for tests, as CoreDNS's `kubernetes` plugin answers it: `<service>.<namespace>.svc.
//! <cluster-domain>` is the Service's cluster IP, or for a headless Service the ready addresses of
//! its Endpoints (so `<app-id>-dapr` resolves to the pods of the app). It watches Services and
//! Endpoints through the real API server and serves real DNS on a loopback UDP port (the sidecar
//! crate's DNS server, whose records it keeps current).

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tandem_testkit::dns_server::DnsServer;
use tokio::sync::Notify;

/// The A records the cluster's Services and Endpoints call for.
pub fn records(
    services: &[Arc<Service>],
    endpoints: &[Arc<Endpoints>],
    cluster_domain: &str,
) -> BTreeMap<String, Vec<Ipv4Addr>> {
    let mut out = BTreeMap::new();
    for service in services {
        let (Some(name), Some(namespace)) = (&service.metadata.name, &service.metadata.namespace)
        else {
            continue;
        };
        let cluster_ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
        let ips: Vec<Ipv4Addr> = match cluster_ip {
            Some("None") => endpoints
                .iter()
                .filter(|e| e.metadata.name.as_ref() == Some(name))
                .filter(|e| e.metadata.namespace.as_ref() == Some(namespace))
                .flat_map(|e| e.subsets.iter().flatten())
                .flat_map(|subset| subset.addresses.iter().flatten())
                .filter_map(|address| address.ip.parse().ok())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            Some(ip) => ip.parse().ok().into_iter().collect(),
            None => Vec::new(),
        };
        if !ips.is_empty() {
            out.insert(format!("{name}.{namespace}.svc.{cluster_domain}"), ips);
        }
    }
    out
}

/// A running cluster DNS; stops when dropped.
pub struct ClusterDns {
    server: Arc<DnsServer>,
    task: tokio::task::JoinHandle<()>,
}

impl ClusterDns {
    /// Serves the names of every namespace's Services with `ttl`-second records on a free
    /// loopback port.
    pub async fn start(
        client: Client,
        cluster_domain: &str,
        ttl: u32,
    ) -> std::io::Result<ClusterDns> {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        ClusterDns::start_on(loopback, client, cluster_domain, ttl).await
    }

    /// [`ClusterDns::start`] answering on `addr` (the test node's bridge address, port 53, for
    /// pods whose resolv.conf names it).
    pub async fn start_on(
        addr: SocketAddr,
        client: Client,
        cluster_domain: &str,
        ttl: u32,
    ) -> std::io::Result<ClusterDns> {
        let server = Arc::new(DnsServer::start_on(addr, ttl).await?);
        let changed = Arc::new(Notify::new());
        let services = reflect(Api::<Service>::all(client.clone()), Arc::clone(&changed));
        let endpoints = reflect(Api::<Endpoints>::all(client), Arc::clone(&changed));
        let (domain, dns) = (cluster_domain.to_owned(), Arc::clone(&server));
        let task = tokio::spawn(async move {
            let (services, feed_services) = services;
            let (endpoints, feed_endpoints) = endpoints;
            let serving = async move {
                let mut current: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
                loop {
                    changed.notified().await;
                    let next = records(&services.state(), &endpoints.state(), &domain);
                    for gone in current.keys().filter(|name| !next.contains_key(*name)) {
                        dns.set(gone, &[]);
                    }
                    for (name, ips) in &next {
                        dns.set(name, ips);
                    }
                    current = next;
                }
            };
            tokio::join!(feed_services, feed_endpoints, serving);
        });
        Ok(ClusterDns { server, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

impl Drop for ClusterDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Feed = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

fn reflect<K>(api: Api<K>, changed: Arc<Notify>) -> (Store<K>, Feed)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let feed = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .for_each(move |_| {
            changed.notify_one();
            std::future::ready(())
        });
    (reader, Box::pin(feed))
}
