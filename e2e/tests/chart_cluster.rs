//! The chart, rendered for Kubernetes 1.20 into a test namespace, applied with kubectl to a real
//! kube-apiserver v1.20.2 (tandem-envtest) and read back: every object accepted (CRDs established),
//! the webhook registration as rendered, HA replicas and PDBs, and the RBAC enforced by the API
//! server's own authorizer. Needs `KUBEBUILDER_ASSETS` (`scripts/envtest.sh`) and `TANDEM_TOOLS`
//! (`scripts/k8s-tools.sh`).
//!
//! The chart's cluster-scoped objects (ClusterRoles, their bindings, the webhook configuration,
//! CRDs) have fixed names, so the tests take turns: each holds [`CLUSTER`] while it installs into
//! its own namespace and checks.

#![allow(clippy::unwrap_used, reason = "a test fails on what it unwraps")]

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use std::time::Duration;
use tandem_e2e::chart::Render;
use tandem_e2e::manifest::{self, Manifest};
use tandem_e2e::tools::Tools;
use tandem_envtest::{TestEnv, eventually};
use tokio::sync::{Mutex, MutexGuard};

static CLUSTER: Mutex<()> = Mutex::const_new(());

/// What the apiserver logs when a webhook call fails and the failure policy is Ignore.
const FAILED_OPEN: &str = "failing open sidecar-injector.tandem.io";

fn tools() -> Tools {
    Tools::from_env().unwrap_or_else(|error| panic!("{error}"))
}

/// Renders the chart for Kubernetes 1.20.2 into `env`'s namespace (with the CRDs), applies it, and
/// checks that the API server holds every object. The guard keeps other tests from re-applying
/// the cluster-scoped objects meanwhile.
async fn install(env: &TestEnv, render: Render) -> (MutexGuard<'static, ()>, Manifest) {
    let guard = CLUSTER.lock().await;
    let text = render
        .kube_version("1.20.2")
        .api_version("policy/v1beta1")
        .include_crds()
        .template(&tools())
        .unwrap_or_else(|e| panic!("{e}"));
    let manifest = Manifest::parse(&text).unwrap();
    let applied = env
        .kubectl_apply(&text)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        applied.lines().count(),
        manifest.objects.len(),
        "one line per object:\n{applied}"
    );
    let listed = env
        .run_kubectl(&["get", "-f", "-", "-o", "json"], &text)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let mut read_back: Vec<_> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(manifest::id)
        .collect();
    read_back.sort();
    assert_eq!(read_back, manifest.ids());
    (guard, manifest)
}

fn pdb_api(env: &TestEnv) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("policy", "v1beta1", "PodDisruptionBudget");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "poddisruptionbudgets");
    Api::namespaced_with(env.client(), env.namespace(), &resource)
}

#[tokio::test]
async fn default_install_is_accepted_by_kube_apiserver_1_20() {
    let env = TestEnv::start().await;
    let (_guard, manifest) = install(&env, Render::new(env.namespace())).await;
    assert_eq!(manifest.of_kind("CustomResourceDefinition").count(), 3);
    assert_eq!(manifest.of_kind("PodDisruptionBudget").count(), 0);

    let configs = Api::<MutatingWebhookConfiguration>::all(env.client());
    let webhook = configs
        .get("tandem-sidecar-injector")
        .await
        .unwrap()
        .webhooks
        .unwrap()
        .remove(0);
    assert_eq!(webhook.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(webhook.side_effects, "None");
    assert_eq!(webhook.timeout_seconds, Some(5));
    assert_eq!(webhook.reinvocation_policy.as_deref(), Some("IfNeeded"));
    assert_eq!(webhook.admission_review_versions, ["v1"]);
    let service = webhook.client_config.service.unwrap();
    assert_eq!(service.namespace, env.namespace());

    let deployments = env.namespaced::<Deployment>();
    for name in ["tandem-operator", "tandem-sidecar-injector"] {
        let deployment = deployments.get(name).await.unwrap();
        assert_eq!(deployment.spec.unwrap().replicas, Some(1), "{name}");
    }
    let bindings = Api::<ClusterRoleBinding>::all(env.client());
    for name in ["tandem-operator", "tandem-sidecar-injector"] {
        let subjects = bindings.get(name).await.unwrap().subjects.unwrap();
        assert_eq!(subjects[0].namespace.as_deref(), Some(env.namespace()));
    }
    let crds = env
        .run_kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/components.dapr.io",
                "crd/configurations.dapr.io",
                "crd/subscriptions.dapr.io",
            ],
            "",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(crds.lines().count(), 3, "{crds}");
}

