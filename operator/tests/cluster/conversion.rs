//! The Subscription conversion webhook with a real kube-apiserver calling it over TLS: the
//! operator's webhook runs in this process on a free loopback port, with the CRD pointed at it by
//! URL (`--webhook-url`) and a serving certificate for 127.0.0.1.
//!
//! `subscriptions.dapr.io` is cluster-scoped and shared by every test of this binary, so this test
//! holds `CRD_CONVERSION` (no CRD install meanwhile) and, even when it fails, stops keeping the CRD,
//! sets the strategy back to `None` and only then stops its webhook.

use crate::support::{CRD_CONVERSION, WriteLog, env_with_crds, recording_writes};
use clap::Parser;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::time::Duration;
use tandem_envtest::{TestEnv, eventually};
use tandem_operator::conversion::{self, ROUTES_ANNOTATION, WebhookArgs};
use tokio_util::sync::CancellationToken;

/// How long the operator may take to (re-)point the CRD at its webhook.
const REPATCH: Duration = Duration::from_secs(30);

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    webhook: WebhookArgs,
}

const V1: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: order-pub-sub
spec:
  topic: orders
  route: /checkout
  pubsubname: order-pub-sub
scopes:
- orderprocessing
- checkout
"#;

const V2: &str = r#"
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: products
spec:
  pubsubname: pubsub
  topic: inventory
  routes:
    rules:
    - match: event.type == "widget"
      path: /widgets
    - match: event.type == "gadget"
      path: /gadgets
    default: /products
"#;

#[tokio::test]
async fn subscriptions_convert_through_the_webhook_and_the_crd_is_kept_pointing_at_it() {
    let env = env_with_crds().await;
    let _exclusive = CRD_CONVERSION.lock().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let flags = Flags::try_parse_from([
        "tandem-operator".to_owned(),
        format!("--webhook-addr=127.0.0.1:{port}"),
        format!("--webhook-url=https://127.0.0.1:{port}/convert"),
        "--webhook-tls-san=127.0.0.1".to_owned(),
    ])
    .expect("flags");
    let namespace = env.namespace();
    let webhook = conversion::Webhook::start(env.client(), namespace, &flags.webhook)
        .await
        .expect("the webhook starts");
    let (stop_keeping, stop_serving) = (CancellationToken::new(), CancellationToken::new());
    let writes = WriteLog::default();
    let keeping = tokio::spawn(conversion::keep_crd_conversion(
        recording_writes(env.client(), writes.clone()),
        flags.webhook.target(namespace),
        webhook.certificates(),
        stop_keeping.clone(),
    ));
    let serving = tokio::spawn(webhook.serve(stop_serving.clone()));
    // The checks run in a task of their own so that, pass or fail, the strategy goes back to
    // None while the webhook still answers.
    let checks = check_conversions(env.client(), env_handle(&env), writes);
    let outcome = tokio::spawn(checks).await;
    stop_keeping.cancel();
    let kept = tokio::time::timeout(REPATCH, keeping).await;
    restore_strategy_none(&env).await;
    stop_serving.cancel();
    let served = tokio::time::timeout(REPATCH, serving).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
    kept.expect("the keeper stops in time").expect("no panic");
    let served = served
        .expect("the webhook stops in time")
        .expect("no panic");
    served.expect("the webhook served without error");
}

/// What the checks need from the test's environment, owned (they run in a task of their own).
struct EnvHandle {
    kubeconfig: std::path::PathBuf,
    kubectl: std::path::PathBuf,
    namespace: String,
}

fn env_handle(env: &TestEnv) -> EnvHandle {
    EnvHandle {
        kubeconfig: env.control_plane().kubeconfig().to_owned(),
        kubectl: env.control_plane().assets().kubectl.clone(),
        namespace: env.namespace().to_owned(),
    }
}

impl EnvHandle {
    async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--namespace", &self.namespace])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        if let (Some(mut pipe), Some(text)) = (child.stdin.take(), stdin) {
            pipe.write_all(text.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
        }
        let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// `kubectl get subscriptions.<version>.dapr.io <name> -o json`.
    async fn get(&self, version: &str, name: &str) -> Value {
        let resource = format!("subscriptions.{version}.dapr.io");
        let out = self
            .kubectl(&["get", &resource, name, "-o", "json"], None)
            .await;
        let out = out.unwrap_or_else(|e| panic!("kubectl get {resource} {name}: {e}"));
        serde_json::from_str(&out).expect("kubectl prints JSON")
    }
}

