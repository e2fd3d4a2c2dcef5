//! `Ready` conditions of Components, Subscriptions and Configurations, and how they follow the
//! objects they depend on.

use crate::support::{RunningOperator, api, env_with_crds, wait_events, wait_ready};
use k8s_openapi::api::core::v1::Secret;
use tandem_crds::{Component, Configuration, Subscription};

const REDIS: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: redis:6379
  - name: redisDB
    value: 3
scopes: [checkout]
"#;

#[tokio::test]
async fn a_valid_component_becomes_ready() {
    let env = env_with_crds().await;
    let operator = RunningOperator::start(env.client(), env.namespace()).await;
    env.kubectl_apply(REDIS).await.expect("kubectl apply");
    let components = api::<Component>(&env);
    // Within REACT: from the watch, not the 5-minute resync.
    let ready = wait_ready(&components, "statestore", "True", "Valid").await;
    assert_eq!(ready.message, "state.redis v1: metadata complete");
    let component = components.get("statestore").await.expect("get");
    let generation = component.metadata.generation;
    assert!(generation.is_some());
    assert_eq!(ready.observed_generation, generation);
    let status = component.status.expect("status");
    assert_eq!(status.observed_generation, generation);
    let managers = component.metadata.managed_fields.unwrap_or_default();
    let ours: Vec<_> = managers
        .iter()
        .filter(|m| m.manager.as_deref() == Some("tandem-operator"))
        .collect();
    assert_eq!(ours.len(), 1, "one field manager: {managers:?}");
    assert_eq!(
        ours[0].operation.as_deref(),
        Some("Apply"),
        "server-side apply"
    );
    let fields = serde_json::to_value(&ours[0].fields_v1).expect("fields");
    assert!(
        fields["f:status"]["f:conditions"].is_object(),
        "owns the conditions: {fields}"
    );
    assert!(fields.get("f:spec").is_none(), "and not the spec: {fields}");
    operator.stop().await;
}

#[tokio::test]
async fn invalid_components_are_not_ready_with_the_reason() {
    let env = env_with_crds().await;
    let operator = RunningOperator::start(env.client(), env.namespace()).await;
    let manifests = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: unknown-type}
spec: {type: state.cassandra, version: v1, metadata: [{name: hosts, value: c}]}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: missing-field}
spec: {type: state.redis, version: v1, metadata: [{name: redisDB, value: "1"}]}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: unknown-field}
spec: {type: pubsub.redis, version: v1, metadata: [{name: redisHost, value: r}, {name: redisHots, value: r}]}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: wrong-version}
spec: {type: state.in-memory, version: v2}
"#;
    env.kubectl_apply(manifests).await.expect("kubectl apply");
    let components = api::<Component>(&env);
    for (name, reason, mentions) in [
        ("unknown-type", "UnknownType", "\"state.cassandra\""),
        ("missing-field", "MissingMetadata", "\"redisHost\""),
        ("unknown-field", "UnknownMetadata", "\"redisHots\""),
        ("wrong-version", "UnsupportedVersion", "\"v2\""),
    ] {
        let condition = wait_ready(&components, name, "False", reason).await;
        assert!(
            condition.message.contains(mentions),
            "{name}: {}",
            condition.message
        );
        let warnings = wait_events(&env, name, reason).await;
        assert_eq!(warnings.len(), 1, "{name}: one Warning Event");
        assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    }
    operator.stop().await;
}

#[tokio::test]
async fn creating_the_missing_secret_makes_the_component_ready() {
    let env = env_with_crds().await;
    let operator = RunningOperator::start(env.client(), env.namespace()).await;
    let with_secret = format!(
        "{REDIS}  - name: redisPassword\n    secretKeyRef: {{name: redis-secret, key: password}}\n"
    )
    .replace("scopes: [checkout]\n", "");
    env.kubectl_apply(&with_secret)
        .await
        .expect("apply component");
    let components = api::<Component>(&env);
    let missing = wait_ready(&components, "statestore", "False", "SecretNotFound").await;
    assert!(
        missing.message.contains("\"redis-secret\""),
        "{}",
        missing.message
    );

    // A second passes so that a rewritten lastTransitionTime would differ.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    env.run_kubectl(
        &[
            "create",
            "secret",
            "generic",
            "redis-secret",
            "--from-literal=user=app",
        ],
        "",
    )
    .await
    .expect("create the secret without the key");
    let no_key = wait_ready(&components, "statestore", "False", "SecretKeyNotFound").await;
    assert!(
        no_key.message.contains("(it has: user)"),
        "{}",
        no_key.message
    );
    assert_eq!(
        no_key.last_transition_time, missing.last_transition_time,
        "still False: the transition time stays"
    );

    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: redis-secret}\nstringData: {user: app, password: pw}\n";
    env.kubectl_apply(secret).await.expect("add the key");
    let ready = wait_ready(&components, "statestore", "True", "Valid").await;
    assert!(
        ready.last_transition_time.0 > missing.last_transition_time.0,
        "it flipped"
    );
    assert!(
        ready.message.contains("1 secretKeyRef(s) found"),
        "{}",
        ready.message
    );
    let normal = wait_events(&env, "statestore", "Valid").await;
    assert_eq!(normal.len(), 1, "one Normal Event on the flip");
    assert_eq!(normal[0].type_.as_deref(), Some("Normal"));

    let secrets = api::<Secret>(&env);
    let vault = with_secret
        .replace("name: statestore", "name: vaulted")
        .replace(
            "secretKeyRef: {name: redis-secret",
            "secretKeyRef: {name: in-vault",
        )
        + "auth: {secretStore: vault}\n";
    env.kubectl_apply(&vault)
        .await
        .expect("apply with another store");
    let skipped = wait_ready(&components, "vaulted", "True", "Valid").await;
    assert!(
        skipped.message.contains("secret store \"vault\""),
        "{}",
        skipped.message
    );
    assert!(secrets.get_opt("in-vault").await.expect("get").is_none());
    operator.stop().await;
}

