//! Steady state makes no writes: after everything has settled, a restarted operator (which
//! reconciles every object again from scratch) sends no write request at all. Measured with a
//! client layer that records every non-GET request the operator sends.

use crate::services::service_names;
use crate::support::{
    REACT, RunningOperator, WriteLog, api, env_with_crds, events, recording_writes, wait_events,
    wait_ready,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Service};
use kube::api::Api;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};
use tandem_crds::{Component, Configuration, Subscription};
use tandem_envtest::{TestEnv, eventually};

const EVERYTHING: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec: {type: state.redis, version: v1, metadata: [{name: redisHost, value: "redis:6379"}]}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec:
  type: pubsub.redis
  version: v1
  metadata:
  - {name: redisHost, value: "redis:6379"}
  - {name: redisPassword, secretKeyRef: {name: redis-auth, key: password}}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders}
spec: {pubsubname: pubsub, topic: orders, routes: {rules: [{match: 'event.type == "a"', path: /a}], default: /o}}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: bad-route}
spec: {pubsubname: pubsub, topic: orders, routes: {rules: [{match: 'event.type ==', path: /a}]}}
---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: appconfig}
spec: {tracing: {samplingRate: "1"}}
---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: oversampled}
spec: {tracing: {samplingRate: "2"}}
"#;

fn workload(kind: &str, name: &str, app_id: Option<&str>) -> String {
    let annotations = match app_id {
        Some(id) => format!("{{dapr.io/enabled: \"true\", dapr.io/app-id: {id}}}"),
        None => "{}".to_owned(),
    };
    let service_name = if kind == "StatefulSet" {
        "  serviceName: s\n"
    } else {
        ""
    };
    format!(
        "apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{service_name}  \
         selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: \
         {name}}}, annotations: {annotations}}}\n    spec: {{containers: [{{name: a, image: \
         example.invalid/a:1}}]}}\n"
    )
}

/// Every object's resourceVersion, and the number of Events: what a write would change.
async fn snapshot(env: &TestEnv) -> (BTreeMap<String, String>, usize) {
    async fn versions<K>(env: &TestEnv, out: &mut BTreeMap<String, String>)
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let listed = api::<K>(env).list(&Default::default()).await.expect("list");
        for object in listed.items {
            let version = object.resource_version().unwrap_or_default();
            out.insert(format!("{} {}", K::kind(&()), object.name_any()), version);
        }
    }
    let mut out = BTreeMap::new();
    versions::<Component>(env, &mut out).await;
    versions::<Subscription>(env, &mut out).await;
    versions::<Configuration>(env, &mut out).await;
    versions::<Service>(env, &mut out).await;
    versions::<Deployment>(env, &mut out).await;
    versions::<StatefulSet>(env, &mut out).await;
    let events: Api<Event> = env.namespaced();
    let count = events
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .len();
    (out, count)
}

#[tokio::test]
async fn a_restarted_operator_makes_no_writes_once_everything_has_settled() {
    let env = env_with_crds().await;
    let first_log = WriteLog::default();
    let client = recording_writes(env.client(), first_log.clone());
    let first = RunningOperator::start(client, env.namespace()).await;
    let workloads = [
        workload("Deployment", "checkout", Some("orders")),
        workload("Deployment", "first", Some("shared")),
        workload("Deployment", "plain", None),
        workload("StatefulSet", "ledger", Some("ledger")),
    ];
    env.kubectl_apply(&format!("{EVERYTHING}---\n{}", workloads.join("---\n")))
        .await
        .expect("apply everything");
    env.kubectl_apply(&workload("Deployment", "second", Some("shared")))
        .await
        .expect("apply the conflicting workload");

    let (components, subscriptions) = (api::<Component>(&env), api::<Subscription>(&env));
    let configurations = api::<Configuration>(&env);
    wait_ready(&components, "statestore", "True", "Valid").await;
    wait_ready(&components, "pubsub", "False", "SecretNotFound").await;
    wait_ready(&subscriptions, "orders", "True", "Valid").await;
    wait_ready(&subscriptions, "bad-route", "False", "InvalidRoute").await;
    wait_ready(&configurations, "appconfig", "True", "Valid").await;
    wait_ready(
        &configurations,
        "oversampled",
        "False",
        "InvalidSamplingRate",
    )
    .await;
    wait_events(&env, "second", "AppIdConflict").await;
    eventually("the three Services", REACT, || async {
        let names = service_names(&env).await;
        (names == ["ledger-dapr", "orders-dapr", "shared-dapr"]).then_some(())
    })
    .await;
    let settling = first_log.writes();
    eprintln!("writes while settling: {}", settling.len());
    assert!(
        settling.len() >= 9,
        "the layer records writes: {settling:#?}"
    );
    first.stop().await;

    let before = snapshot(&env).await;
    let log = WriteLog::default();
    let client = recording_writes(env.client(), log.clone());
    let restarted = RunningOperator::start(client, env.namespace()).await;
    let objects = [
        ("component", 2),
        ("subscription", 2),
        ("configuration", 2),
        ("deployment", 4),
        ("statefulset", 1),
    ];
    eventually(
        "the restarted operator to reconcile every object",
        REACT,
        || {
            let done = objects
                .iter()
                .all(|(kind, n)| restarted.metrics.reconciles(kind) >= *n);
            async move { done.then_some(()) }
        },
    )
    .await;
    // A quiet period: writes a reconcile decided on would be sent well within it.
    let quiet = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reconciles: Vec<_> = objects
        .iter()
        .map(|(kind, _)| (*kind, restarted.metrics.reconciles(kind)))
        .collect();
    let writes = log.writes();
    eprintln!(
        "steady state: {} write(s) in {:?} after {reconciles:?} reconciles",
        writes.len(),
        quiet.elapsed()
    );
    assert_eq!(writes, Vec::<String>::new(), "no writes in steady state");
    assert_eq!(
        snapshot(&env).await,
        before,
        "nothing changed on the server"
    );
    assert_eq!(events(&env, "second", "AppIdConflict").await.len(), 1);

    // Control: the same recorder sees this operator's writes when there is something to write.
    env.run_kubectl(
        &[
            "create",
            "secret",
            "generic",
            "redis-auth",
            "--from-literal=password=pw",
        ],
        "",
    )
    .await
    .expect("create the secret");
    wait_ready(&components, "pubsub", "True", "Valid").await;
    let writes = log.writes();
    assert!(
        writes
            .iter()
            .any(|w| w.starts_with("PATCH") && w.contains("/components/pubsub/status")),
        "{writes:#?}"
    );
    restarted.stop().await;
}
