//! T15 against a real kube-apiserver: the injector runs in-process on free loopback ports and a
//! MutatingWebhookConfiguration points the API server at it (`clientConfig.url`), with
//! failurePolicy Ignore and a namespace opt-out label. One test, run in order, because the
//! webhook configuration is cluster-wide.

#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

mod common;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;
use tandem_envtest::{TestEnv, eventually};
use tokio_util::sync::CancellationToken;

const OPT_OUT: &str = "tandem.io/injection";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pod(name: &str, dapr: bool) -> Pod {
    let annotations = if dapr {
        json!({"dapr.io/enabled": "true", "dapr.io/app-id": "shop"})
    } else {
        json!({})
    };
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"automountServiceAccountToken": false, "containers": [{"name": "app", "image": "shop:1"}]},
    }))
    .unwrap()
}

fn has_sidecar(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .any(|c| c.name == "daprd")
}

/// Namespace `name` with a `default` ServiceAccount (no controller-manager creates it here).
async fn namespace(client: &kube::Client, name: &str, labels: Value) {
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
    let _ = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;
    service_account(client, name, "default").await;
}

async fn service_account(client: &kube::Client, namespace: &str, name: &str) {
    let sa: ServiceAccount = serde_json::from_value(
        json!({"metadata": {"name": name}, "automountServiceAccountToken": false}),
    )
    .unwrap();
    let _ = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &sa)
        .await;
}

