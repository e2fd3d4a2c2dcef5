//! What the one-machine cluster scenario does again and again: kubectl in a namespace, waiting
//! for ready pods and Endpoints, calling sidecars, reading Redis, the app's Deployment.

#![allow(clippy::unwrap_used, reason = "a test fails on what it unwraps")]

pub mod traffic;

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use std::time::Duration;
use tandem_e2e::one_machine::{APP_IMAGE, OneMachineCluster};
use tandem_envtest::{TestEnv, eventually};
use tandem_testkit::RedisServer;

pub const ROLLOUT: Duration = Duration::from_secs(90);
pub const REACT: Duration = Duration::from_secs(30);

pub fn deployment(app: &str, replicas: u32) -> String {
    deployment_with(
        app,
        replicas,
        10,
        &["--port", "8080", "--drain-seconds", "2"],
    )
}

/// A Deployment of the e2e app with Dapr enabled, its grace period and its arguments.
pub fn deployment_with(app: &str, replicas: u32, grace_seconds: u32, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {app}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata:
      labels: {{app: {app}}}
      annotations:
        dapr.io/enabled: "true"
        dapr.io/app-id: {app}
        dapr.io/app-port: "8080"
        dapr.io/sidecar-listen-addresses: "0.0.0.0"
    spec:
      terminationGracePeriodSeconds: {grace_seconds}
      containers:
        - name: app
          image: {APP_IMAGE}
          args: [{}]
          ports: [{{containerPort: 8080}}]
"#,
        args.join(", ")
    )
}

pub async fn namespace(env: &TestEnv, prefix: &str) -> String {
    let name = format!("{prefix}-{:06x}", rand_suffix());
    let object: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(env.client())
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    name
}

pub fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() & 0xff_ffff)
        .unwrap_or(0)
}

pub async fn apply(env: &TestEnv, namespace: &str, manifest: &str) {
    env.run_kubectl(&["--namespace", namespace, "apply", "-f", "-"], manifest)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

pub async fn kubectl(env: &TestEnv, namespace: &str, args: &[&str]) -> String {
    let mut all = vec!["--namespace", namespace];
    all.extend_from_slice(args);
    env.run_kubectl(&all, "")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `(name, IP)` of the ready, not terminating pods of `app`, once there are `count`.
pub async fn ready_pods(env: &TestEnv, ns: &str, app: &str, count: usize) -> Vec<(String, String)> {
    let pods: Api<Pod> = Api::namespaced(env.client(), ns);
    let what = format!("{count} ready pods of {app}");
    eventually(&what, ROLLOUT, || async {
        let listed = pods
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .ok()?;
        let ready: Vec<(String, String)> = listed
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                let conditions = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.clone())
                    .unwrap_or_default();
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
            .filter_map(|p| Some((p.metadata.name.clone()?, p.status.as_ref()?.pod_ip.clone()?)))
            .collect();
        (ready.len() == count).then_some(ready)
    })
    .await
}

/// Waits until Service `<app>-dapr`'s Endpoints list exactly `count` ready addresses.
pub async fn endpoints(env: &TestEnv, ns: &str, app: &str, count: usize) {
    let api: Api<Endpoints> = Api::namespaced(env.client(), ns);
    let name = format!("{app}-dapr");
    eventually(
        &format!("{count} addresses behind {name}"),
        ROLLOUT,
        || async {
            let endpoints = api.get_opt(&name).await.ok()??;
            let addresses: usize = endpoints
                .subsets
                .iter()
                .flatten()
                .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                .sum();
            (addresses == count).then_some(())
        },
    )
    .await
}

/// `redis-cli EXISTS key` against the test's Redis.
pub fn redis_has(redis: &RedisServer, key: &str) -> bool {
    let addr = redis.addr();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let output = std::process::Command::new("redis-cli")
        .args(["-h", host, "-p", port, "--raw", "EXISTS", key])
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).trim() == "1"
}

pub fn restart_counts(pods: &[Pod]) -> Vec<i32> {
    pods.iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .collect()
}

