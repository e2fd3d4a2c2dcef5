//! The `<app-id>-dapr` headless Service of Dapr-enabled Deployments and StatefulSets.

use crate::support::{REACT, RunningOperator, api, env_with_crds, events, wait_events};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::collections::BTreeMap;
use tandem_envtest::{TestEnv, eventually};
use tandem_operator::metrics::{Metrics, ServiceChange};

/// Waits until `app_id`'s Service has seen `change` exactly `count` times, as Dapr's
/// `dapr_operator_service_*_total` counts it (the write lands a moment before it is counted).
async fn wait_counted(metrics: &Metrics, change: ServiceChange, app_id: &str, count: u64) {
    eventually(
        &format!("{change:?} {app_id} counted {count} times"),
        REACT,
        || async { (metrics.services_changed(change, app_id) == count).then_some(()) },
    )
    .await;
}

/// A workload manifest; `annotations` are the pod template's, as a YAML flow map.
fn workload(kind: &str, name: &str, annotations: &str) -> String {
    let service_name = if kind == "StatefulSet" {
        format!("  serviceName: {name}\n")
    } else {
        String::new()
    };
    format!(
        "apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{service_name}  \
         selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata:\n      labels: \
         {{app: {name}}}\n      annotations: {annotations}\n    spec:\n      containers: [{{name: \
         app, image: example.invalid/app:1}}]\n"
    )
}

async fn wait_service(services: &Api<Service>, name: &str) -> Service {
    eventually(&format!("Service {name}"), REACT, || async {
        services.get_opt(name).await.ok().flatten()
    })
    .await
}

async fn wait_no_service(services: &Api<Service>, name: &str) {
    eventually(&format!("Service {name} gone"), REACT, || async {
        matches!(services.get_opt(name).await, Ok(None)).then_some(())
    })
    .await
}

#[tokio::test]
async fn an_annotated_deployment_owns_a_headless_service_until_the_annotation_goes() {
    let env = env_with_crds().await;
    let operator = RunningOperator::start(env.client(), env.namespace()).await;
    let annotated = workload(
        "Deployment",
        "checkout",
        "{dapr.io/enabled: \"true\", dapr.io/app-id: orders}",
    );
    env.kubectl_apply(&annotated).await.expect("apply");
    let services = api::<Service>(&env);
    let service = wait_service(&services, "orders-dapr").await;
    let deployment = api::<Deployment>(&env).get("checkout").await.expect("get");

    let labels = service.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("dapr.io/enabled").map(String::as_str),
        Some("true")
    );
    let owners = service
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(
        (
            owners[0].kind.as_str(),
            owners[0].name.as_str(),
            owners[0].controller
        ),
        ("Deployment", "checkout", Some(true))
    );
    assert_eq!(Some(owners[0].uid.clone()), deployment.metadata.uid);
    let spec = service.spec.clone().expect("spec");
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(
        spec.selector,
        Some(BTreeMap::from([("app".to_owned(), "checkout".to_owned())]))
    );
    let ports: Vec<_> = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.port, p.target_port))
        .collect();
    let target = |n| Some(IntOrString::Int(n));
    assert_eq!(
        ports,
        [
            ("dapr-http".to_owned(), 80, target(3500)),
            ("dapr-grpc".to_owned(), 50001, target(50001)),
            ("dapr-internal".to_owned(), 50002, target(50002)),
            ("dapr-metrics".to_owned(), 9090, target(9090)),
        ]
    );
    let managers = service.metadata.managed_fields.unwrap_or_default();
    let managers: Vec<_> = managers
        .iter()
        .map(|m| m.manager.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        managers,
        ["tandem-operator"],
        "server-side apply, one field manager"
    );
    wait_counted(&operator.metrics, ServiceChange::Created, "orders", 1).await;
    assert_eq!(
        operator
            .metrics
            .services_changed(ServiceChange::Updated, "orders"),
        0,
        "a settled Service is not rewritten"
    );

    // Someone edits the Service: the operator puts it back, an update.
    let edit = serde_json::json!({"metadata": {"annotations": {"dapr.io/app-id": "edited"}}});
    services
        .patch("orders-dapr", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .expect("edit the Service");
    wait_counted(&operator.metrics, ServiceChange::Updated, "orders", 1).await;
    let repaired = wait_service(&services, "orders-dapr").await;
    let annotations = repaired.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("dapr.io/app-id").map(String::as_str),
        Some("orders")
    );

    let plain = workload("Deployment", "checkout", "{}");
    env.kubectl_apply(&plain)
        .await
        .expect("remove the annotation");
    wait_no_service(&services, "orders-dapr").await;
    wait_counted(&operator.metrics, ServiceChange::Deleted, "orders", 1).await;
    assert_eq!(
        operator
            .metrics
            .services_changed(ServiceChange::Created, "orders"),
        1
    );
    operator.stop().await;
}

