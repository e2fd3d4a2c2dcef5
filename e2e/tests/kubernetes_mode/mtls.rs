//! mTLS in Kubernetes mode, against envtest's kube-apiserver and the operator's real CA (its key in
//! a Secret, `ca::ensure`): each sidecar gets its workload certificate by POSTing a CSR with its
//! pod-bound ServiceAccount token, the sidecars call each other over mTLS, and with a 6 s TTL
//! (the Configuration's `spec.mtls.workloadCertTTL`) calls keep succeeding across renewals. The CA
//! refuses a token of another pod, of a deleted pod, or for another audience; a sidecar refuses a
//! certificate that does not name the identity it expects; the internal port refuses plaintext.
//! The sidecar API itself is TLS as the operator's SPIFFE ID (`verified_control_plane`).

use super::support::{
    AppPod, Operator, env_with_crds, kubernetes_sidecar, operator_api, pod, start, token,
    token_file,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tandem_envtest::{TestEnv, eventually};
use tandem_operator::ca::{CA_SECRET_NAME, ensure};
use tandem_operator::sidecar_api::TOKEN_AUDIENCE;
use tandem_sidecar::testing::echo_app::EchoApp;
use tandem_sidecar::testing::sidecar::Sidecar;
use tandem_testkit::dns_server::DnsServer;
use tandem_testkit::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CALLS_FOR: Duration = Duration::from_secs(10);
const TTL: &str = "6s";

async fn operator_with_ca(env: &TestEnv) -> Operator {
    let ca = ensure(env.client(), env.namespace(), CA_SECRET_NAME)
        .await
        .expect("the CA Secret");
    operator_api(env.client(), Some(ca)).await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// The sum of a metric's samples on a sidecar's metrics port (whose labels contain `labels`).
async fn metric(sidecar: &Sidecar, name: &str, labels: &[(&str, &str)]) -> f64 {
    let url = format!("http://127.0.0.1:{}/metrics", sidecar.metrics_port);
    let text = http()
        .get(url)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A plaintext request to `ip:port`, as a pod without a certificate would send it; what came
/// back before the connection ended (or 5 s passed).
async fn plaintext(ip: Ipv4Addr, port: u16, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect((ip, port))
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sidecars_get_certificates_from_the_operator_ca_and_keep_calling_across_renewals() {
    let env = env_with_crds().await;
    let ns = env.namespace().to_owned();
    let configuration = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {{name: appconfig}}\nspec: {{mtls: {{workloadCertTTL: {TTL}}}}}\n"
    );
    env.kubectl_apply(&configuration).await.expect("apply");
    let operator = operator_with_ca(&env).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = DnsServer::start(5).await.expect("dns");
    let (order_ip, catalog_ip) = (Ipv4Addr::new(127, 0, 0, 4), Ipv4Addr::new(127, 0, 0, 5));
    dns.set(
        &format!("catalog-dapr.{ns}.svc.cluster.local"),
        &[catalog_ip],
    );
    dns.set(&format!("order-dapr.{ns}.svc.cluster.local"), &[order_ip]);
    let internal_port = free_port();
    let order_pod = pod(&env, "order-1", "order").await;
    let catalog_pod = pod(&env, "catalog-1", "catalog").await;
    let order_token = token_file(&env, &order_pod, dir.path()).await;
    let catalog_token = token_file(&env, &catalog_pod, dir.path()).await;
    let (order_app, catalog_app) = (EchoApp::start().await, EchoApp::start().await);
    let mut sidecars = Vec::new();
    for (app_id, pod_name, pod_ip, token_path, app_port) in [
        (
            "catalog",
            "catalog-1",
            catalog_ip,
            &catalog_token,
            catalog_app.port,
        ),
        ("order", "order-1", order_ip, &order_token, order_app.port),
    ] {
        let pod = AppPod {
            app_id,
            pod_name,
            pod_ip,
            namespace: &ns,
            token: token_path,
            app_port,
            config: "appconfig",
        };
        let builder = kubernetes_sidecar(&pod, &operator, &dns, internal_port, dir.path());
        sidecars.push(start(builder.arg("--enable-mtls")).await);
    }
    let (catalog, order) = (&sidecars[0], &sidecars[1]);
    for sidecar in [catalog, order] {
        assert_eq!(
            metric(sidecar, "dapr_runtime_mtls_init_total", &[]).await,
            1.0
        );
        let log = sidecar.log();
        assert!(log.contains("the control-plane CA at"), "{log}");
        assert!(
            log.contains("the control plane is verified")
                && log.contains("spiffe://cluster.local/ns/tandem-system/tandem-operator"),
            "{log}"
        );
    }

    // order → catalog over mTLS, for longer than a certificate lives.
    let http = http();
    let (mut calls, mut failures) = (0u32, Vec::new());
    let started = Instant::now();
    while started.elapsed() < CALLS_FOR {
        let answer = http
            .post(order.url(&format!("/v1.0/invoke/catalog/method/items/{calls}")))
            .header("dapr-caller-app-id", "trusted-admin")
            .body("x")
            .send()
            .await;
        match answer {
            Ok(r) if r.status() == 200 => {}
            Ok(r) => failures.push(format!("status {}", r.status())),
            Err(e) => failures.push(e.to_string()),
        }
        calls += 1;
    }
    let signed = operator.metrics.certificates_signed();
    let rotated = "dapr_runtime_mtls_workload_cert_rotated_total";
    let (order_renewed, catalog_renewed) = (
        metric(order, rotated, &[]).await,
        metric(catalog, rotated, &[]).await,
    );
    println!(
        "mTLS in Kubernetes mode: {calls} calls over {CALLS_FOR:?} with {TTL} certificates, {} failed; \
         the operator signed {signed} certificates (renewals: order {order_renewed}, catalog {catalog_renewed})",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {failures:?}\norder log:\n{}",
        failures.len(),
        order.log()
    );
    assert!(calls >= 10, "only {calls} calls in {CALLS_FOR:?}");
    assert!(
        order_renewed >= 1.0 && catalog_renewed >= 1.0,
        "each sidecar renewed: order {order_renewed}, catalog {catalog_renewed}"
    );
    assert!(signed >= 4, "≥ 2 certificates per sidecar, got {signed}");
    for sidecar in [catalog, order] {
        let failed = "dapr_runtime_mtls_workload_cert_rotated_fail_total";
        assert_eq!(metric(sidecar, failed, &[]).await, 0.0, "{}", sidecar.log());
    }
    // The callee took the caller's identity from its certificate, not from the header.
    let seen = catalog_app.seen();
    assert_eq!(
        seen.len(),
        calls as usize,
        "each call reached catalog's app once"
    );
    let callers: Vec<_> = seen
        .iter()
        .filter_map(|s| s.headers.get("dapr-caller-app-id"))
        .collect();
    assert!(
        callers.len() == seen.len() && callers.iter().all(|c| *c == "order"),
        "{callers:?}"
    );

    // A pod without a certificate reaches nothing through catalog's internal port.
    let forged = "POST /v1.0/invoke/catalog/method/admin HTTP/1.1\r\nhost: catalog\r\ndapr-callee-app-id: catalog\r\ndapr-caller-app-id: order\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let answer = plaintext(catalog_ip, internal_port, forged).await;
    assert!(
        !answer.starts_with("HTTP/"),
        "plaintext was answered: {answer}"
    );
    let refused = "dapr_runtime_mtls_peer_refused_total";
    let labels = [("side", "server"), ("reason", "not_tls")];
    eventually(
        "the plaintext refusal to be counted",
        Duration::from_secs(10),
        || async { (metric(catalog, refused, &labels).await >= 1.0).then_some(()) },
    )
    .await;
    assert!(
        !catalog_app.seen().iter().any(|s| s.uri.ends_with("/admin")),
        "the plaintext request reached the app"
    );
}

/// `POST …/certificate` for `pod_name` with `token` and a body that is no CSR: a 400 means the
/// caller was admitted (only the CSR was wrong); a refusal comes before the body is read.
async fn ask_for_certificate(operator: &Operator, ns: &str, pod_name: &str, token: &str) -> u16 {
    let url = format!(
        "{}{}",
        operator.base_url(),
        tandem_crds::control_plane::certificate_path(ns, pod_name)
    );
    operator
        .http()
        .post(url)
        .bearer_auth(token)
        .json(&json!({"certificateSigningRequest": "not a CSR"}))
        .send()
        .await
        .expect("the operator answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ca_signs_only_for_the_pod_that_asks_and_a_sidecar_refuses_another_identity() {
    let env = env_with_crds().await;
    let ns = env.namespace().to_owned();
    env.kubectl_apply(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: appconfig}\nspec: {}\n---\napiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: otherdomain}\nspec: {accessControl: {defaultAction: allow, trustDomain: other}}\n",
    )
    .await
    .expect("apply");
    let operator = operator_with_ca(&env).await;
    let order_pod = pod(&env, "order-1", "order").await;
    let catalog_pod = pod(&env, "catalog-1", "catalog").await;
    let gone_pod = pod(&env, "gone-1", "gone").await;
    let order_token = token(&env, &order_pod, TOKEN_AUDIENCE).await;
    let catalog_token = token(&env, &catalog_pod, TOKEN_AUDIENCE).await;
    let gone_token = token(&env, &gone_pod, TOKEN_AUDIENCE).await;
    let api_server_token = token(&env, &order_pod, "https://kubernetes.default.svc").await;

    let own = ask_for_certificate(&operator, &ns, "order-1", &order_token).await;
    assert_eq!(
        own, 400,
        "order-1's own token is admitted (the CSR is what is wrong)"
    );
    let other_pod = ask_for_certificate(&operator, &ns, "order-1", &catalog_token).await;
    assert_eq!(
        other_pod, 403,
        "catalog-1's token does not get order-1's identity"
    );
    let audience = ask_for_certificate(&operator, &ns, "order-1", &api_server_token).await;
    assert!(
        matches!(audience, 401 | 403),
        "a token for another audience: {audience}"
    );
    let pods = env.namespaced::<Pod>();
    pods.delete("gone-1", &DeleteParams::background().grace_period(0))
        .await
        .expect("delete the pod");
    eventually("gone-1 to be deleted", Duration::from_secs(30), || async {
        pods.get_opt("gone-1")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
    let deleted = ask_for_certificate(&operator, &ns, "gone-1", &gone_token).await;
    assert!(
        matches!(deleted, 401 | 403),
        "a deleted pod's token: {deleted}"
    );
    assert_eq!(operator.metrics.certificates_signed(), 0);

    // A sidecar that expects another trust domain than its pod's Configuration gives refuses
    // what the CA signs (spiffe://public/…), and does not start.
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = DnsServer::start(5).await.expect("dns");
    let token_path = token_file(&env, &order_pod, dir.path()).await;
    let pod = AppPod {
        app_id: "order",
        pod_name: "order-1",
        pod_ip: Ipv4Addr::new(127, 0, 0, 6),
        namespace: &ns,
        token: &token_path,
        app_port: free_port(),
        config: "otherdomain",
    };
    let builder = kubernetes_sidecar(&pod, &operator, &dns, free_port(), dir.path());
    let mut sidecar = builder.arg("--enable-mtls").spawn();
    let exited = tokio::task::spawn_blocking(move || {
        let status = sidecar.wait_exit(Duration::from_secs(60));
        (status, sidecar.log())
    })
    .await
    .expect("wait");
    let (status, log) = exited;
    assert!(status.is_some_and(|s| !s.success()), "{status:?}\n{log}");
    let want = format!(
        "the control plane signed spiffe://public/ns/{ns}/order, not this sidecar's identity spiffe://other/ns/{ns}/order"
    );
    assert!(log.contains(&want), "{log}");
    assert_eq!(
        operator.metrics.certificates_signed(),
        1,
        "signed, then refused by the sidecar"
    );
}
