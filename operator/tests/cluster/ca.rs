//! The control-plane CA against the real kube-apiserver: real pods, real ServiceAccount tokens
//! from the TokenRequest API (pod-bound, audience-bound) verified by real TokenReviews. A pod gets
//! a certificate for its own identity only; every other caller is refused; replicas that start
//! together end with one CA.

use crate::sidecar_api::{dapr_pod, start_api_with_ca, token_for};
use crate::support::{REACT, env_with_crds};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use rcgen::{CertificateParams, KeyPair, SanType};
use serde_json::{Value, json};
use std::sync::Arc;
use tandem_envtest::TestEnv;
use tandem_operator::ca;
use tandem_operator::metrics::{Metrics, SignFailure};
use tandem_operator::sidecar_api::{STREAM_LIFETIME, TOKEN_AUDIENCE};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

/// A CSR over a fresh key, asking for `uri` (which the CA must ignore).
fn csr(uri: &str) -> String {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .subject_alt_names
        .push(SanType::URI(uri.try_into().expect("a URI")));
    params
        .serialize_request(&key)
        .expect("CSR")
        .pem()
        .expect("PEM")
}

async fn post(
    base: &str,
    namespace: &str,
    pod: &str,
    token: Option<&str>,
    csr: &str,
) -> (u16, Value) {
    let url = format!("{base}/v1/namespaces/{namespace}/pods/{pod}/certificate");
    let mut request = reqwest::Client::new()
        .post(url)
        .json(&json!({"certificateSigningRequest": csr}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// A refused request: case, namespace, pod, token, HTTP status, and the metric reason.
type Refusal<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, u16, SignFailure);

fn der(pem: &str) -> Vec<u8> {
    ca::sign::pem_certificates(pem)
        .expect("PEM")
        .remove(0)
        .to_vec()
}

/// The certificate's URI SANs, after checking it is signed by the trust anchor.
fn verified_uris(answer: &Value) -> Vec<String> {
    let leaf = der(answer["workloadCertificate"]
        .as_str()
        .expect("a certificate"));
    let root = der(answer["trustAnchors"].as_str().expect("trust anchors"));
    let (_, leaf) = X509Certificate::from_der(&leaf).expect("X.509 leaf");
    let (_, root) = X509Certificate::from_der(&root).expect("X.509 root");
    let anchor: &SubjectPublicKeyInfo<'_> = root.public_key();
    leaf.verify_signature(Some(anchor))
        .expect("signed by the trust anchor");
    let san = leaf
        .subject_alternative_name()
        .expect("SAN parses")
        .expect("a SAN");
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_pod_gets_its_own_identity_and_nobody_else_gets_one() {
    let env = env_with_crds().await;
    let other = TestEnv::start().await;
    let ns = env.namespace().to_owned();
    let authority = ca::ensure(env.client(), &ns, ca::CA_SECRET_NAME)
        .await
        .expect("the CA");
    let issuer_not_after = authority.issuer_not_after();
    let api = start_api_with_ca(env.client(), STREAM_LIFETIME, Some(Arc::new(authority))).await;
    // Dapr's Sentry metrics: `(received, signed, refused for reason)`.
    let signs = |reason| {
        api.metrics
            .certificate_requests(reason)
            .expect("a CA is loaded: the Sentry series exist")
    };
    assert_eq!(
        api.metrics.issuer_certificate(),
        Some((issuer_not_after, 0)),
        "the issuer's expiry, recorded when the CA is loaded"
    );
    assert_eq!(signs(SignFailure::InvalidToken), (0, 0, 0));
    let order = dapr_pod(&env, "order-1", "order-sa", "order").await;
    let catalog = dapr_pod(&env, "catalog-1", "catalog-sa", "catalog").await;
    let order_token = token_for(&env, "order-sa", Some(&order), TOKEN_AUDIENCE).await;
    let catalog_token = token_for(&env, "catalog-sa", Some(&catalog), TOKEN_AUDIENCE).await;
    let greedy = csr(&format!("spiffe://public/ns/{ns}/catalog"));

    // The pod's own token: a certificate for the pod's app id, whatever the CSR asked for.
    let (status, answer) = post(&api.base, &ns, "order-1", Some(&order_token), &greedy).await;
    assert_eq!(status, 200, "{answer}");
    let own = format!("spiffe://public/ns/{ns}/order");
    assert_eq!(answer["spiffeId"], own.as_str());
    assert_eq!(verified_uris(&answer), vec![own]);
    assert_eq!(signs(SignFailure::InvalidToken), (1, 1, 0), "one good CSR");

    // Refused: each with its reason, none with a certificate.
    let unbound_catalog = token_for(&env, "catalog-sa", None, TOKEN_AUDIENCE).await;
    let wrong_audience = token_for(&env, "order-sa", Some(&order), "someone-else").await;
    let stranger = dapr_pod(&other, "order-1", "order-sa", "order").await;
    let stranger_token = token_for(&other, "order-sa", Some(&stranger), TOKEN_AUDIENCE).await;
    use SignFailure::{InvalidToken, NamespaceMismatch, PodMismatch};
    let refusals: [Refusal<'_>; 7] = [
        ("no token", &ns, "order-1", None, 401, InvalidToken),
        // The TokenReview names the CA's audience, so the API server itself refuses it.
        (
            "a token for another audience",
            &ns,
            "order-1",
            Some(&wrong_audience),
            401,
            InvalidToken,
        ),
        (
            "another pod's bound token",
            &ns,
            "order-1",
            Some(&catalog_token),
            403,
            PodMismatch,
        ),
        (
            "another ServiceAccount's token",
            &ns,
            "order-1",
            Some(&unbound_catalog),
            403,
            PodMismatch,
        ),
        (
            "our token naming another namespace",
            other.namespace(),
            "order-1",
            Some(&order_token),
            403,
            NamespaceMismatch,
        ),
        (
            "another namespace's token naming our pod",
            &ns,
            "order-1",
            Some(&stranger_token),
            403,
            NamespaceMismatch,
        ),
        (
            "our token naming another pod",
            &ns,
            "catalog-1",
            Some(&order_token),
            403,
            PodMismatch,
        ),
    ];
    for (case, namespace, pod, token, expected, reason) in refusals {
        let (received, signed, refused) = signs(reason);
        let (status, answer) = post(&api.base, namespace, pod, token, &greedy).await;
        assert_eq!(status, expected, "{case}: {answer}");
        assert!(answer["workloadCertificate"].is_null(), "{case}: {answer}");
        assert!(answer["errorCode"].is_string(), "{case}: {answer}");
        assert_eq!(
            signs(reason),
            (received + 1, signed, refused + 1),
            "{case}: counted as {}",
            reason.as_str()
        );
    }

    // A deleted pod's token is worth nothing, even once a pod of the same name is back.
    let gone = dapr_pod(&env, "order-2", "order-sa", "order").await;
    let gone_token = token_for(&env, "order-sa", Some(&gone), TOKEN_AUDIENCE).await;
    let pods: Api<Pod> = env.namespaced();
    pods.delete("order-2", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    let deadline = tokio::time::Instant::now() + REACT;
    while pods.get_opt("order-2").await.expect("get").is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the pod stays");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, answer) = post(&api.base, &ns, "order-2", Some(&gone_token), &greedy).await;
    assert!(
        matches!(status, 401 | 403),
        "deleted pod: {status} {answer}"
    );
    dapr_pod(&env, "order-2", "order-sa", "order").await;
    let (status, answer) = post(&api.base, &ns, "order-2", Some(&gone_token), &greedy).await;
    assert!(
        matches!(status, 401 | 403),
        "recreated pod: {status} {answer}"
    );

    // A garbage CSR is a bad request, not a certificate.
    let (received, _, _) = signs(SignFailure::MalformedCsr);
    let (status, answer) = post(&api.base, &ns, "order-1", Some(&order_token), "hello").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(api.metrics.certificates_signed(), 1);
    assert_eq!(signs(SignFailure::MalformedCsr), (received + 1, 1, 1));
    // Every request was counted once: 1 signed + 7 refusals + 2 for the deleted pod + 1 CSR.
    let refused: u64 = SignFailure::ALL.iter().map(|r| signs(*r).2).sum();
    assert_eq!((received + 1, refused), (11, 10));
}

#[tokio::test]
async fn the_configuration_sets_trust_domain_and_lifetime() {
    let env = env_with_crds().await;
    let ns = env.namespace().to_owned();
    env.kubectl_apply(
        r#"
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: secure}
spec:
  accessControl: {trustDomain: example.org}
  mtls: {workloadCertTTL: 1h}
"#,
    )
    .await
    .expect("kubectl apply");
    let authority = ca::ensure(env.client(), &ns, ca::CA_SECRET_NAME)
        .await
        .expect("the CA");
    let api = start_api_with_ca(env.client(), STREAM_LIFETIME, Some(Arc::new(authority))).await;
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "audit-1", "annotations": {
            "dapr.io/enabled": "true", "dapr.io/app-id": "audit", "dapr.io/config": "secure"}},
        "spec": {"serviceAccountName": "default", "automountServiceAccountToken": false,
                 "containers": [{"name": "app", "image": "app:1"}]}
    }))
    .expect("pod");
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = env.namespaced();
    let account = serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("sa");
    let _ = accounts.create(&PostParams::default(), &account).await;
    let pod: Pod = env
        .namespaced::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let token = token_for(&env, "default", Some(&pod), TOKEN_AUDIENCE).await;
    let (status, answer) = post(
        &api.base,
        &ns,
        "audit-1",
        Some(&token),
        &csr("spiffe://x/y"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        verified_uris(&answer),
        [format!("spiffe://example.org/ns/{ns}/audit")]
    );
    let leaf = der(answer["workloadCertificate"]
        .as_str()
        .expect("a certificate"));
    let (_, leaf) = X509Certificate::from_der(&leaf).expect("X.509");
    let life = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert_eq!(life, 3600 + 60, "1 h, backdated a minute");
}

