//! Sidecars in `--mode kubernetes`, as real processes, fed by the operator's real sidecar API over a
//! real kube-apiserver: Pods, ServiceAccount tokens (TokenRequest, verified by TokenReview),
//! Components and Secrets applied with kubectl. Peers are found through DNS (a DNS server on
//! loopback answering `<app-id>-dapr.<ns>.svc.cluster.local`); each sidecar's internal port listens
//! on its own "pod IP" (127.0.0.2, 127.0.0.3), all on the same port number, as in a cluster.
//!
//! The whole path — Deployments, the injector, pods in network namespaces, cluster DNS from
//! Endpoints — is `kubernetes_cluster.rs`; this one isolates the sidecar ↔ operator contract.

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tandem_e2e::sidecar_http::SidecarClient;
use tandem_envtest::{TestEnv, eventually};
use tandem_operator::controller::Scope;
use tandem_operator::metrics::Metrics;
use tandem_operator::sidecar_api::{self, SidecarApi, TOKEN_AUDIENCE};
use tandem_sidecar::testing::echo_app::EchoApp;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tandem_testkit::dns_server::DnsServer;
use tandem_testkit::free_port;
use tokio_util::sync::CancellationToken;

const REACT: Duration = Duration::from_secs(30);

async fn env_with_crds() -> TestEnv {
    let env = TestEnv::start().await;
    env.install_crds(&tandem_crds::crd::all())
        .await
        .expect("the CRDs install");
    env
}

/// A Dapr-enabled Pod object for `app_id`, running as ServiceAccount `app`.
async fn pod(env: &TestEnv, name: &str, app_id: &str) -> Pod {
    let accounts: Api<ServiceAccount> = env.namespaced();
    let account = serde_json::from_value(json!({"metadata": {"name": "app"}})).expect("sa");
    let _ = accounts.create(&PostParams::default(), &account).await;
    let pod = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"dapr.io/enabled": "true", "dapr.io/app-id": app_id, "dapr.io/config": "appconfig"}},
        "spec": {"serviceAccountName": "app", "automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "app:1"}]}
    }))
    .expect("pod");
    env.namespaced::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

/// A pod-bound token for the operator's audience, written where the sidecar reads it.
async fn token_file(env: &TestEnv, pod: &Pod, dir: &Path) -> String {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![TOKEN_AUDIENCE.into()],
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            expiration_seconds: Some(3600),
        },
        ..TokenRequest::default()
    };
    let accounts: Api<ServiceAccount> = env.namespaced();
    let issued = accounts
        .create_token_request("app", &PostParams::default(), &request)
        .await
        .expect("token request");
    let path = dir.join(format!(
        "{}.token",
        pod.metadata.name.clone().unwrap_or_default()
    ));
    std::fs::write(&path, issued.status.expect("token").token).expect("write token");
    path.to_string_lossy().into_owned()
}

struct Operator {
    address: String,
    shutdown: CancellationToken,
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn operator_api(client: kube::Client) -> Operator {
    let shutdown = CancellationToken::new();
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (api, feeding) = SidecarApi::new(
        client,
        Scope::new(None),
        TOKEN_AUDIENCE,
        metrics,
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    tokio::spawn(sidecar_api::serve(api, feeding, listener));
    Operator { address, shutdown }
}

/// One app's pod: its sidecar in Kubernetes mode on `pod_ip`, and the app.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site per app, each argument named there"
)]
async fn start_sidecar(
    app_id: &str,
    pod_name: &str,
    pod_ip: Ipv4Addr,
    namespace: &str,
    internal_port: u16,
    operator: &Operator,
    token: &str,
    dns: &DnsServer,
    app_port: u16,
    dir: &Path,
) -> Sidecar {
    let builder = SidecarBuilder::new(
        &tandem_e2e::binaries::sidecar().to_string_lossy(),
        app_id,
        dir,
    )
    .app_port(app_port)
    .internal_port(internal_port)
    .env("NAMESPACE", namespace)
    .env("POD_NAME", pod_name)
    .env("POD_IP", &pod_ip.to_string())
    .arg("--mode")
    .arg("kubernetes")
    .arg("--config")
    .arg("appconfig")
    .arg("--control-plane-address")
    .arg(&operator.address)
    .arg("--control-plane-token-file")
    .arg(token)
    .arg("--dns-server")
    .arg(&dns.addr().to_string());
    // `start` polls with blocking calls; the operator serves on this runtime meanwhile.
    tokio::task::spawn_blocking(move || builder.start())
        .await
        .expect("the sidecar starts")
}

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
    let operator = operator_api(env.client()).await;
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
    let catalog = start_sidecar(
        "catalog",
        "catalog-1",
        catalog_ip,
        &ns,
        internal_port,
        &operator,
        &catalog_token,
        &dns,
        catalog_app.port,
        dir.path(),
    )
    .await;
    let order = start_sidecar(
        "order",
        "order-1",
        order_ip,
        &ns,
        internal_port,
        &operator,
        &order_token,
        &dns,
        order_app.port,
        dir.path(),
    )
    .await;

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