#[tokio::test]
async fn ha_install_is_accepted_by_kube_apiserver_1_20() {
    let env = TestEnv::start().await;
    let (_guard, manifest) = install(&env, Render::new(env.namespace()).ha()).await;
    assert_eq!(manifest.of_kind("PodDisruptionBudget").count(), 2);
    let deployments = env.namespaced::<Deployment>();
    for name in ["tandem-operator", "tandem-sidecar-injector"] {
        let deployment = deployments.get(name).await.unwrap();
        assert_eq!(deployment.spec.unwrap().replicas, Some(2), "{name}");
        let pdb = pdb_api(&env).get(name).await.unwrap();
        assert_eq!(pdb.data["spec"]["maxUnavailable"], "25%", "{name}");
        assert_eq!(pdb.data["spec"]["selector"]["matchLabels"]["app"], name);
    }
    let operator = deployments.get("tandem-operator").await.unwrap();
    let args = operator.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert!(args.contains(&"--leader-elect=true".to_owned()), "{args:?}");
}

/// `kubectl auth can-i <args> --as <service account>`: the API server's RBAC authorizer decides.
async fn can_i(env: &TestEnv, account: &str, args: &[&str]) -> bool {
    let user = format!("system:serviceaccount:{}:{account}", env.namespace());
    let output = env
        .kubectl()
        .unwrap()
        .args(["auth", "can-i", "--as", &user])
        .args(args)
        .output()
        .await
        .unwrap();
    match String::from_utf8_lossy(&output.stdout).trim() {
        "yes" => true,
        "no" => false,
        other => panic!(
            "kubectl auth can-i {args:?}: {other:?} {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[tokio::test]
async fn the_api_server_enforces_the_charts_least_privilege() {
    let env = TestEnv::start().await;
    let (_guard, _) = install(&env, Render::new(env.namespace())).await;
    let ns = env.namespace().to_owned();
    let operator: &[(&[&str], bool)] = &[
        (&["list", "secrets", "--all-namespaces"], true),
        (&["watch", "components.dapr.io", "--all-namespaces"], true),
        (
            &[
                "patch",
                "subscriptions.dapr.io",
                "--subresource=status",
                "-n",
                "default",
            ],
            true,
        ),
        (&["create", "tokenreviews.authentication.k8s.io"], true),
        (
            &["patch", "customresourcedefinitions/subscriptions.dapr.io"],
            true,
        ),
        (&["create", "services", "-n", "default"], true),
        (&["create", "leases.coordination.k8s.io", "-n", &ns], true),
        (
            &[
                "update",
                "leases.coordination.k8s.io/tandem-operator",
                "-n",
                &ns,
            ],
            true,
        ),
        (&["update", "secrets/tandem-webhook-tls", "-n", &ns], true),
        (&["create", "configmaps", "-n", &ns], true),
        (
            &["update", "configmaps/tandem-trust-bundle", "-n", &ns],
            true,
        ),
        (&["update", "configmaps/other", "-n", &ns], false),
        (&["create", "secrets", "-n", "default"], false),
        (
            &["update", "secrets/tandem-webhook-tls", "-n", "default"],
            false,
        ),
        (&["update", "secrets/other", "-n", &ns], false),
        (
            &["update", "leases.coordination.k8s.io/other", "-n", &ns],
            false,
        ),
        (
            &["patch", "customresourcedefinitions/components.dapr.io"],
            false,
        ),
        (
            &["delete", "customresourcedefinitions/subscriptions.dapr.io"],
            false,
        ),
        (&["update", "components.dapr.io", "-n", "default"], false),
        (&["delete", "pods", "-n", "default"], false),
        (&["create", "pods", "-n", "default"], false),
        (
            &[
                "patch",
                "mutatingwebhookconfigurations/tandem-sidecar-injector",
            ],
            false,
        ),
    ];
    let injector: &[(&[&str], bool)] = &[
        (
            &[
                "patch",
                "mutatingwebhookconfigurations/tandem-sidecar-injector",
            ],
            true,
        ),
        (
            &[
                "get",
                "mutatingwebhookconfigurations/tandem-sidecar-injector",
            ],
            true,
        ),
        (
            &["update", "secrets/tandem-sidecar-injector-tls", "-n", &ns],
            true,
        ),
        (&["create", "secrets", "-n", &ns], true),
        (&["patch", "mutatingwebhookconfigurations/other"], false),
        (&["list", "mutatingwebhookconfigurations"], false),
        (&["get", "configmaps/tandem-trust-bundle", "-n", &ns], true),
        (&["get", "configmaps/other", "-n", &ns], false),
        (
            &["update", "configmaps/tandem-trust-bundle", "-n", &ns],
            false,
        ),
        (&["get", "secrets/tandem-trust-bundle", "-n", &ns], false),
        (&["get", "secrets/tandem-webhook-tls", "-n", &ns], false),
        (&["list", "secrets", "-n", &ns], false),
        (&["create", "secrets", "-n", "default"], false),
        (&["get", "pods", "-n", "default"], false),
    ];
    let mut wrong = Vec::new();
    for (account, table) in [
        ("tandem-operator", operator),
        ("tandem-sidecar-injector", injector),
    ] {
        for (args, expected) in table {
            if can_i(&env, account, args).await != *expected {
                wrong.push(format!("{account} {args:?}: expected {expected}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The injector lists and watches its webhook configuration by name (a field selector), which
    // resourceNames allow; a plain list is refused.
    let user = format!("system:serviceaccount:{ns}:tandem-sidecar-injector");
    let by_name = env
        .run_kubectl(
            &[
                "get",
                "mutatingwebhookconfigurations",
                "--field-selector",
                "metadata.name=tandem-sidecar-injector",
                "--as",
                &user,
                "-o",
                "name",
            ],
            "",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        by_name.trim(),
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/tandem-sidecar-injector"
    );
    let all = env
        .run_kubectl(&["get", "mutatingwebhookconfigurations", "--as", &user], "")
        .await;
    assert!(all.is_err_and(|e| e.to_string().contains("Forbidden")));
}

fn pod(name: &str, service_account: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "annotations": {"dapr.io/enabled": "true", "dapr.io/app-id": name}},
        "spec": {
            "serviceAccountName": service_account,
            "automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "example.invalid/app:1"}],
        },
    }))
    .unwrap()
}

fn failed_open_calls(env: &TestEnv) -> usize {
    env.control_plane()
        .apiserver_log_tail(5000)
        .matches(FAILED_OPEN)
        .count()
}

/// T15(a) and (d): with the injector down, pods are still admitted (failurePolicy Ignore), and a
/// namespace labelled tandem.io/injection=disabled is never sent to the webhook at all.
#[tokio::test]
async fn pods_are_admitted_while_the_injector_is_down_and_opted_out_namespaces_are_skipped() {
    let env = TestEnv::start().await;
    let (_guard, _) = install(&env, Render::new(env.namespace())).await;
    let post = PostParams::default();

    let opted_out = format!("{}-off", env.namespace());
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": opted_out, "labels": {"tandem.io/injection": "disabled"}},
    }))
    .unwrap();
    Api::<Namespace>::all(env.client())
        .create(&post, &namespace)
        .await
        .unwrap();
    env.run_kubectl(&["create", "serviceaccount", "app", "-n", &opted_out], "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let before = failed_open_calls(&env);
    Api::<Pod>::namespaced(env.client(), &opted_out)
        .create(&post, &pod("skipped", "app"))
        .await
        .unwrap();
    // The chart's own ServiceAccount stands in for an app's (no controller-manager makes `default`).
    let admitted = env
        .namespaced::<Pod>()
        .create(&post, &pod("admitted", "tandem-operator"))
        .await
        .unwrap();
    let containers: Vec<_> = admitted
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        containers,
        ["app"],
        "nothing injected while the injector is down"
    );
    eventually(
        "the apiserver to log the ignored webhook call",
        Duration::from_secs(30),
        || async { (failed_open_calls(&env) > before).then_some(()) },
    )
    .await;
    assert_eq!(
        failed_open_calls(&env),
        before + 1,
        "only the pod outside the opted-out namespace was sent to the webhook"
    );
}
