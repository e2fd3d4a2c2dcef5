//! The generated CRDs and Dapr manifests against a real kube-apiserver v1.20 (tandem-envtest):
//! the CRDs are accepted, kubectl applies Dapr-style manifests, `kube::Api` reads back what was
//! applied, and status goes through the status subresource with server-side apply.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use tandem_crds::configuration::Configuration;
use tandem_crds::{Component, Subscription};
use tandem_envtest::TestEnv;

const COMPONENT: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  initTimeout: 1m
  ignoreErrors: true
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisDB
    value: 3
  - name: enableTLS
    value: false
  - name: queryIndexes
    value: {indexes: [{name: orders, key: id}]}
  - name: redisPassword
    secretKeyRef:
      name: redis-secret
      key: password
  - name: actorStateStore
    envRef: ACTOR_STORE
auth:
  secretStore: kubernetes
scopes:
- order
- checkout
"#;

const SUBSCRIPTION_V1: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: orders-v1
spec:
  pubsubname: pubsub
  topic: orders
  route: /orders
  metadata: {rawPayload: "true"}
  deadLetterTopic: orders-dead
  bulkSubscribe: {enabled: true, maxMessagesCount: 50, maxAwaitDurationMs: 40}
scopes:
- checkout
"#;

const SUBSCRIPTION_V2: &str = r#"
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: orders-v2
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    rules:
    - match: event.type == "order.created"
      path: /created
    - match: event.data.total > 100
      path: /big
    default: /orders
scopes:
- checkout
- audit
"#;

const CONFIGURATION: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: appconfig
spec:
  tracing:
    samplingRate: "1"
    stdout: true
    zipkin: {endpointAddress: "http://zipkin.default.svc.cluster.local:9411/api/v2/spans"}
  metrics: {enabled: true}
  accessControl:
    defaultAction: deny
    trustDomain: public
    policies:
    - appId: checkout
      defaultAction: allow
      namespace: default
      operations:
      - {name: /orders, httpVerb: [POST, GET], action: allow}
  secrets:
    scopes:
    - storeName: kubernetes
      defaultAccess: deny
      allowedSecrets: [redis-secret]
  features:
  - {name: Resiliency, enabled: true}
"#;

async fn env_with_crds() -> TestEnv {
    let env = TestEnv::start().await;
    env.install_crds(&tandem_crds::crd::all())
        .await
        .expect("the generated CRDs are accepted and established");
    env
}

fn parse<T: DeserializeOwned>(yaml: &str) -> T {
    serde_norway::from_str(yaml).expect("the test manifest parses")
}

#[tokio::test]
async fn every_generated_crd_is_established_as_generated() {
    let env = env_with_crds().await;
    let api = Api::<CustomResourceDefinition>::all(env.client());
    for crd in tandem_crds::crd::all() {
        let name = crd.metadata.name.clone().expect("named");
        let stored = api.get(&name).await.expect("the CRD exists");
        let versions = |crd: &CustomResourceDefinition| -> Vec<(String, bool, bool)> {
            let versions = crd.spec.versions.iter();
            versions
                .map(|v| (v.name.clone(), v.served, v.storage))
                .collect()
        };
        assert_eq!(versions(&stored), versions(&crd), "{name}");
        let schema = |crd: &CustomResourceDefinition, i: usize| {
            crd.spec.versions[i]
                .schema
                .clone()
                .and_then(|s| s.open_api_v3_schema)
        };
        for i in 0..crd.spec.versions.len() {
            assert_eq!(
                schema(&stored, i),
                schema(&crd, i),
                "{name}: the apiserver kept the schema"
            );
        }
    }
}

#[tokio::test]
async fn kubectl_applied_component_reads_back_through_the_api() {
    let env = env_with_crds().await;
    let out = env.kubectl_apply(COMPONENT).await.expect("kubectl apply");
    assert_eq!(out.trim(), "component.dapr.io/statestore created");
    let read = env
        .namespaced::<Component>()
        .get("statestore")
        .await
        .expect("get");
    let want: Component = parse(COMPONENT);
    assert_eq!(read.api_version, "dapr.io/v1alpha1");
    assert_eq!(read.name(), "statestore");
    assert_eq!(read.metadata.namespace.as_deref(), Some(env.namespace()));
    assert_eq!(read.spec, want.spec, "spec, with values of every JSON type");
    assert_eq!(read.auth, want.auth, "top-level auth");
    assert_eq!(read.scopes, want.scopes, "top-level scopes");
    assert_eq!(read.spec.metadata[1].value_string().as_deref(), Some("3"));

    let listed = env
        .namespaced::<Component>()
        .list(&Default::default())
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);

    let invalid = COMPONENT
        .replace("name: statestore", "name: invalid")
        .replace("scopes:\n- order\n- checkout", "scopes: checkout");
    let rejected = env
        .run_kubectl(&["apply", "--validate=false", "-f", "-"], &invalid)
        .await
        .expect_err("the apiserver enforces the schema");
    assert!(rejected.to_string().contains("scopes"), "{rejected}");
}