/// Prints the control plane's and the pods' logs when the test fails.
pub struct Logs<'a> {
    pub cluster: &'a OneMachineCluster,
    pub namespace: String,
}

impl Drop for Logs<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.cluster.logs(&self.namespace));
        }
    }
}

/// The shop namespace's Secret, Components (Redis state and pub/sub at `redis`, an in-memory
/// store scoped to order) and shipping's Subscription to `orders`.
pub fn shop_manifest(redis: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: app-secret}}
stringData: {{password: s3cret}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: statestore}}
spec:
  type: state.redis
  version: v1
  metadata:
    - {{name: redisHost, value: "{redis}"}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: pubsub}}
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - {{name: redisHost, value: "{redis}"}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: audit}}
spec: {{type: state.in-memory, version: v1}}
scopes: [order]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {{name: orders}}
spec:
  pubsubname: pubsub
  topic: orders
  routes: {{default: /orders}}
scopes: [shipping]
"#
    )
}

/// The statestore Component edited: keys without the app-id prefix (`keyPrefix: none`).
pub fn edited_statestore(redis: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: statestore}}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n    - {{name: redisHost, value: \"{redis}\"}}\n    - {{name: keyPrefix, value: none}}\n"
    )
}

/// The pubsub Component edited (a new instance) and a Subscription to `refunds` added.
pub fn edited_pubsub_and_refunds(redis: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: pubsub}}\nspec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n    - {{name: redisHost, value: \"{redis}\"}}\n    - {{name: processingTimeout, value: 30s}}\n---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {{name: refunds}}\nspec:\n  pubsubname: pubsub\n  topic: refunds\n  routes: {{default: /refunds}}\nscopes: [shipping]\n"
    )
}

/// mTLS is on for an injected sidecar (the chart's default `global.mtls.enabled`): its metrics
/// port (9090) shows one successful mTLS start, and its internal port (50002) answers no
/// plaintext request, even one that forges the caller headers.
pub async fn assert_mtls_on(http: &reqwest::Client, pod_ip: &str) {
    let metrics = http
        .get(format!("http://{pod_ip}:9090/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("dapr_runtime_mtls_init_total") && l.ends_with(" 1")),
        "{pod_ip}: no successful mTLS start in\n{metrics}"
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect((pod_ip, 50002))
        .await
        .unwrap();
    let forged = "POST /v1.0/invoke/x/method/admin HTTP/1.1\r\nhost: x\r\ndapr-caller-app-id: order\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    stream.write_all(forged.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{pod_ip}:50002 answered plaintext: {}",
        String::from_utf8_lossy(&answer)
    );
}

/// The injected sidecar of `pod` got the control plane's trust anchors (the ConfigMap the
/// operator publishes in the release namespace) and the operator's identity, as Dapr's injector
/// passes them, and verified the operator's TLS with them (its log says so).
pub async fn assert_control_plane_verified(
    env: &TestEnv,
    cluster: &OneMachineCluster,
    ns: &str,
    pod: &str,
) {
    use k8s_openapi::api::core::v1::ConfigMap;
    let release = &cluster.release_namespace;
    let bundle: ConfigMap = Api::namespaced(env.client(), release)
        .get("tandem-trust-bundle")
        .await
        .unwrap();
    let anchors = bundle.data.unwrap()["ca.crt"].clone();
    let pod: Pod = Api::namespaced(env.client(), ns).get(pod).await.unwrap();
    let daprd = pod
        .spec
        .unwrap()
        .containers
        .into_iter()
        .find(|c| c.name == "daprd")
        .unwrap();
    let env_var = |name: &str| {
        daprd
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(env_var("DAPR_TRUST_ANCHORS"), Some(anchors));
    assert_eq!(
        env_var("DAPR_CONTROLPLANE_NAMESPACE").as_deref(),
        Some(release.as_str())
    );
    let logs = cluster.node.logs(ns, 400);
    let verified = format!("spiffe://cluster.local/ns/{release}/tandem-operator");
    assert!(
        logs.contains("the control plane is verified") && logs.contains(&verified),
        "{logs}"
    );
}
