//! The sidecar API against the real kube-apiserver: real ServiceAccount tokens from the
//! TokenRequest API, verified by real TokenReviews, real Pods and Secrets, manifests applied with
//! the real kubectl. Two namespaces: the caller's and another one with look-alike objects.

use crate::support::{REACT, env_with_crds};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tandem_envtest::TestEnv;
use tandem_operator::ca::ControlPlaneCa;
use tandem_operator::controller::Scope;
use tandem_operator::metrics::Metrics;
use tandem_operator::sidecar_api::{self, SidecarApi, TOKEN_AUDIENCE};
use tokio_util::sync::CancellationToken;

/// The API in this process on a free port; stops when dropped.
pub(crate) struct RunningApi {
    pub(crate) base: String,
    pub(crate) metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl Drop for RunningApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start_api(client: kube::Client, lifetime: Duration) -> RunningApi {
    start_api_with_ca(client, lifetime, None).await
}

/// The API, signing workload certificates with `ca` when given.
pub(crate) async fn start_api_with_ca(
    client: kube::Client,
    lifetime: Duration,
    ca: Option<Arc<ControlPlaneCa>>,
) -> RunningApi {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let shutdown = CancellationToken::new();
    let scope = Scope::new(None);
    let (api, feeding) = SidecarApi::new(
        client,
        scope,
        TOKEN_AUDIENCE,
        Arc::clone(&metrics),
        shutdown.clone(),
    );
    let mut api = api.with_stream_lifetime(lifetime);
    if let Some(ca) = ca {
        api = api.with_ca(ca);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(sidecar_api::serve(api, feeding, listener));
    RunningApi {
        base,
        metrics,
        shutdown,
    }
}

/// A Dapr-enabled pod running as `account`, and the ServiceAccount.
pub(crate) async fn dapr_pod(env: &TestEnv, name: &str, account: &str, app_id: &str) -> Pod {
    let accounts: Api<ServiceAccount> = env.namespaced();
    let account_object = serde_json::from_value(json!({"metadata": {"name": account}}));
    let _ = accounts
        .create(&PostParams::default(), &account_object.expect("sa"))
        .await;
    let pod = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"dapr.io/enabled": "true", "dapr.io/app-id": app_id}},
        "spec": {
            "serviceAccountName": account,
            // No token controller runs here, so no legacy token Secret can be mounted.
            "automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "app:1"}]
        }
    }))
    .expect("pod");
    env.namespaced::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

/// A token of `account`, for the operator's audience, bound to `pod` when given.
async fn token(env: &TestEnv, account: &str, pod: Option<&Pod>) -> String {
    token_for(env, account, pod, TOKEN_AUDIENCE).await
}

/// A token of `account` for `audience`, bound to `pod` when given (the TokenRequest API).
pub(crate) async fn token_for(
    env: &TestEnv,
    account: &str,
    pod: Option<&Pod>,
    audience: &str,
) -> String {
    let bound = pod.map(|pod| BoundObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
    });
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience.into()],
            bound_object_ref: bound,
            expiration_seconds: Some(3600),
        },
        ..TokenRequest::default()
    };
    let accounts: Api<ServiceAccount> = env.namespaced();
    let issued = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .expect("token request");
    issued.status.expect("a token").token
}

fn url(api: &RunningApi, namespace: &str, pod: &str, query: &str) -> String {
    format!(
        "{}/v1/namespaces/{namespace}/pods/{pod}/resources?{query}",
        api.base
    )
}

