//! Sidecars in `--mode kubernetes`, as real processes, fed by the operator's real sidecar API over a
//! real kube-apiserver: Pods, ServiceAccount tokens (TokenRequest, verified by TokenReview),
//! Components and Secrets applied with kubectl. Peers are found through DNS (a DNS server on
//! loopback answering `<app-id>-dapr.<ns>.svc.cluster.local`); each sidecar's internal port listens
//! on its own "pod IP" (127.0.0.2, 127.0.0.3), all on the same port number, as in a cluster.
//!
//! The whole path — Deployments, the injector, pods in network namespaces, cluster DNS from
//! Endpoints — is `kubernetes_cluster.rs`; this one isolates the sidecar ↔ operator contract.
//! `mtls` adds the operator's CA: certificates for pods, mTLS between their sidecars, over a sidecar
//! API that serves TLS the sidecars verify (`verified_control_plane`: the refusals).

mod mtls;
mod support;
mod verified_control_plane;

use serde_json::json;
use std::net::Ipv4Addr;
use std::time::Duration;
use support::{AppPod, env_with_crds, kubernetes_sidecar, operator_api, pod, start, token_file};
use tandem_e2e::sidecar_http::SidecarClient;
use tandem_envtest::eventually;
use tandem_sidecar::testing::echo_app::EchoApp;
use tandem_testkit::dns_server::DnsServer;
use tandem_testkit::free_port;