#[tokio::test]
async fn replicas_starting_together_end_with_one_ca() {
    let env = TestEnv::start().await;
    let ns = env.namespace().to_owned();
    for round in 0..3 {
        let name = format!("trust-bundle-{round}");
        let (a, b, c) = tokio::join!(
            ca::ensure(env.client(), &ns, &name),
            ca::ensure(env.client(), &ns, &name),
            ca::ensure(env.client(), &ns, &name),
        );
        let anchors: Vec<String> = [a, b, c]
            .into_iter()
            .map(|ca| {
                ca.expect("every replica loads the CA")
                    .trust_anchors_pem()
                    .to_owned()
            })
            .collect();
        assert!(
            anchors.windows(2).all(|w| w[0] == w[1]),
            "round {round}: one CA"
        );
        let secret = env
            .namespaced::<Secret>()
            .get(&name)
            .await
            .expect("the Secret");
        let stored = ca::secret::from_secret(&name, &secret).expect("a CA in the Secret");
        assert_eq!(stored.trust_anchors_pem(), anchors[0]);
    }
}

#[tokio::test]
async fn a_changed_ca_secret_replaces_the_ca_in_use_and_is_counted() {
    let env = TestEnv::start().await;
    let ns = env.namespace().to_owned();
    let name = "rotating-trust-bundle";
    let first = ca::ensure(env.client(), &ns, name).await.expect("the CA");
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    metrics
        .ca_loaded(first.issuer_not_after())
        .expect("the Sentry series");
    let current = Arc::new(ca::CurrentCa::new(Arc::new(first)));
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(ca::follow(
        env.client(),
        ns.clone(),
        name.to_owned(),
        Arc::clone(&current),
        Arc::clone(&metrics),
        std::time::Duration::from_millis(100),
        shutdown.clone(),
    ));

    // A rotation: another CA, an hour younger, written into the Secret.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    let (anchors, issuer, key) = ca::sign::generate_ca(later).expect("a new CA");
    let expiry = ca::ControlPlaneCa::from_pem(&anchors, &issuer, &key)
        .expect("a CA")
        .issuer_not_after();
    let rotation = json!({"stringData": {
        ca::TRUST_ANCHORS_KEY: anchors, ca::ISSUER_CERT_KEY: issuer, ca::ISSUER_KEY_KEY: key}});
    env.namespaced::<Secret>()
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&rotation),
        )
        .await
        .expect("rotate the Secret");
    tandem_envtest::eventually("the new CA in use", REACT, || async {
        (current.get().trust_anchors_pem() == anchors).then_some(())
    })
    .await;
    assert_eq!(
        metrics.issuer_certificate(),
        Some((expiry, 1)),
        "dapr_sentry_issuercert_changed_total +1, and the new issuer's expiry"
    );
    shutdown.cancel();
}