async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn names(resources: &Value, kind: &str) -> Vec<String> {
    resources[kind]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn metadata_value(resources: &Value, component: &str, item: &str) -> Value {
    let components = resources["components"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    components
        .iter()
        .find(|c| c["metadata"]["name"] == component)
        .and_then(|c| c["spec"]["metadata"].as_array())
        .and_then(|items| items.iter().find(|i| i["name"] == item).cloned())
        .unwrap_or(Value::Null)
}

/// Components, a Subscription, a Configuration and a Secret in `env`'s namespace; `tag` marks the
/// secret value so a leak from another namespace would show.
async fn apply_resources(env: &TestEnv, tag: &str) {
    let manifest = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: redis}}
stringData: {{password: "{tag}-password"}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: statestore}}
spec:
  type: state.redis
  version: v1
  metadata:
  - {{name: redisHost, value: "localhost:6379"}}
  - {{name: redisPassword, secretKeyRef: {{name: redis, key: password}}}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: orders-only}}
spec: {{type: pubsub.in-memory, version: v1}}
scopes: [order]
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: catalog-only}}
spec: {{type: pubsub.in-memory, version: v1}}
scopes: [catalog]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {{name: orders}}
spec:
  pubsubname: orders-only
  topic: orders
  routes: {{default: /orders}}
scopes: [order]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {{name: catalog-updates}}
spec:
  pubsubname: catalog-only
  topic: catalog
  routes: {{default: /catalog}}
scopes: [catalog]
---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {{name: tracing}}
spec: {{tracing: {{samplingRate: "1"}}}}
"#
    );
    env.kubectl_apply(&manifest).await.expect("kubectl apply");
}

#[tokio::test]
async fn sidecars_get_their_own_namespace_and_scope_and_nothing_else() {
    let env = env_with_crds().await;
    let other = TestEnv::start().await;
    apply_resources(&env, "mine").await;
    apply_resources(&other, "theirs").await;
    let order = dapr_pod(&env, "order-1", "order-sa", "order").await;
    let stranger = dapr_pod(&other, "order-1", "order-sa", "order").await;
    let api = start_api(env.client(), sidecar_api::STREAM_LIFETIME).await;
    let ns = env.namespace();
    let order_token = token(&env, "order-sa", Some(&order)).await;

    let (status, sent) = get(
        &url(&api, ns, "order-1", "appId=order&config=tracing"),
        Some(&order_token),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(names(&sent, "components"), ["orders-only", "statestore"]);
    assert_eq!(names(&sent, "subscriptions"), ["orders"]);
    assert_eq!(sent["configuration"]["metadata"]["name"], "tracing");
    assert_eq!(sent["configuration"]["metadata"]["namespace"], ns);
    let password = metadata_value(&sent, "statestore", "redisPassword");
    assert_eq!(
        password["value"], "mine-password",
        "resolved from this namespace: {password}"
    );
    assert!(password.get("secretKeyRef").is_none(), "{password}");
    let text = sent.to_string();
    assert!(
        !text.contains("theirs"),
        "nothing of the other namespace: {text}"
    );
    assert!(
        !text.contains("catalog-only"),
        "nothing out of scope: {text}"
    );

    // The same pod name and app id in another namespace: its token gets nothing here.
    let their_token = token(&other, "order-sa", Some(&stranger)).await;
    let (status, refused) = get(&url(&api, ns, "order-1", "appId=order"), Some(&their_token)).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["errorCode"], "ERR_PERMISSION_DENIED");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("namespace"),
        "{refused}"
    );
    // ... and in its own namespace it gets its own namespace's objects only.
    let (status, theirs) = get(
        &url(&api, other.namespace(), "order-1", "appId=order"),
        Some(&their_token),
    )
    .await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(
        metadata_value(&theirs, "statestore", "redisPassword")["value"],
        "theirs-password"
    );

    // A pod that does not exist (a token bound to no pod claims one).
    let unbound = token(&env, "order-sa", None).await;
    let (status, refused) = get(&url(&api, ns, "ghost", "appId=order"), Some(&unbound)).await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("does not exist"),
        "{refused}"
    );
    // A pod-bound token used for another pod, or for another app id.
    let (status, _) = get(&url(&api, ns, "order-2", "appId=order"), Some(&order_token)).await;
    assert_eq!(status, 403);
    let (status, refused) = get(
        &url(&api, ns, "order-1", "appId=catalog"),
        Some(&order_token),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    // No token, a forged one, a malformed query.
    let (status, refused) = get(&url(&api, ns, "order-1", "appId=order"), None).await;
    assert_eq!(
        (status, refused["errorCode"].as_str()),
        (401, Some("ERR_UNAUTHENTICATED"))
    );
    let (status, _) = get(
        &url(&api, ns, "order-1", "appId=order"),
        Some("not-a-token"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, refused) = get(
        &url(&api, ns, "order-1", "config=tracing"),
        Some(&order_token),
    )
    .await;
    assert_eq!(
        (status, refused["errorCode"].as_str()),
        (400, Some("ERR_MALFORMED_REQUEST"))
    );

    assert_eq!(api.metrics.sidecar_api_requests("ok"), 2);
    assert_eq!(api.metrics.sidecar_api_requests("forbidden"), 4);
    assert_eq!(api.metrics.sidecar_api_requests("unauthenticated"), 2);
}

/// Reads NDJSON lines off a streaming response.
struct Lines {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Lines {
    async fn next(&mut self) -> Option<Value> {
        self.next_within(REACT).await
    }

    async fn next_within(&mut self, limit: Duration) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("a JSON line"));
            }
            let chunk = tokio::time::timeout(limit, self.response.chunk()).await;
            match chunk.expect("a line in time").expect("the stream reads") {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => return None,
            }
        }
    }
}

