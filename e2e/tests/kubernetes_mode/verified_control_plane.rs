//! The control plane, verified: with its CA on, the operator's sidecar API speaks TLS as
//! `spiffe://cluster.local/ns/tandem-system/tandem-operator`, and each sidecar is given the trust
//! anchors as the injector gives them (`DAPR_TRUST_ANCHORS`, `DAPR_CONTROLPLANE_NAMESPACE`). The
//! mTLS scenario (`mtls`) runs over that verified channel; here, a sidecar given the anchors of
//! another CA, or expecting the operator in another namespace, refuses it, sends no token, fetches
//! nothing, and exits naming the reason.

use super::support::{
    AppPod, Operator, env_with_crds, kubernetes_sidecar, operator_api, pod, token_file,
};
use std::net::Ipv4Addr;
use std::time::Duration;
use tandem_envtest::TestEnv;
use tandem_operator::ca::{CA_SECRET_NAME, ensure};
use tandem_testkit::dns_server::DnsServer;
use tandem_testkit::free_port;

/// A sidecar whose injected trust settings do not match the operator: it must refuse the operator,
/// fetch nothing, and exit saying why.
async fn refused_sidecar(
    env: &TestEnv,
    operator: &Operator,
    pod_name: &str,
    extra: &[(&str, &str)],
) -> String {
    let ns = env.namespace().to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = DnsServer::start(5).await.expect("dns");
    let order_pod = pod(env, pod_name, "order").await;
    let token_path = token_file(env, &order_pod, dir.path()).await;
    let pod = AppPod {
        app_id: "order",
        pod_name,
        pod_ip: Ipv4Addr::new(127, 0, 0, 7),
        namespace: &ns,
        token: &token_path,
        app_port: free_port(),
        config: "appconfig",
    };
    let mut builder = kubernetes_sidecar(&pod, operator, &dns, free_port(), dir.path());
    for (key, value) in extra {
        builder = builder.env(key, value);
    }
    let mut sidecar = builder.arg("--enable-mtls").spawn();
    let (status, log) = tokio::task::spawn_blocking(move || {
        let status = sidecar.wait_exit(Duration::from_secs(60));
        (status, sidecar.log())
    })
    .await
    .expect("wait");
    assert!(status.is_some_and(|s| !s.success()), "{status:?}\n{log}");
    assert!(!log.contains("resources from the operator"), "{log}");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sidecar_refuses_an_operator_it_cannot_verify_and_fetches_nothing() {
    let env = env_with_crds().await;
    env.kubectl_apply(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: appconfig}\nspec: {}\n",
    )
    .await
    .expect("apply");
    let ca = ensure(env.client(), env.namespace(), CA_SECRET_NAME)
        .await
        .expect("the CA Secret");
    let operator = operator_api(env.client(), Some(ca)).await;
    let (rogue_anchors, _, _) =
        tandem_operator::ca::sign::generate_ca(std::time::SystemTime::now()).expect("a CA");

    let log = refused_sidecar(
        &env,
        &operator,
        "order-1",
        &[("DAPR_TRUST_ANCHORS", &rogue_anchors)],
    )
    .await;
    assert!(
        log.contains("is not trusted") && log.contains("unknown CA"),
        "{log}"
    );
    let log = refused_sidecar(
        &env,
        &operator,
        "order-2",
        &[("DAPR_CONTROLPLANE_NAMESPACE", "elsewhere")],
    )
    .await;
    assert!(
        log.contains("wrong identity")
            && log.contains("spiffe://cluster.local/ns/elsewhere/tandem-operator"),
        "{log}"
    );
    // Neither got anything: no request reached the API's handlers.
    for result in ["ok", "unauthenticated", "forbidden"] {
        assert_eq!(operator.metrics.sidecar_api_requests(result), 0, "{result}");
    }
    assert_eq!(operator.metrics.certificates_signed(), 0);
}
