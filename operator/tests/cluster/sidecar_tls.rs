//! The sidecar API's own TLS against the real kube-apiserver: with the CA on, the API answers
//! only over TLS, with a certificate that chains to the CA Secret's trust bundle and carries the
//! operator's SPIFFE ID and the `tandem-api` Service's name; plain HTTP gets nothing. The trust
//! anchors are published in the ConfigMap the injector reads, and no workload can get a
//! certificate for the operator's identity. A new CA in the Secret is served (and published)
//! without a restart.

use crate::sidecar_api::{dapr_pod, token_for};
use crate::support::{REACT, env_with_crds};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tandem_envtest::TestEnv;
use tandem_operator::ca;
use tandem_operator::controller::Scope;
use tandem_operator::metrics::Metrics;
use tandem_operator::sidecar_api::{self, ServingIdentity, SidecarApi, TOKEN_AUDIENCE};
use tokio_util::sync::CancellationToken;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

const BUNDLE: &str = "tandem-trust-bundle";

/// The API with the CA and its TLS, on a free port: its address and the operator's SPIFFE ID.
async fn start_tls_api(env: &TestEnv, shutdown: &CancellationToken) -> (String, String) {
    let ca = ca::ensure(env.client(), env.namespace(), ca::CA_SECRET_NAME)
        .await
        .expect("the CA Secret");
    let (api, feeding) = SidecarApi::new(
        env.client(),
        Scope::new(None),
        TOKEN_AUDIENCE,
        Arc::new(Metrics::new().expect("metrics")),
        shutdown.clone(),
    );
    let spiffe_id =
        tandem_crds::control_plane::operator_spiffe_id("cluster.local", env.namespace());
    let id = ServingIdentity {
        spiffe_id: spiffe_id.clone(),
        dns_names: tandem_webhook_tls::service_dns_names(
            "tandem-api",
            env.namespace(),
            "cluster.local",
        ),
        namespace: env.namespace().to_owned(),
        bundle_configmap: Some(BUNDLE.to_owned()),
    };
    let api = api.with_ca(Arc::new(ca));
    api.follow_ca_secret(env.namespace(), ca::CA_SECRET_NAME);
    let api = api
        .with_tls(id, Duration::from_millis(200))
        .expect("the serving certificate");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    tokio::spawn(sidecar_api::serve(api, feeding, listener));
    (address, spiffe_id)
}

/// The CA Secret's trust bundle.
async fn secret_anchors(env: &TestEnv) -> String {
    let secret = Api::<Secret>::namespaced(env.client(), env.namespace())
        .get(ca::CA_SECRET_NAME)
        .await
        .expect("the CA Secret");
    let bytes = &secret.data.expect("data")[ca::TRUST_ANCHORS_KEY].0;
    String::from_utf8(bytes.clone()).expect("PEM")
}