#[tokio::test]
async fn a_statefulset_defaults_its_app_id_to_its_name_and_follows_app_id_changes() {
    let env = env_with_crds().await;
    let operator = RunningOperator::start(env.client(), env.namespace()).await;
    env.kubectl_apply(&workload(
        "StatefulSet",
        "ledger",
        "{dapr.io/enabled: \"true\"}",
    ))
    .await
    .expect("apply");
    let services = api::<Service>(&env);
    let service = wait_service(&services, "ledger-dapr").await;
    let owner = &service.metadata.owner_references.unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("StatefulSet", "ledger")
    );

    let renamed = workload(
        "StatefulSet",
        "ledger",
        "{dapr.io/enabled: \"true\", dapr.io/app-id: accounts}",
    );
    env.kubectl_apply(&renamed)
        .await
        .expect("change the app id");
    wait_service(&services, "accounts-dapr").await;
    wait_no_service(&services, "ledger-dapr").await;
    wait_counted(&operator.metrics, ServiceChange::Created, "ledger", 1).await;
    wait_counted(&operator.metrics, ServiceChange::Created, "accounts", 1).await;
    wait_counted(&operator.metrics, ServiceChange::Deleted, "ledger", 1).await;
    operator.stop().await;
}

#[tokio::test]
async fn two_workloads_with_one_app_id_get_one_service_and_a_warning() {
    let env = env_with_crds().await;
    let operator = RunningOperator::start(env.client(), env.namespace()).await;
    let claim = "{dapr.io/enabled: \"true\", dapr.io/app-id: shared}";
    env.kubectl_apply(&workload("Deployment", "first", claim))
        .await
        .expect("apply the first");
    let services = api::<Service>(&env);
    let held = wait_service(&services, "shared-dapr").await;
    env.kubectl_apply(&workload("Deployment", "second", claim))
        .await
        .expect("apply the second");

    let warnings = wait_events(&env, "second", "AppIdConflict").await;
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    let message = warnings[0].message.clone().unwrap_or_default();
    assert!(message.contains("Deployment \"first\""), "{message}");
    assert!(events(&env, "first", "AppIdConflict").await.is_empty());

    // Reconcile the second again: the Service stays the first's, and the warning is not repeated.
    let before = operator.metrics.reconciles("deployment");
    env.run_kubectl(&["annotate", "deployment", "second", "touched=1"], "")
        .await
        .expect("touch the second");
    eventually("the second reconciled again", REACT, || {
        let now = operator.metrics.reconciles("deployment");
        async move { (now > before).then_some(()) }
    })
    .await;
    let after = services.get("shared-dapr").await.expect("get");
    assert_eq!(
        after.metadata.resource_version, held.metadata.resource_version,
        "not flapped"
    );
    let owner = &after.metadata.owner_references.unwrap_or_default()[0];
    assert_eq!(owner.name, "first");
    assert_eq!(
        events(&env, "second", "AppIdConflict").await.len(),
        1,
        "warned once"
    );
    operator.stop().await;
}

/// The namespace's Services, for tests that count them.
pub async fn service_names(env: &TestEnv) -> Vec<String> {
    let listed = api::<Service>(env)
        .list(&Default::default())
        .await
        .expect("list");
    listed
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect()
}