#[tokio::test]
async fn kubectl_applied_subscriptions_of_both_versions_read_back_at_v2alpha1() {
    let env = env_with_crds().await;
    env.kubectl_apply(SUBSCRIPTION_V1)
        .await
        .expect("apply v1alpha1");
    env.kubectl_apply(SUBSCRIPTION_V2)
        .await
        .expect("apply v2alpha1");
    let api = env.namespaced::<Subscription>();
    for yaml in [SUBSCRIPTION_V1, SUBSCRIPTION_V2] {
        let want: Subscription = parse(yaml);
        let read = api.get(want.name()).await.expect("get");
        assert_eq!(
            read.api_version, "dapr.io/v2alpha1",
            "served at the storage version"
        );
        assert_eq!(read.spec, want.spec, "{}", want.name());
        assert_eq!(read.scopes, want.scopes, "{}", want.name());
    }
    let v1 = api.get("orders-v1").await.expect("get");
    assert_eq!(
        v1.spec.route.as_deref(),
        Some("/orders"),
        "kept without a webhook"
    );

    let as_v1 = env
        .run_kubectl(
            &[
                "get",
                "subscriptions.v1alpha1.dapr.io",
                "orders-v1",
                "-o",
                "json",
            ],
            "",
        )
        .await
        .expect("kubectl get at v1alpha1");
    let as_v1: serde_json::Value = serde_json::from_str(&as_v1).expect("json");
    assert_eq!(as_v1["apiVersion"], "dapr.io/v1alpha1");
    assert_eq!(as_v1["spec"]["route"], "/orders");
}

#[tokio::test]
async fn kubectl_applied_configuration_reads_back_through_the_api() {
    let env = env_with_crds().await;
    env.kubectl_apply(CONFIGURATION)
        .await
        .expect("kubectl apply");
    let read = env
        .namespaced::<Configuration>()
        .get("appconfig")
        .await
        .expect("get");
    let want: Configuration = parse(CONFIGURATION);
    assert_eq!(read.spec, want.spec);
    let access = read.spec.access_control.expect("accessControl kept");
    assert_eq!(access.policies[0].operations[0].http_verb[1], "GET");
    assert_eq!(
        read.spec.metric,
        Some(serde_json::json!({"enabled": true})),
        "`metrics` kept"
    );
    let scope = &read.spec.secrets.expect("secrets").scopes[0];
    assert!(scope.allows("redis-secret") && !scope.allows("other"));
}

#[tokio::test]
async fn status_is_written_by_server_side_apply_to_the_status_subresource() {
    let env = env_with_crds().await;
    let api = env.namespaced::<Component>();
    let component = Component::test("cache", "state.in-memory").with_metadata("ttl", "5s");
    let created = api
        .create(&PostParams::default(), &component)
        .await
        .expect("create");
    let generation = created
        .metadata
        .generation
        .expect("the apiserver sets a generation");

    let status = |condition_type: &str, status: &str| {
        serde_json::json!({
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "status": {
                "observedGeneration": generation,
                "conditions": [{
                    "type": condition_type,
                    "status": status,
                    "reason": "Checked",
                    "message": "checked by the test",
                    "lastTransitionTime": "2026-01-02T03:04:05Z",
                    "observedGeneration": generation,
                }],
            },
        })
    };
    let operator = PatchParams::apply("tandem-operator").force();
    api.patch_status("cache", &operator, &Patch::Apply(status("Ready", "True")))
        .await
        .expect("status apply");
    let other = PatchParams::apply("another-controller").force();
    api.patch_status("cache", &other, &Patch::Apply(status("Scoped", "False")))
        .await
        .expect("second manager's status apply");

    let read = api.get("cache").await.expect("get");
    let status = read.status.clone().expect("status written");
    assert_eq!(status.observed_generation, Some(generation));
    let conditions: Vec<_> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.observed_generation))
        .collect();
    assert_eq!(
        conditions,
        [
            ("Ready", "True", Some(generation)),
            ("Scoped", "False", Some(generation))
        ],
        "conditions merge by type across field managers"
    );
    assert_eq!(
        read.spec, component.spec,
        "a status write leaves spec alone"
    );
    assert_eq!(
        read.metadata.generation,
        Some(generation),
        "status does not bump generation"
    );

    // Through the main resource, status is ignored: only the subresource writes it.
    let mut changed = read.clone();
    changed.spec.ignore_errors = true;
    changed.status = None;
    let replaced = api
        .replace("cache", &PostParams::default(), &changed)
        .await
        .expect("replace");
    assert!(replaced.spec.ignore_errors);
    assert_eq!(replaced.metadata.generation, Some(generation + 1));
    assert_eq!(
        replaced.status.map(|s| s.conditions.len()),
        Some(2),
        "status survives"
    );
}
