//! `spec.accessControl` on the callee: allow and deny per calling app, verb and operation
//! path, over mTLS (the caller from its certificate) and without (the caller header, as daprd).

use super::*;
use tandem_sidecar::testing::echo_app::EchoApp;

const POLICY: &str = r#"apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: b-config}
spec:
  accessControl:
    defaultAction: deny
    trustDomain: public
    policies:
    - appId: a
      defaultAction: deny
      trustDomain: public
      namespace: default
      operations:
      - {name: /orders/**, httpVerb: [GET, POST], action: allow}
      - {name: /orders/*/admin, httpVerb: ["*"], action: deny}
"#;

/// (caller, verb, path, allowed)
const CASES: &[(&str, &str, &str, bool)] = &[
    ("a", "GET", "orders/1", true),
    ("a", "POST", "orders", true),
    ("a", "POST", "ORDERS/1/items", true),
    ("a", "DELETE", "orders/1", false),
    ("a", "GET", "orders/1/admin", false),
    ("a", "GET", "inventory", false),
    ("c", "GET", "orders/1", false),
];

async fn run_cases(dir: &Path, mtls: bool) {
    let data = dir.join("data");
    let config = dir.join("b-config.yaml");
    std::fs::write(&config, POLICY).expect("write config");
    let app = EchoApp::start().await;
    let start = |id: &str| {
        let builder = SidecarBuilder::new(BIN, id, &data);
        if mtls {
            builder.arg("--enable-mtls")
        } else {
            builder
        }
    };
    let b = start("b")
        .app_port(app.port)
        .arg("--config")
        .arg(config.to_str().expect("utf-8 path"))
        .start();
    b.wait_ready(Duration::from_secs(30));
    let callers = [("a", start("a").start()), ("c", start("c").start())];
    let mut expected_hits = 0;
    for &(caller, verb, path, allowed) in CASES {
        let sidecar = &callers
            .iter()
            .find(|(id, _)| *id == caller)
            .expect("caller")
            .1;
        let method = http::Method::from_bytes(verb.as_bytes()).expect("verb");
        let response = client()
            .request(
                method,
                sidecar.url(&format!("/v1.0/invoke/b/method/{path}")),
            )
            .send()
            .await
            .expect("invoke");
        let status = response.status().as_u16();
        if allowed {
            expected_hits += 1;
            assert_eq!(status, 200, "{caller} {verb} {path}: {}", b.log());
        } else {
            assert_eq!(status, 403, "{caller} {verb} {path}");
            let body: serde_json::Value = response.json().await.expect("json");
            assert_eq!(body["errorCode"], "ERR_PERMISSION_DENIED");
        }
    }
    assert_eq!(
        app.seen().len(),
        expected_hits,
        "denied calls reached the app"
    );
    assert_eq!(acl_outcomes(&b).await, (3.0, 4.0));
    let global_blocks = metric(
        &b,
        "dapr_runtime_acl_global_policy_action_blocked_total",
        &[("src_app_id", "c")],
    )
    .await;
    assert_eq!(
        global_blocks, 1.0,
        "c has no policy: the global default decided"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_control_over_mtls() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_cases(dir.path(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_control_without_mtls_uses_the_caller_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_cases(dir.path(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invalid_policy_stops_the_sidecar_before_it_listens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.yaml");
    let bad = "kind: Configuration\nspec:\n  accessControl:\n    policies:\n    - appId: a\n      trustDomain: public\n";
    std::fs::write(&config, bad).expect("write config");
    let mut b = SidecarBuilder::new(BIN, "b", &dir.path().join("data"))
        .arg("--config")
        .arg(config.to_str().expect("utf-8 path"))
        .spawn();
    let status = b
        .wait_exit(Duration::from_secs(20))
        .expect("the sidecar exits");
    assert_eq!(status.code(), Some(64), "{}", b.log());
    assert!(b.log().contains("namespace"), "{}", b.log());
}
