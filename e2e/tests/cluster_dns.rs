//! The test cluster's DNS against a real kube-apiserver: Services and Endpoints created through the
//! API become A records, a headless Service resolves to its ready endpoint addresses, and changes
//! show once the TTL runs out — resolved with the sidecar's own Kubernetes-mode resolver.

use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tandem_e2e::cluster_dns::ClusterDns;
use tandem_envtest::{TestEnv, eventually};
use tandem_sidecar::resolve::Resolver;
use tandem_sidecar::resolve::dns::{DnsResolver, Nameservers};

async fn addresses(resolver: &DnsResolver, app_id: &str, namespace: &str) -> BTreeSet<IpAddr> {
    let mut seen = BTreeSet::new();
    for _ in 0..8 {
        if let Ok(addr) = resolver.resolve(app_id, Some(namespace)).await {
            seen.insert(addr.ip());
        }
    }
    seen
}

fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter().map(|ip| ip.parse().expect("ip")).collect()
}

#[tokio::test]
async fn headless_services_resolve_to_their_ready_endpoints_and_follow_changes() {
    let env = TestEnv::start().await;
    let ns = env.namespace().to_owned();
    let dns = ClusterDns::start(env.client(), "cluster.local", 1)
        .await
        .expect("dns");
    let resolver = DnsResolver::new(
        &Nameservers::Server(dns.addr()),
        &ns,
        "cluster.local",
        50002,
    )
    .expect("resolver");
    let services = env.namespaced::<Service>();
    let headless = serde_json::from_value(json!({
        "metadata": {"name": "catalog-dapr"},
        "spec": {"clusterIP": "None", "selector": {"app": "catalog"}, "ports": [{"name": "dapr-internal", "port": 50002}]}
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &headless)
        .await
        .expect("create service");
    let endpoints = |addresses: &[&str]| -> Endpoints {
        let addresses: Vec<_> = addresses.iter().map(|ip| json!({"ip": ip})).collect();
        serde_json::from_value(json!({
            "metadata": {"name": "catalog-dapr"},
            "subsets": [{"addresses": addresses, "notReadyAddresses": [{"ip": "10.9.9.9"}], "ports": [{"name": "dapr-internal", "port": 50002}]}]
        }))
        .expect("endpoints")
    };
    let api = env.namespaced::<Endpoints>();
    api.create(
        &PostParams::default(),
        &endpoints(&["10.1.0.1", "10.1.0.2", "10.1.0.3"]),
    )
    .await
    .expect("create endpoints");
    let three = ips(&["10.1.0.1", "10.1.0.2", "10.1.0.3"]);
    eventually("three pods in DNS", Duration::from_secs(30), || async {
        (addresses(&resolver, "catalog", &ns).await == three).then_some(())
    })
    .await;
    assert_eq!(
        resolver
            .resolve("catalog", Some(&ns))
            .await
            .expect("resolves")
            .port(),
        50002
    );

    // A pod goes away: its address leaves DNS once the record's TTL has run out.
    let mut current = api.get("catalog-dapr").await.expect("get");
    current.subsets = endpoints(&["10.1.0.1", "10.1.0.3"]).subsets;
    api.replace("catalog-dapr", &PostParams::default(), &current)
        .await
        .expect("replace");
    let two = ips(&["10.1.0.1", "10.1.0.3"]);
    eventually("the pod to leave DNS", Duration::from_secs(30), || async {
        (addresses(&resolver, "catalog", &ns).await == two).then_some(())
    })
    .await;

    // The Service goes: the name does not resolve any more.
    services
        .delete("catalog-dapr", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the name to go", Duration::from_secs(30), || async {
        resolver
            .resolve("catalog", Some(&ns))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    let _: SocketAddr = dns.addr();
}
