//! What the Kubernetes-mode tests share: envtest with the CRDs, Pod objects and their
//! ServiceAccount tokens (TokenRequest, bound to the pod: envtest has no kubelet), the operator's
//! sidecar API (with or without its CA) on this runtime, and sidecar processes in Kubernetes mode.
//! With its CA the API serves TLS as the operator's SPIFFE ID, and each sidecar gets the trust
//! anchors and the control plane's namespace as the injector passes them.

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use tandem_envtest::TestEnv;
use tandem_operator::controller::Scope;
use tandem_operator::metrics::Metrics;
use tandem_operator::sidecar_api::{self, SidecarApi, TOKEN_AUDIENCE};
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tandem_testkit::dns_server::DnsServer;
use tokio_util::sync::CancellationToken;

pub async fn env_with_crds() -> TestEnv {
    let env = TestEnv::start().await;
    env.install_crds(&tandem_crds::crd::all())
        .await
        .expect("the CRDs install");
    env
}

/// A Dapr-enabled Pod object for `app_id`, running as ServiceAccount `app`, with Configuration
/// `appconfig`.
pub async fn pod(env: &TestEnv, name: &str, app_id: &str) -> Pod {
    let accounts: Api<ServiceAccount> = env.namespaced();
    let account = serde_json::from_value(json!({"metadata": {"name": "app"}})).expect("sa");
    let _ = accounts.create(&PostParams::default(), &account).await;
    let pod = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"dapr.io/enabled": "true", "dapr.io/app-id": app_id, "dapr.io/config": "appconfig"}},
        "spec": {"serviceAccountName": "app", "automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "app:1"}]}
    }))
    .expect("pod");
    env.namespaced::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

/// A token of ServiceAccount `app` bound to `pod`, for `audience`.
pub async fn token(env: &TestEnv, pod: &Pod, audience: &str) -> String {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience.into()],
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            expiration_seconds: Some(3600),
        },
        ..TokenRequest::default()
    };
    let accounts: Api<ServiceAccount> = env.namespaced();
    let issued = accounts
        .create_token_request("app", &PostParams::default(), &request)
        .await
        .expect("token request");
    issued.status.expect("token").token
}

/// A pod-bound token for the operator's audience, written where the sidecar reads it.
pub async fn token_file(env: &TestEnv, pod: &Pod, dir: &Path) -> String {
    let path = dir.join(format!(
        "{}.token",
        pod.metadata.name.clone().unwrap_or_default()
    ));
    std::fs::write(&path, token(env, pod, TOKEN_AUDIENCE).await).expect("write token");
    path.to_string_lossy().into_owned()
}

/// The control plane's namespace in the operator's SPIFFE ID (the sidecars are told it).
pub const CONTROL_PLANE_NAMESPACE: &str = "tandem-system";

/// The operator's sidecar API, served on this runtime until dropped.
pub struct Operator {
    pub address: String,
    pub metrics: Arc<Metrics>,
    /// With the CA: the trust anchors (PEM) sidecars verify the API against (it serves TLS).
    pub trust_anchors: Option<String>,
    shutdown: CancellationToken,
}

impl Operator {
    /// `https://tandem-api:<port>` with the CA, else `http://<address>`.
    pub fn base_url(&self) -> String {
        match &self.trust_anchors {
            Some(_) => format!("https://{SERVICE}:{}", self.port()),
            None => format!("http://{}", self.address),
        }
    }

    /// A client for [`Self::base_url`]: trusting exactly the anchors, the Service name resolving
    /// to the API's address.
    pub fn http(&self) -> reqwest::Client {
        tandem_sidecar::http_client::install_crypto_provider();
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10));
        if let Some(anchors) = &self.trust_anchors {
            let roots = reqwest::Certificate::from_pem_bundle(anchors.as_bytes()).expect("PEM");
            builder = builder
                .tls_certs_only(roots)
                .resolve(SERVICE, self.address.parse().expect("socket address"));
        }
        builder.build().expect("an HTTP client")
    }

    fn port(&self) -> &str {
        self.address.rsplit(':').next().unwrap_or_default()
    }
}

/// The sidecar API's Service name (in its certificate).
const SERVICE: &str = "tandem-api";

impl Drop for Operator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The sidecar API; with `ca`, its CA signs workload certificates and issues the API's own TLS
/// certificate (`spiffe://cluster.local/ns/tandem-system/tandem-operator`).
pub async fn operator_api(
    client: kube::Client,
    ca: Option<tandem_operator::ca::ControlPlaneCa>,
) -> Operator {
    let shutdown = CancellationToken::new();
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (mut api, feeding) = SidecarApi::new(
        client,
        Scope::new(None),
        TOKEN_AUDIENCE,
        metrics.clone(),
        shutdown.clone(),
    );
    let trust_anchors = ca.as_ref().map(|ca| ca.trust_anchors_pem().to_owned());
    if let Some(ca) = ca {
        let id = sidecar_api::ServingIdentity {
            spiffe_id: tandem_crds::control_plane::operator_spiffe_id(
                "cluster.local",
                CONTROL_PLANE_NAMESPACE,
            ),
            dns_names: vec![SERVICE.to_owned()],
            namespace: CONTROL_PLANE_NAMESPACE.to_owned(),
            bundle_configmap: None,
        };
        api = api
            .with_ca(Arc::new(ca))
            .with_tls(id, std::time::Duration::from_secs(1))
            .expect("the API's certificate");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    tokio::spawn(sidecar_api::serve(api, feeding, listener));
    Operator {
        address,
        metrics,
        trust_anchors,
        shutdown,
    }
}

/// One app's pod as its sidecar sees it.
pub struct AppPod<'a> {
    pub app_id: &'a str,
    pub pod_name: &'a str,
    pub pod_ip: Ipv4Addr,
    pub namespace: &'a str,
    /// The token file.
    pub token: &'a str,
    pub app_port: u16,
    /// `--config`: the Configuration's name (the pod's annotation says `appconfig`).
    pub config: &'a str,
}

/// A sidecar in Kubernetes mode for `pod`, on `pod.pod_ip`.
pub fn kubernetes_sidecar(
    pod: &AppPod<'_>,
    operator: &Operator,
    dns: &DnsServer,
    internal_port: u16,
    dir: &Path,
) -> SidecarBuilder {
    let mut builder = SidecarBuilder::new(
        &tandem_e2e::binaries::sidecar().to_string_lossy(),
        pod.app_id,
        dir,
    );
    // What the injector passes when the control plane runs its CA.
    if let Some(anchors) = &operator.trust_anchors {
        builder = builder
            .env("DAPR_TRUST_ANCHORS", anchors)
            .env("DAPR_CONTROLPLANE_NAMESPACE", CONTROL_PLANE_NAMESPACE);
    }
    builder
        .app_port(pod.app_port)
        .internal_port(internal_port)
        .env("NAMESPACE", pod.namespace)
        .env("POD_NAME", pod.pod_name)
        .env("POD_IP", &pod.pod_ip.to_string())
        .arg("--mode")
        .arg("kubernetes")
        .arg("--config")
        .arg(pod.config)
        .arg("--control-plane-address")
        .arg(&operator.address)
        .arg("--control-plane-token-file")
        .arg(pod.token)
        .arg("--dns-server")
        .arg(&dns.addr().to_string())
}

/// Starts `builder` and waits until it is ready.
pub async fn start(builder: SidecarBuilder) -> Sidecar {
    // `start` polls with blocking calls; the operator serves on this runtime meanwhile.
    tokio::task::spawn_blocking(move || builder.start())
        .await
        .expect("the sidecar starts")
}