async fn check_conversions(client: kube::Client, env: EnvHandle, writes: WriteLog) {
    let crds = Api::<CustomResourceDefinition>::all(client);
    let pointed = eventually("the CRD pointing at the webhook", REPATCH, || async {
        let crd = crds.get(conversion::CRD_NAME).await.ok()?;
        let conversion = crd.spec.conversion?;
        let config = conversion.webhook?.client_config?;
        let ca = config.ca_bundle?;
        (conversion.strategy == "Webhook" && !ca.0.is_empty()).then_some(config.url)
    })
    .await;
    assert!(pointed.is_some_and(|url| url.starts_with("https://127.0.0.1:")));

    // A Dapr v1alpha1 manifest: stored as v2alpha1 with routes.default, read back either way.
    env.kubectl(&["apply", "-f", "-"], Some(V1))
        .await
        .expect("apply v1alpha1");
    let v2 = env.get("v2alpha1", "order-pub-sub").await;
    assert_eq!(v2["apiVersion"], "dapr.io/v2alpha1");
    assert_eq!(
        v2["spec"]["routes"],
        json!({"default": "/checkout"}),
        "{v2}"
    );
    assert!(v2["spec"].get("route").is_none(), "{v2}");
    assert_eq!(v2["scopes"], json!(["orderprocessing", "checkout"]));
    let v1 = env.get("v1alpha1", "order-pub-sub").await;
    assert_eq!(v1["apiVersion"], "dapr.io/v1alpha1");
    assert_eq!(v1["spec"]["route"], "/checkout", "{v1}");
    assert_eq!(v1["spec"]["topic"], "orders");
    assert!(
        v1["metadata"]
            .get("annotations")
            .is_none_or(|a| a.get(ROUTES_ANNOTATION).is_none())
    );

    // v2alpha1 with rules: v1alpha1 sees the default route, and the rules survive the trip.
    env.kubectl(&["apply", "-f", "-"], Some(V2))
        .await
        .expect("apply v2alpha1");
    let v1 = env.get("v1alpha1", "products").await;
    assert_eq!(v1["spec"]["route"], "/products", "{v1}");
    assert!(
        v1["metadata"]["annotations"][ROUTES_ANNOTATION].is_string(),
        "{v1}"
    );
    let v2 = env.get("v2alpha1", "products").await;
    let rules = &v2["spec"]["routes"]["rules"];
    assert_eq!(
        rules[0],
        json!({"match": "event.type == \"widget\"", "path": "/widgets"}),
        "{v2}"
    );
    assert_eq!(rules[1]["path"], "/gadgets");
    assert!(
        v2["metadata"]
            .get("annotations")
            .is_none_or(|a| a.get(ROUTES_ANNOTATION).is_none()),
        "{v2}"
    );
    // A v1alpha1 write (a label) keeps the rules it cannot express.
    env.kubectl(
        &[
            "label",
            "subscriptions.v1alpha1.dapr.io",
            "products",
            "team=shop",
        ],
        None,
    )
    .await
    .expect("label through v1alpha1");
    let v2 = env.get("v2alpha1", "products").await;
    assert_eq!(v2["metadata"]["labels"]["team"], "shop");
    assert_eq!(v2["spec"]["routes"]["rules"][1]["path"], "/gadgets", "{v2}");

    // Someone blanks the conversion: it is put back.
    let blank = json!({"spec": {"conversion": {"strategy": "None", "webhook": null}}});
    crds.patch(
        conversion::CRD_NAME,
        &PatchParams::default(),
        &Patch::Merge(&blank),
    )
    .await
    .expect("blank the conversion");
    let started = std::time::Instant::now();
    eventually("the conversion re-patched", REPATCH, || async {
        let crd = crds.get(conversion::CRD_NAME).await.ok()?;
        let conversion = crd.spec.conversion?;
        let ca = conversion.webhook?.client_config?.ca_bundle?;
        (conversion.strategy == "Webhook" && !ca.0.is_empty()).then_some(())
    })
    .await;
    eprintln!("re-patched after {:?}", started.elapsed());

    // Another change to the CRD (a label) is nothing to write for; conversions still work.
    let label = json!({"metadata": {"labels": {"touched": "yes"}}});
    crds.patch(
        conversion::CRD_NAME,
        &PatchParams::default(),
        &Patch::Merge(&label),
    )
    .await
    .expect("label the CRD");
    let v1 = env.get("v1alpha1", "products").await;
    assert_eq!(v1["spec"]["route"], "/products", "{v1}");
    // Two writes in all, however often the CRD changed: the first one and the repair.
    let crd_writes: Vec<_> = writes
        .writes()
        .into_iter()
        .filter(|w| w.contains("customresourcedefinitions"))
        .collect();
    assert_eq!(crd_writes.len(), 2, "{crd_writes:?}");
    assert!(
        crd_writes.iter().all(|w| w.starts_with("PATCH ")),
        "{crd_writes:?}"
    );
}

/// Points the CRD back at no webhook (what the other tests install) and waits until the apiserver
/// has stopped calling it: a v1alpha1 write is then stored with its `route` unmoved.
async fn restore_strategy_none(env: &TestEnv) {
    let crds = Api::<CustomResourceDefinition>::all(env.client());
    let none = json!({"spec": {"conversion": {"strategy": "None", "webhook": null}}});
    crds.patch(
        conversion::CRD_NAME,
        &PatchParams::default(),
        &Patch::Merge(&none),
    )
    .await
    .expect("strategy None");
    let probe = "apiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: probe}\nspec: {pubsubname: p, topic: t, route: /probe}\n";
    eventually(
        "the apiserver converting without the webhook",
        REPATCH,
        || async {
            env.kubectl_apply(probe).await.ok()?;
            let out = env
                .run_kubectl(
                    &[
                        "get",
                        "subscriptions.v2alpha1.dapr.io",
                        "probe",
                        "-o",
                        "json",
                    ],
                    "",
                )
                .await
                .ok()?;
            let v2: Value = serde_json::from_str(&out).ok()?;
            (v2["spec"]["route"] == "/probe").then_some(())
        },
    )
    .await;
}