const REACT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn sidecars_load_from_the_operator_find_peers_by_dns_and_follow_component_changes() {
    let env = env_with_crds().await;
    let http = SidecarClient::new();
    let ns = env.namespace().to_owned();
    env.kubectl_apply(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: app-secret}
stringData: {password: s3cret}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec: {type: state.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: orders}
spec: {type: pubsub.in-memory, version: v1}
scopes: [order]
---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: appconfig}
spec: {}
"#,
    )
    .await
    .expect("kubectl apply");
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = operator_api(env.client(), None).await;
    let dns = DnsServer::start(5).await.expect("dns");
    let (order_ip, catalog_ip) = (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3));
    dns.set(
        &format!("catalog-dapr.{ns}.svc.cluster.local"),
        &[catalog_ip],
    );
    dns.set(&format!("order-dapr.{ns}.svc.cluster.local"), &[order_ip]);
    let internal_port = free_port();
    let order_pod = pod(&env, "order-1", "order").await;
    let catalog_pod = pod(&env, "catalog-1", "catalog").await;
    let order_token = token_file(&env, &order_pod, dir.path()).await;
    let catalog_token = token_file(&env, &catalog_pod, dir.path()).await;
    let (order_app, catalog_app) = (EchoApp::start().await, EchoApp::start().await);
    let catalog = AppPod {
        app_id: "catalog",
        pod_name: "catalog-1",
        pod_ip: catalog_ip,
        namespace: &ns,
        token: &catalog_token,
        app_port: catalog_app.port,
        config: "appconfig",
    };
    let catalog = start(kubernetes_sidecar(
        &catalog,
        &operator,
        &dns,
        internal_port,
        dir.path(),
    ))
    .await;
    let order = AppPod {
        app_id: "order",
        pod_name: "order-1",
        pod_ip: order_ip,
        namespace: &ns,
        token: &order_token,
        app_port: order_app.port,
        config: "appconfig",
    };
    let order = start(kubernetes_sidecar(
        &order,
        &operator,
        &dns,
        internal_port,
        dir.path(),
    ))
    .await;
    // No CA in this control plane, so no anchors: the sidecar says it cannot verify it.
    assert!(
        order.log().contains("the control plane is NOT verified"),
        "{}",
        order.log()
    );

    // Each gets its namespace's components in its scope, plus the built-in kubernetes store.
    assert_eq!(
        http.component_names(&order.url("")).await,
        ["kubernetes", "orders", "statestore"]
    );
    assert_eq!(
        http.component_names(&catalog.url("")).await,
        ["kubernetes", "statestore"]
    );

    // order → catalog by app id, through DNS to catalog's pod IP.
    let (status, echoed) = http
        .call(
            reqwest::Method::POST,
            &order.url("/v1.0/invoke/catalog/method/items"),
            Some(json!({"id": 7})),
        )
        .await;
    assert_eq!(status, 200, "{echoed}\norder log:\n{}", order.log());
    assert!(
        catalog_app.seen().iter().any(|s| s.uri.ends_with("/items")),
        "catalog's app got the call"
    );
    // ... and the same with the namespace spelled out.
    let (status, _) = http
        .call(
            reqwest::Method::POST,
            &order.url(&format!("/v1.0/invoke/catalog.{ns}/method/items")),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);

    // State and the Kubernetes secret store work through the sidecar.
    let (status, _) = http
        .call(
            reqwest::Method::POST,
            &order.url("/v1.0/state/statestore"),
            Some(json!([{"key": "k", "value": "v"}])),
        )
        .await;
    assert_eq!(status, 204);
    let (status, secret) = http
        .call(
            reqwest::Method::GET,
            &order.url("/v1.0/secrets/kubernetes/app-secret"),
            None,
        )
        .await;
    assert_eq!(
        (status, secret["password"].as_str()),
        (200, Some("s3cret")),
        "{secret}"
    );

    // An app id nobody has: ERR_DIRECT_INVOKE, never a hang.
    http.invoke_unknown_app(&order.url(""), REACT).await;

    // An address that refuses connections (a pod gone) is skipped, and a POST with a body is sent
    // again to the next address: small bodies are buffered for that.
    dns.set(
        "catalog-dapr.elsewhere.svc.cluster.local",
        &[Ipv4Addr::new(127, 0, 0, 9), catalog_ip],
    );
    for n in 0..4 {
        let (status, answer) = http
            .call(
                reqwest::Method::POST,
                &order.url("/v1.0/invoke/catalog.elsewhere/method/retried"),
                Some(json!({"n": n})),
            )
            .await;
        assert_eq!(status, 200, "call {n}: {answer}");
    }
    let retried: Vec<_> = catalog_app
        .seen()
        .into_iter()
        .filter(|s| s.uri.ends_with("/retried"))
        .collect();
    assert_eq!(retried.len(), 4, "each call reached catalog once");

    // A Component added for `order` only, then edited: picked up without a restart; catalog never sees it.
    let pids = (order.pid(), catalog.pid());
    env.kubectl_apply("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: cache}\nspec: {type: state.in-memory, version: v1}\nscopes: [order]\n")
        .await
        .expect("apply");
    eventually("order to load cache", REACT, || async {
        http.component_names(&order.url(""))
            .await
            .contains(&"cache".to_owned())
            .then_some(())
    })
    .await;
    let (status, _) = http
        .call(
            reqwest::Method::POST,
            &order.url("/v1.0/state/cache"),
            Some(json!([{"key": "a", "value": 1}])),
        )
        .await;
    assert_eq!(status, 204, "the new store serves");
    let (status, value) = http
        .call(
            reqwest::Method::GET,
            &order.url("/v1.0/state/statestore/k"),
            None,
        )
        .await;
    assert_eq!(
        (status, value),
        (200, json!("v")),
        "an unchanged store kept its data"
    );
    assert!(
        !http
            .component_names(&catalog.url(""))
            .await
            .contains(&"cache".to_owned())
    );
    env.kubectl_apply("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: cache}\nspec: {type: state.in-memory, version: v1}\nscopes: [catalog]\n")
        .await
        .expect("apply");
    eventually("cache to move from order to catalog", REACT, || async {
        let (o, c) = (
            http.component_names(&order.url("")).await,
            http.component_names(&catalog.url("")).await,
        );
        (!o.contains(&"cache".to_owned()) && c.contains(&"cache".to_owned())).then_some(())
    })
    .await;
    // An input binding edited: its reader moves to the new instance (events now go to the new
    // route), without a restart.
    let cron = |route: &str| {
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: ticker}}\nspec:\n  type: bindings.cron\n  version: v1\n  metadata:\n    - {{name: schedule, value: \"@every 1s\"}}\n    - {{name: direction, value: input}}\n    - {{name: route, value: {route}}}\nscopes: [catalog]\n"
        )
    };
    let ticks = |path: &'static str| {
        let seen = catalog_app.seen();
        move || {
            seen.iter()
                .any(|s| s.method == "POST" && s.uri.ends_with(path))
                .then_some(())
        }
    };
    env.kubectl_apply(&cron("/tick")).await.expect("apply");
    eventually(
        "catalog's app to get cron events on /tick",
        REACT,
        || async { ticks("/tick")() },
    )
    .await;
    env.kubectl_apply(&cron("/tock")).await.expect("apply");
    eventually(
        "catalog's app to get cron events on /tock",
        REACT,
        || async { ticks("/tock")() },
    )
    .await;

    // The Configuration edited: the sidecars use the new one (here its features) without a restart.
    env.kubectl_apply("apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: appconfig}\nspec: {features: [{name: Resiliency, enabled: true}]}\n")
        .await
        .expect("apply");
    for sidecar in [&order, &catalog] {
        eventually("the edited Configuration to be in use", REACT, || async {
            let (_, metadata) = http
                .call(reqwest::Method::GET, &sidecar.url("/v1.0/metadata"), None)
                .await;
            (metadata["enabledFeatures"] == json!(["Resiliency"])).then_some(())
        })
        .await;
    }

    assert_eq!((order.pid(), catalog.pid()), pids, "no sidecar restarted");
}
