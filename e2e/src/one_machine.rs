//! A Kubernetes cluster on one machine, for the end-to-end suite: the real kube-apiserver + etcd
//! (a [`TestEnv`]) and kube-controller-manager, a test node agent standing in for the kubelet
//! ([`crate::node`]: pods as processes in network namespaces on a bridge), cluster DNS on the
//! bridge ([`ClusterDns`]: `*.svc.cluster.local` from Services and Endpoints), and Tandem's chart
//! rendered with `helm template` and applied with kubectl. The operator and the injector run as
//! local processes with the arguments and environment of the chart's Deployments and the chart's
//! RBAC (their ServiceAccounts' tokens); what the machine lacks is wired by address instead of by
//! Service (no kube-proxy): their listeners bind the node's bridge address, the webhook
//! configurations name that address, and the injector tells sidecars to reach the operator there.

use crate::binaries;
use crate::chart::Render;
use crate::cluster_dns::ClusterDns;
use crate::local_process::LocalProcess;
use crate::manifest::Manifest;
use crate::node::{Bridge, Images, NodeAgent, NodeConfig};
use crate::tools::Tools;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Container, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tandem_envtest::{ControllerManager, TestEnv};

pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// The image the scenario's apps use; the node runs `tandem-e2e-app` for it.
pub const APP_IMAGE: &str = "tandem-e2e/app:test";
/// TTL of the cluster DNS records (CoreDNS's default is 5 s; shorter makes scaling seen sooner).
const DNS_TTL: u32 = 1;
/// The injector's admin port on the bridge address (the chart gives both components the same port,
/// which two processes on one address cannot share).
const INJECTOR_ADMIN_PORT: u16 = 8081;
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The running cluster. Drop order: control-plane processes, the node (its pods), DNS, the
/// controller manager; the API server belongs to the test's [`TestEnv`].
pub struct OneMachineCluster {
    pub operator: LocalProcess,
    pub injector: LocalProcess,
    pub node: NodeAgent,
    pub dns: ClusterDns,
    pub controller_manager: ControllerManager,
    /// The namespace the chart is installed in.
    pub release_namespace: String,
    _dir: tempfile::TempDir,
}

impl OneMachineCluster {
    /// Starts everything around `env`'s API server and installs the chart into `env`'s namespace.
    pub async fn start(env: &TestEnv) -> Result<OneMachineCluster, String> {
        let client = env.client();
        let release = env.namespace().to_owned();
        let controller_manager = ControllerManager::start(env.control_plane())
            .await
            .map_err(|e| e.to_string())?;
        let bridge = Bridge::create()?;
        let address = bridge.address();
        let dns = ClusterDns::start_on(
            SocketAddr::from((address, 53)),
            client.clone(),
            CLUSTER_DOMAIN,
            DNS_TTL,
        )
        .await
        .map_err(|e| format!("cluster DNS on {address}:53: {e}"))?;

        let tools = Tools::from_env().map_err(|e| e.to_string())?;
        let rendered = Render::new(&release)
            .kube_version("1.20.2")
            .api_version("policy/v1beta1")
            .include_crds()
            .template(&tools)
            .map_err(|e| e.to_string())?;
        let manifest = Manifest::parse(&rendered).map_err(|e| e.to_string())?;
        let operator_deployment: Deployment = manifest
            .get("Deployment", "tandem-operator")
            .map_err(|e| e.to_string())?;
        let injector_deployment: Deployment = manifest
            .get("Deployment", "tandem-sidecar-injector")
            .map_err(|e| e.to_string())?;
        let injector = first_container(&injector_deployment)?;
        let sidecar_image =
            env_value(injector, "SIDECAR_IMAGE").ok_or("the injector has no SIDECAR_IMAGE")?;
        let injector_port = port_of(injector, "--addr=").ok_or("the injector has no --addr")?;

        let images = Images::new()
            .with(&sidecar_image, binaries::sidecar())
            .with(APP_IMAGE, binaries::path("tandem-e2e", "tandem-e2e-app"));
        let node = NodeAgent::start(
            client.clone(),
            bridge,
            NodeConfig {
                name: "tandem-node".into(),
                images,
                cluster_domain: CLUSTER_DOMAIN.into(),
            },
        )
        .await?;

        env.kubectl_apply(&installable(&manifest, address, injector_port)?)
            .await
            .map_err(|e| e.to_string())?;

        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let operator_container = first_container(&operator_deployment)?;
        let mut operator_args = on_address(
            &operator_container.args.clone().unwrap_or_default(),
            address,
        );
        operator_args.push(format!("--webhook-url=https://{address}:19443/convert"));
        operator_args.push(format!("--webhook-tls-san={address}"));
        let operator = LocalProcess::start(
            &binaries::path("tandem-operator", "tandem-operator"),
            &operator_args,
            &process_env(
                operator_container,
                &release,
                &kubeconfig_for(env, &release, "tandem-operator", dir.path()).await?,
            ),
            dir.path().join("operator.log"),
        )?;
        let mut injector_args: Vec<String> =
            on_address(&injector.args.clone().unwrap_or_default(), address)
                .into_iter()
                .map(|arg| match arg.strip_prefix("--admin-addr=") {
                    Some(_) => format!("--admin-addr={address}:{INJECTOR_ADMIN_PORT}"),
                    None => arg,
                })
                .collect();
        injector_args.push(format!("--tls-san={address}"));
        let mut injector_env = process_env(
            injector,
            &release,
            &kubeconfig_for(env, &release, "tandem-sidecar-injector", dir.path()).await?,
        );
        injector_env.push((
            "TANDEM_CONTROL_PLANE_ADDRESS".into(),
            format!("{address}:6500"),
        ));
        let injector = LocalProcess::start(
            &binaries::path("tandem-injector", "tandem-injector"),
            &injector_args,
            &injector_env,
            dir.path().join("injector.log"),
        )?;
        let mut cluster = OneMachineCluster {
            operator,
            injector,
            node,
            dns,
            controller_manager,
            release_namespace: release,
            _dir: dir,
        };
        let admin_port = port_of(operator_container, "--admin-addr=")
            .ok_or("the operator has no --admin-addr")?;
        cluster
            .wait_ready("operator", SocketAddr::from((address, admin_port)))
            .await?;
        cluster
            .wait_ready("injector", SocketAddr::from((address, INJECTOR_ADMIN_PORT)))
            .await?;
        Ok(cluster)
    }