/// The URIs and DNS names of a DER certificate.
fn names(der: &[u8]) -> Vec<String> {
    let (_, cert) = X509Certificate::from_der(der).expect("X.509");
    let san = cert.subject_alternative_name().expect("SAN").expect("SAN");
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_speaks_only_tls_as_the_operator_identity_from_the_ca_bundle() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = env_with_crds().await;
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let (address, spiffe_id) = start_tls_api(&env, &shutdown).await;
    let pod = dapr_pod(&env, "order-1", "app", "order").await;
    let token = token_for(&env, "app", Some(&pod), TOKEN_AUDIENCE).await;
    let path = format!(
        "/v1/namespaces/{}/pods/order-1/resources?appId=order",
        env.namespace()
    );

    // Verified by name against exactly the CA Secret's bundle (no other roots).
    let host = format!("tandem-api.{}.svc", env.namespace());
    let anchors = secret_anchors(&env).await;
    let roots = reqwest::Certificate::from_pem_bundle(anchors.as_bytes()).expect("anchors");
    let client = reqwest::Client::builder()
        .tls_certs_only(roots)
        .tls_info(true)
        .resolve(&host, address.parse().expect("socket address"))
        .build()
        .expect("client");
    let port = address.rsplit(':').next().expect("port");
    let response = client
        .get(format!("https://{host}:{port}{path}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the API answers over TLS");
    assert_eq!(response.status(), 200);
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    let served = names(info.peer_certificate().expect("a server certificate"));
    assert_eq!(served.first(), Some(&spiffe_id), "{served:?}");
    assert!(served.contains(&host), "{served:?}");
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert!(body["components"].is_array(), "{body}");

    // Plain HTTP gets no answer at all.
    let plain = reqwest::Client::new()
        .get(format!("http://{address}{path}"))
        .bearer_auth(&token)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // The same anchors, public, for the injector.
    let maps: Api<ConfigMap> = Api::namespaced(env.client(), env.namespace());
    tandem_envtest::eventually("the trust anchors ConfigMap", REACT, || async {
        let map = maps.get_opt(BUNDLE).await.ok()??;
        (map.data?.get("ca.crt")? == &anchors).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_workload_is_signed_for_the_operator_identity() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = env_with_crds().await;
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let (address, _) = start_tls_api(&env, &shutdown).await;
    env.kubectl_apply(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: cp}\nspec: {accessControl: {trustDomain: cluster.local}}\n",
    )
    .await
    .expect("apply");
    let _ = dapr_pod(&env, "helper", "app", "helper").await;
    let impostor: Pod = serde_json::from_value(json!({
        "metadata": {"name": "impostor", "annotations": {"dapr.io/enabled": "true",
            "dapr.io/app-id": "tandem-operator", "dapr.io/config": "cp"}},
        "spec": {"serviceAccountName": "app", "automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "app:1"}]}
    }))
    .expect("pod");
    let impostor = env
        .namespaced::<Pod>()
        .create(&PostParams::default(), &impostor)
        .await
        .expect("create pod");
    let token = token_for(&env, "app", Some(&impostor), TOKEN_AUDIENCE).await;
    let key = rcgen::KeyPair::generate().expect("key");
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .expect("params")
        .serialize_request(&key)
        .expect("CSR")
        .pem()
        .expect("PEM");
    let anchors = secret_anchors(&env).await;
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(anchors.as_bytes()).expect("PEM"))
        .resolve("tandem-api", address.parse().expect("address"))
        .build()
        .expect("client");
    let port = address.rsplit(':').next().expect("port");
    let url = format!(
        "https://tandem-api:{port}/v1/namespaces/{}/pods/impostor/certificate",
        env.namespace()
    );
    // The Configuration reaches the operator's cache shortly after it is applied.
    let refused = tandem_envtest::eventually("a 403", REACT, || async {
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({"certificateSigningRequest": csr}))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.ok()?;
        (status == 403).then_some(body)
    })
    .await;
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("control plane's identity"), "{refused}");
}

/// A client trusting exactly `anchors`, reaching the API at `address` as `tandem-api`.
fn tls_client(anchors: &str, address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(anchors.as_bytes()).expect("PEM"))
        .tls_info(true)
        .resolve("tandem-api", address.parse().expect("address"))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ca_in_the_secret_is_served_and_published_without_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = env_with_crds().await;
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let (address, spiffe_id) = start_tls_api(&env, &shutdown).await;
    let port = address.rsplit(':').next().expect("port").to_owned();
    let url = format!(
        "https://tandem-api:{port}/v1/namespaces/{}/pods/p/resources?appId=a",
        env.namespace()
    );
    let old_anchors = secret_anchors(&env).await;
    let old = tls_client(&old_anchors, &address);
    assert_eq!(old.get(&url).send().await.expect("TLS").status(), 401);

    let (anchors, issuer, key) = ca::sign::generate_ca(std::time::SystemTime::now()).expect("CA");
    let secrets: Api<Secret> = Api::namespaced(env.client(), env.namespace());
    let mut secret = secrets.get(ca::CA_SECRET_NAME).await.expect("Secret");
    let data = secret.data.get_or_insert_default();
    for (k, v) in [
        (ca::TRUST_ANCHORS_KEY, &anchors),
        (ca::ISSUER_CERT_KEY, &issuer),
        (ca::ISSUER_KEY_KEY, &key),
    ] {
        data.insert(k.to_owned(), k8s_openapi::ByteString(v.as_bytes().to_vec()));
    }
    secrets
        .replace(ca::CA_SECRET_NAME, &PostParams::default(), &secret)
        .await
        .expect("rotate the CA");

    // The Secret is read every 30 s, the certificate checked against it every 200 ms here.
    let new = tls_client(&anchors, &address);
    let served = tandem_envtest::eventually(
        "a certificate from the new CA",
        Duration::from_secs(60),
        || async {
            let response = new.get(&url).send().await.ok()?;
            let info = response.extensions().get::<reqwest::tls::TlsInfo>()?;
            Some(names(info.peer_certificate()?))
        },
    )
    .await;
    assert_eq!(served.first(), Some(&spiffe_id), "{served:?}");
    assert!(
        tls_client(&old_anchors, &address)
            .get(&url)
            .send()
            .await
            .is_err(),
        "new connections meet the new CA only (the old client's pooled one stays as it was)"
    );
    let maps: Api<ConfigMap> = Api::namespaced(env.client(), env.namespace());
    tandem_envtest::eventually("the new anchors published", REACT, || async {
        let map = maps.get_opt(BUNDLE).await.ok()??;
        (map.data?.get("ca.crt")? == &anchors).then_some(())
    })
    .await;
}