#[tokio::test]
async fn a_watching_sidecar_gets_each_change_in_scope_and_reconnects_after_the_lifetime() {
    let env = env_with_crds().await;
    apply_resources(&env, "v1").await;
    let pod = dapr_pod(&env, "order-1", "order-sa", "order").await;
    let api = start_api(env.client(), Duration::from_secs(20)).await;
    let token = token(&env, "order-sa", Some(&pod)).await;
    let response = reqwest::Client::new()
        .get(url(
            &api,
            env.namespace(),
            "order-1",
            "appId=order&watch=true",
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), 200);
    let content_type = response.headers().get("content-type").cloned();
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    let mut lines = Lines {
        response,
        buffer: Vec::new(),
    };
    let first = lines.next().await.expect("the first set at once");
    assert_eq!(names(&first, "components"), ["orders-only", "statestore"]);
    assert_eq!(api.metrics.sidecar_streams(), 1);

    // Out of scope: no message. In scope: the next message has it, and not the other.
    env.kubectl_apply(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: catalog-cache}\nspec: {type: state.in-memory, version: v1}\nscopes: [catalog]\n",
    )
    .await
    .expect("apply");
    env.kubectl_apply(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: order-cache}\nspec: {type: state.in-memory, version: v1}\nscopes: [order]\n",
    )
    .await
    .expect("apply");
    let added = lines.next().await.expect("an update");
    assert_eq!(
        names(&added, "components"),
        ["order-cache", "orders-only", "statestore"]
    );

    // An edit arrives as the whole set again, with the new value.
    env.kubectl_apply(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: order-cache}\nspec:\n  type: state.in-memory\n  version: v1\n  metadata: [{name: ttl, value: \"30\"}]\nscopes: [order]\n",
    )
    .await
    .expect("apply");
    let edited = lines.next().await.expect("an update");
    assert_eq!(metadata_value(&edited, "order-cache", "ttl")["value"], "30");
    assert_eq!(
        metadata_value(&edited, "statestore", "redisPassword")["value"],
        "v1-password"
    );

    // A removal too.
    let mut kubectl = env.kubectl().expect("kubectl");
    let deleted = kubectl
        .args(["delete", "component", "order-cache", "-n", env.namespace()])
        .output()
        .await
        .expect("kubectl delete");
    assert!(deleted.status.success(), "{deleted:?}");
    let removed = lines.next().await.expect("an update");
    assert_eq!(names(&removed, "components"), ["orders-only", "statestore"]);

    // The stream ends after its lifetime; the sidecar is to reconnect.
    assert_eq!(lines.next_within(Duration::from_secs(30)).await, None);
    crate::support::eventually_zero_streams(&api.metrics).await;
}