const ROUTED: &str = r#"
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders}
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    rules:
    - {match: 'event.type == "order.created"', path: /created}
    default: /orders
"#;

#[tokio::test]
async fn a_subscription_is_ready_once_its_pubsub_exists() {
    let env = env_with_crds().await;
    let operator = RunningOperator::start(env.client(), env.namespace()).await;
    env.kubectl_apply(ROUTED).await.expect("apply subscription");
    let subscriptions = api::<Subscription>(&env);
    let missing = wait_ready(&subscriptions, "orders", "False", "PubsubNotFound").await;
    assert!(
        missing.message.contains("\"pubsub\""),
        "{}",
        missing.message
    );

    let state = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec: {type: state.in-memory, version: v1}\n";
    env.kubectl_apply(state)
        .await
        .expect("apply a state store called pubsub");
    wait_ready(&subscriptions, "orders", "False", "NotAPubsub").await;
    env.kubectl_apply(&state.replace("state.in-memory", "pubsub.in-memory"))
        .await
        .expect("make it a pub/sub");
    wait_ready(&subscriptions, "orders", "True", "Valid").await;

    let v1 = "apiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: legacy}\nspec: {pubsubname: pubsub, topic: t, route: /t}\n";
    env.kubectl_apply(v1).await.expect("apply v1alpha1");
    wait_ready(&subscriptions, "legacy", "True", "Valid").await;
    operator.stop().await;
}

#[tokio::test]
async fn a_subscription_with_invalid_cel_is_not_ready() {
    let env = env_with_crds().await;
    let operator = RunningOperator::start(env.client(), env.namespace()).await;
    let pubsub = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec: {type: pubsub.in-memory, version: v1}\n";
    let bad = ROUTED.replace(r#"'event.type == "order.created"'"#, "'event.type =='");
    env.kubectl_apply(&format!("{pubsub}---{bad}"))
        .await
        .expect("apply");
    let subscriptions = api::<Subscription>(&env);
    let invalid = wait_ready(&subscriptions, "orders", "False", "InvalidRoute").await;
    assert!(
        invalid.message.starts_with("spec.routes.rules[0].match"),
        "{}",
        invalid.message
    );
    env.kubectl_apply(ROUTED).await.expect("fix the rule");
    wait_ready(&subscriptions, "orders", "True", "Valid").await;
    operator.stop().await;
}

#[tokio::test]
async fn a_configuration_with_a_sampling_rate_of_two_is_not_ready() {
    let env = env_with_crds().await;
    let operator = RunningOperator::start(env.client(), env.namespace()).await;
    let config = r#"
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: appconfig}
spec:
  tracing: {samplingRate: "2"}
  accessControl:
    defaultAction: deny
    policies: [{appId: checkout, trustDomain: public, namespace: default, defaultAction: allow, operations: [{name: /orders, action: allow}]}]
  secrets: {scopes: [{storeName: kubernetes, defaultAccess: deny}]}
"#;
    env.kubectl_apply(config).await.expect("apply");
    let configurations = api::<Configuration>(&env);
    let invalid = wait_ready(&configurations, "appconfig", "False", "InvalidSamplingRate").await;
    assert!(invalid.message.contains("\"2\""), "{}", invalid.message);
    env.kubectl_apply(&config.replace("\"2\"", "\"0.25\""))
        .await
        .expect("fix");
    wait_ready(&configurations, "appconfig", "True", "Valid").await;
    env.kubectl_apply(
        &config
            .replace("\"2\"", "\"1\"")
            .replace("action: allow}", "action: permit}"),
    )
    .await
    .expect("break the access control");
    let access = wait_ready(
        &configurations,
        "appconfig",
        "False",
        "InvalidAccessControl",
    )
    .await;
    assert!(
        access.message.contains("operations[0].action"),
        "{}",
        access.message
    );
    operator.stop().await;
}
