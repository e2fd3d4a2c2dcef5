//! `ensure` against a real kube-apiserver: idempotent, and two racing replicas converge on one
//! Secret and one certificate.

#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use std::time::SystemTime;
use tandem_envtest::TestEnv;
use tandem_webhook_tls::certs::{self, Sans};
use tandem_webhook_tls::secret::{self, from_secret};

fn sans() -> Sans {
    Sans::from_names(["tandem-sidecar-injector", "127.0.0.1"])
}

#[tokio::test]
async fn ensure_twice_gives_the_same_certificate() {
    let env = TestEnv::start().await;
    let first = secret::ensure(env.client(), env.namespace(), "tls", &sans())
        .await
        .unwrap();
    let second = secret::ensure(env.client(), env.namespace(), "tls", &sans())
        .await
        .unwrap();
    assert_eq!(first, second);
    let stored = env.namespaced::<Secret>().get("tls").await.unwrap();
    assert_eq!(stored.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(from_secret(&stored), Some(first));
}

#[tokio::test]
async fn concurrent_ensure_converges_on_one_secret() {
    let env = TestEnv::start().await;
    let wanted = sans();
    let (a, b) = tokio::join!(
        secret::ensure(env.client(), env.namespace(), "race", &wanted),
        secret::ensure(env.client(), env.namespace(), "race", &wanted),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "both replicas serve the same certificate");
    let secrets = env
        .namespaced::<Secret>()
        .list(&ListParams::default())
        .await
        .unwrap();
    let ours: Vec<_> = secrets
        .items
        .iter()
        .filter(|s| s.metadata.name.as_deref() == Some("race"))
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(from_secret(ours[0]), Some(a));
}

#[tokio::test]
async fn a_due_serving_cert_is_reissued_under_the_same_ca() {
    let env = TestEnv::start().await;
    let api = env.namespaced::<Secret>();
    // A Secret whose serving cert names other SANs: the CA must survive, the cert must not.
    let old = certs::generate(&Sans::from_names(["somebody-else"]), SystemTime::now()).unwrap();
    let first = secret::ensure(
        env.client(),
        env.namespace(),
        "rotate",
        &Sans::from_names(["somebody-else"]),
    )
    .await
    .unwrap();
    assert_ne!(first, old);
    let rotated = secret::ensure(env.client(), env.namespace(), "rotate", &sans())
        .await
        .unwrap();
    assert_eq!(rotated.ca_pem, first.ca_pem);
    assert_ne!(rotated.cert_pem, first.cert_pem);
    assert_eq!(
        certs::inspect(&rotated.cert_pem, "serving").unwrap().sans,
        sans()
    );
    assert_eq!(
        from_secret(&api.get("rotate").await.unwrap()),
        Some(rotated.clone())
    );

    // A Secret with garbage is replaced wholesale.
    let mut garbage = api.get("rotate").await.unwrap();
    garbage.data.as_mut().unwrap().insert(
        "ca.crt".into(),
        k8s_openapi::ByteString(b"garbage".to_vec()),
    );
    api.replace("rotate", &PostParams::default(), &garbage)
        .await
        .unwrap();
    let regenerated = secret::ensure(env.client(), env.namespace(), "rotate", &sans())
        .await
        .unwrap();
    assert_ne!(regenerated.ca_pem, rotated.ca_pem);
    assert!(!certs::needs_rotation(
        &regenerated,
        &sans(),
        SystemTime::now()
    ));
}