#[tokio::test]
async fn the_kubernetes_secret_store_reads_only_the_pods_namespace_within_its_scopes() {
    let env = env_with_crds().await;
    let other = TestEnv::start().await;
    apply_resources(&env, "mine").await;
    apply_resources(&other, "theirs").await;
    env.kubectl_apply(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: hidden}
---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: locked}
spec:
  secrets:
    scopes:
    - {storeName: kubernetes, defaultAccess: deny, allowedSecrets: [redis]}
"#,
    )
    .await
    .expect("apply");
    let open_pod = dapr_pod(&env, "order-1", "order-sa", "order").await;
    let locked_pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "order-2", "annotations": {
            "dapr.io/enabled": "true", "dapr.io/app-id": "order", "dapr.io/config": "locked"}},
        "spec": {"serviceAccountName": "order-sa", "automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "app:1"}]}
    }))
    .expect("pod");
    let locked_pod = env
        .namespaced::<Pod>()
        .create(&PostParams::default(), &locked_pod)
        .await
        .expect("create");
    let api = start_api(env.client(), sidecar_api::STREAM_LIFETIME).await;
    let ns = env.namespace();
    let secret_url = |pod: &str, name: &str| {
        format!(
            "{}/v1/namespaces/{ns}/pods/{pod}/secrets/{name}?appId=order",
            api.base
        )
    };
    let open = token(&env, "order-sa", Some(&open_pod)).await;
    let (status, redis) = get(&secret_url("order-1", "redis"), Some(&open)).await;
    assert_eq!(
        (status, redis["password"].as_str()),
        (200, Some("mine-password")),
        "{redis}"
    );
    let (status, db) = get(&secret_url("order-1", "db"), Some(&open)).await;
    assert_eq!((status, db["password"].as_str()), (200, Some("hidden")));
    let (status, missing) = get(&secret_url("order-1", "absent"), Some(&open)).await;
    assert_eq!(
        (status, missing["errorCode"].as_str()),
        (404, Some("ERR_SECRET_NOT_FOUND"))
    );
    let (status, all) = get(
        &format!(
            "{}/v1/namespaces/{ns}/pods/order-1/secrets?appId=order",
            api.base
        ),
        Some(&open),
    )
    .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["redis"]["password"], "mine-password");
    assert!(!all.to_string().contains("theirs"), "{all}");

    // The pod's own Configuration (from its annotation, not the request) limits it to `redis`.
    let locked = token(&env, "order-sa", Some(&locked_pod)).await;
    let (status, _) = get(&secret_url("order-2", "redis"), Some(&locked)).await;
    assert_eq!(status, 200);
    let (status, denied) = get(&secret_url("order-2", "db"), Some(&locked)).await;
    assert_eq!(
        (status, denied["errorCode"].as_str()),
        (403, Some("ERR_PERMISSION_DENIED")),
        "{denied}"
    );
    let (_, all) = get(
        &format!(
            "{}/v1/namespaces/{ns}/pods/order-2/secrets?appId=order",
            api.base
        ),
        Some(&locked),
    )
    .await;
    assert!(
        all.get("db").is_none() && all.get("redis").is_some(),
        "{all}"
    );

    // Another namespace's token reads nothing here.
    let stranger_pod = dapr_pod(&other, "order-1", "order-sa", "order").await;
    let stranger = token(&other, "order-sa", Some(&stranger_pod)).await;
    let (status, _) = get(&secret_url("order-1", "redis"), Some(&stranger)).await;
    assert_eq!(status, 403);
}