/// The sum of `tandem_injector_admission_total` over results.
async fn admissions(admin: &str) -> f64 {
    let text = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("tandem_injector_admission_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The value of one series (`name{labels}` exactly as rendered) on the admin port, if present.
async fn series(admin: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A client that authenticates as ServiceAccount `namespace/name` (a TokenRequest token).
async fn client_as(env: &TestEnv, namespace: &str, name: &str) -> kube::Client {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = Api::<ServiceAccount>::namespaced(env.client(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let mut kubeconfig: Value =
        serde_json::from_slice(&std::fs::read(env.control_plane().kubeconfig()).unwrap()).unwrap();
    kubeconfig["users"][0]["user"] = json!({"token": token});
    let file = env
        .control_plane()
        .dir()
        .join(format!("kubeconfig-{namespace}-{name}"));
    std::fs::write(&file, kubeconfig.to_string()).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&file).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn injects_through_the_api_server() {
    let env = TestEnv::start().await;
    let client = env.client();
    let ns = env.namespace().to_owned();
    let off = format!("{ns}-off");
    let mwc_name = format!("tandem-sidecar-injector-{ns}");
    service_account(&client, &ns, "default").await;
    namespace(&client, &off, json!({OPT_OUT: "disabled"})).await;
    Api::<Namespace>::all(client.clone())
        .patch(
            "kube-system",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {OPT_OUT: "disabled"}}})),
        )
        .await
        .unwrap();

    let (port, admin_port) = (free_port(), free_port());
    let mwcs = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let mwc: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": mwc_name},
        "webhooks": [{
            "name": "sidecar-injector.tandem.io",
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/mutate")},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1", "v1beta1"],
            "timeoutSeconds": 5,
            "reinvocationPolicy": "IfNeeded",
            "namespaceSelector": {"matchExpressions": [{"key": OPT_OUT, "operator": "NotIn", "values": ["disabled"]}]},
        }],
    }))
    .unwrap();
    mwcs.create(&PostParams::default(), &mwc).await.unwrap();

    let config = common::config_with(&[
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--admin-addr",
        &format!("127.0.0.1:{admin_port}"),
        "--namespace",
        &ns,
        "--tls-san",
        "127.0.0.1",
        "--webhook-config-name",
        &mwc_name,
    ]);
    let shutdown = CancellationToken::new();
    let injector = tokio::spawn(tandem_injector::run_with_client(
        config,
        client.clone(),
        shutdown.clone(),
    ));
    let admin = format!("http://127.0.0.1:{admin_port}");

    // The injector fills the caBundle, then reports ready.
    let bundle_is_set = || async {
        let mwc = mwcs.get(&mwc_name).await.ok()?;
        mwc.webhooks?[0]
            .client_config
            .ca_bundle
            .as_ref()
            .filter(|b| !b.0.is_empty())
            .map(|_| ())
    };
    eventually(
        "the caBundle to be written",
        Duration::from_secs(30),
        bundle_is_set,
    )
    .await;
    eventually("/readyz", Duration::from_secs(30), || async {
        let response = reqwest::get(format!("{admin}/readyz")).await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;

    // An annotated pod comes back with daprd (the API server picks up the caBundle shortly).
    let pods = env.namespaced::<Pod>();
    let mut attempt = 0;
    let injected = eventually(
        "an annotated pod to be injected",
        Duration::from_secs(30),
        || {
            attempt += 1;
            let name = format!("dapr-{attempt}");
            let pods = pods.clone();
            async move {
                let created = pods
                    .create(&PostParams::default(), &pod(&name, true))
                    .await
                    .unwrap();
                if has_sidecar(&created) {
                    Some(created)
                } else {
                    pods.delete(&name, &DeleteParams::default()).await.unwrap();
                    None
                }
            }
        },
    )
    .await;
    let labels = injected.metadata.labels.clone().unwrap();
    assert_eq!(labels["dapr.io/sidecar-injected"], "true");
    // Earlier attempts failed at TLS (before the API server had the caBundle), not in the
    // injector: exactly one sidecar injected so far, under Dapr's metric name.
    let succeeded = "dapr_injector_sidecar_injection_succeeded_total{app_id=\"shop\"}";
    assert_eq!(series(&admin, succeeded).await, Some(1.0));
    assert_eq!(labels["dapr.io/app-id"], "shop");
    let daprd = injected
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .find(|c| c.name == "daprd")
        .unwrap();
    assert_eq!(
        daprd.args.as_ref().unwrap()[..4],
        ["--mode", "kubernetes", "--app-id", "shop"]
    );
    assert!(
        injected
            .spec
            .unwrap()
            .volumes
            .unwrap()
            .iter()
            .any(|v| v.name == "tandem-identity-token")
    );

    // A pod without the annotation is untouched.
    let plain = pods
        .create(&PostParams::default(), &pod("plain", false))
        .await
        .unwrap();
    assert!(!has_sidecar(&plain));
    assert!(plain.metadata.labels.is_none());

    // A pod in an opted-out namespace is untouched, and the webhook is not even called.
    let before = admissions(&admin).await;
    let opted_out = Api::<Pod>::namespaced(client.clone(), &off)
        .create(&PostParams::default(), &pod("dapr", true))
        .await
        .unwrap();
    assert!(!has_sidecar(&opted_out));
    assert_eq!(
        admissions(&admin).await,
        before,
        "no webhook call for an opted-out namespace"
    );

    // A ServiceAccount that may create pods but is not a workload controller: no sidecar.
    service_account(&client, &ns, "creator").await;
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "pod-creator"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]}],
    }))
    .unwrap();
    env.namespaced::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "pod-creator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-creator"},
        "subjects": [{"kind": "ServiceAccount", "name": "creator", "namespace": ns}],
    }))
    .unwrap();
    env.namespaced::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let creator = client_as(&env, &ns, "creator").await;
    let unauthorised = Api::<Pod>::namespaced(creator, &ns)
        .create(&PostParams::default(), &pod("by-creator", true))
        .await
        .unwrap();
    assert!(
        !has_sidecar(&unauthorised),
        "an unauthorised requester gets no sidecar"
    );
    let refused = "dapr_injector_sidecar_injection_failed_total{app_id=\"shop\",reason=\"unauthorized_requester\"}";
    assert_eq!(series(&admin, refused).await, Some(1.0));
    assert_eq!(series(&admin, succeeded).await, Some(1.0));
    // Dapr's request counter counts every review, as Tandem's admission counter does.
    assert_eq!(
        series(&admin, "dapr_injector_sidecar_injection_requests_total").await,
        Some(admissions(&admin).await)
    );

    // GitOps re-applies the configuration with an empty caBundle: re-patched within 30 s.
    mwcs.patch(
        &mwc_name,
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([
                {"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": ""}
            ]))
            .unwrap(),
        ),
    )
    .await
    .unwrap();
    eventually(
        "the blanked caBundle to be re-patched",
        Duration::from_secs(30),
        bundle_is_set,
    )
    .await;
    // Steady state: no further writes.
    let writes_text = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        writes_text.contains("tandem_injector_webhook_config_writes_total 2"),
        "{writes_text}"
    );

    // The injector stops: pods are still created (failurePolicy Ignore), without a sidecar.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), injector)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let without = pods
        .create(&PostParams::default(), &pod("while-down", true))
        .await
        .unwrap();
    assert!(!has_sidecar(&without));

    mwcs.delete(&mwc_name, &DeleteParams::default())
        .await
        .unwrap();
}