    /// The node's bridge address: reachable from pods and from the test.
    pub fn address(&self) -> Ipv4Addr {
        self.node.address()
    }

    async fn wait_ready(&mut self, what: &str, admin: SocketAddr) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("http://{admin}/readyz");
        loop {
            let ok = reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            let process = if what == "operator" {
                &mut self.operator
            } else {
                &mut self.injector
            };
            if !process.running() || Instant::now() > deadline {
                return Err(format!(
                    "the {what} did not become ready:\n{}",
                    process.log_tail(40)
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Logs of the operator, the injector and every pod of `namespace` (for a failing test).
    pub fn logs(&self, namespace: &str) -> String {
        format!(
            "---- operator ----\n{}\n---- injector ----\n{}\n{}",
            self.operator.log_tail(30),
            self.injector.log_tail(30),
            self.node.logs(namespace, 30)
        )
    }
}

fn first_container(deployment: &Deployment) -> Result<&Container, String> {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .ok_or_else(|| "a chart Deployment without containers".to_owned())
}

fn env_value(container: &Container, name: &str) -> Option<String> {
    container
        .env
        .iter()
        .flatten()
        .find(|v| v.name == name)
        .and_then(|v| v.value.clone())
}

/// The port of the `<flag>host:port` argument.
fn port_of(container: &Container, flag: &str) -> Option<u16> {
    container
        .args
        .iter()
        .flatten()
        .find_map(|arg| arg.strip_prefix(flag))
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|port| port.parse().ok())
}

/// The chart's listen addresses (`0.0.0.0:port`) moved to the node's bridge address.
fn on_address(args: &[String], address: Ipv4Addr) -> Vec<String> {
    args.iter()
        .map(|arg| arg.replace("=0.0.0.0:", &format!("={address}:")))
        .collect()
}

/// The container's environment (downward-API namespace resolved) plus the kubeconfig to use.
fn process_env(
    container: &Container,
    namespace: &str,
    kubeconfig: &std::path::Path,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = container
        .env
        .iter()
        .flatten()
        .filter_map(|var| {
            let value = match (&var.value, &var.value_from) {
                (Some(value), _) => value.clone(),
                (None, Some(from))
                    if from
                        .field_ref
                        .as_ref()
                        .is_some_and(|f| f.field_path == "metadata.namespace") =>
                {
                    namespace.to_owned()
                }
                _ => return None,
            };
            Some((var.name.clone(), value))
        })
        .collect();
    env.push(("KUBECONFIG".into(), kubeconfig.display().to_string()));
    env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    env
}

/// The chart's objects minus the two Deployments that run here as processes, with each webhook's
/// `clientConfig.service` replaced by a URL on the node's address (no kube-proxy here).
fn installable(
    manifest: &Manifest,
    address: Ipv4Addr,
    injector_port: u16,
) -> Result<String, String> {
    let mut items = Vec::new();
    for object in &manifest.objects {
        let (kind, name) = crate::manifest::id(object);
        if kind == "Deployment" {
            continue;
        }
        let mut object = object.clone();
        if kind == "MutatingWebhookConfiguration" && name == "tandem-sidecar-injector" {
            for webhook in object["webhooks"].as_array_mut().into_iter().flatten() {
                let path = webhook["clientConfig"]["service"]["path"]
                    .as_str()
                    .unwrap_or("/mutate")
                    .to_owned();
                webhook["clientConfig"] =
                    json!({"url": format!("https://{address}:{injector_port}{path}")});
            }
        }
        items.push(object);
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    serde_json::to_string(&list).map_err(|e| e.to_string())
}

/// A kubeconfig that authenticates as ServiceAccount `account` of `namespace` (a TokenRequest
/// token), so the process has exactly the chart's RBAC.
async fn kubeconfig_for(
    env: &TestEnv,
    namespace: &str,
    account: &str,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf, String> {
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(3600),
            bound_object_ref: None,
        },
        ..TokenRequest::default()
    };
    let issued = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("token for {account}: {e}"))?;
    let token = issued.status.map(|s| s.token).unwrap_or_default();
    let admin: Value = serde_json::from_str(
        &std::fs::read_to_string(env.control_plane().kubeconfig()).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let mut config = admin;
    config["users"] = json!([{"name": "admin", "user": {"token": token}}]);
    if let Some(context) = config["contexts"][0]["context"].as_object_mut() {
        context.insert("namespace".into(), json!(namespace));
    }
    let path = dir.join(format!("{account}.kubeconfig"));
    std::fs::write(&path, config.to_string()).map_err(|e| e.to_string())?;
    Ok(path)
}
