//! A test-only node agent standing in for the kubelet, so a real control plane (kube-apiserver,
//! kube-controller-manager) runs real workloads on this machine: it binds pending Pods to its Node,
//! runs each container's command as a local process (images map to executables through
//! [`Images`], a table the test owns) in a network namespace with the pod's own address on a
//! bridge, gives it its Secrets, ConfigMaps and ServiceAccount tokens (TokenRequest) at the mount
//! paths, runs readiness probes, and reports the pod's address and readiness through the API, so
//! the endpoints controller fills Services as in a cluster.
//!
//! It is a fake at the one boundary that cannot run here (a kubelet with a container runtime):
//! no images, cgroups, security contexts, liveness probes or init containers. Needs root.

mod images;
mod network;
mod pod;
mod probe;
mod process;
mod spec;
#[cfg(test)]
mod spec_tests;
mod status;

pub use images::Images;
pub use network::{Bridge, PodNetwork};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// What the node needs to know besides the API.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The Node's name (pods are bound to it).
    pub name: String,
    pub images: Images,
    /// Pods' resolv.conf search path ends in this (`cluster.local`).
    pub cluster_domain: String,
}

/// A pod's running parts: its network and its container processes.
pub(crate) struct RunningPod {
    network: PodNetwork,
    containers: BTreeMap<String, (spec::Launch, process::ContainerProcess)>,
    pod_dir: PathBuf,
}

/// What the watch loop and the pod tasks share.
pub(crate) struct Shared {
    client: Client,
    images: Images,
    cluster_domain: String,
    // Field order is drop order: the pods' processes and namespaces before the bridge.
    pods: Mutex<BTreeMap<String, RunningPod>>,
    bridge: Bridge,
    dir: tempfile::TempDir,
}

impl Shared {
    fn pods(&self) -> MutexGuard<'_, BTreeMap<String, RunningPod>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running node agent. Dropping it kills every pod's processes and removes their networks
/// and the bridge (the Pod objects stay).
pub struct NodeAgent {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl NodeAgent {
    /// Registers the Node and starts running the pods bound (or left unbound) to it.
    pub async fn start(
        client: Client,
        bridge: Bridge,
        config: NodeConfig,
    ) -> Result<NodeAgent, String> {
        register_node(&client, &config.name, bridge.address()).await?;
        let dir = tempfile::Builder::new()
            .prefix("tandem-node-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let shared = Arc::new(Shared {
            client,
            images: config.images,
            cluster_domain: config.cluster_domain,
            pods: Mutex::new(BTreeMap::new()),
            bridge,
            dir,
        });
        let task = tokio::spawn(watch_pods(Arc::clone(&shared), config.name));
        Ok(NodeAgent { shared, task })
    }

    /// The node's address on the bridge: pods' gateway and DNS server, where the host's
    /// listeners are reachable from pods.
    pub fn address(&self) -> Ipv4Addr {
        self.shared.bridge.address()
    }

    /// PIDs of the containers of pod `namespace/name` now running here, by container name.
    pub fn pids(&self, namespace: &str, name: &str) -> BTreeMap<String, u32> {
        let pods = self.shared.pods();
        let running = pods.get(&format!("{namespace}/{name}"));
        running
            .into_iter()
            .flat_map(|pod| pod.containers.iter())
            .map(|(container, (_, process))| (container.clone(), process.pid()))
            .collect()
    }

    /// The last `lines` of every container log of pods in `namespace` (for a failing test).
    pub fn logs(&self, namespace: &str, lines: usize) -> String {
        let mut out = String::new();
        let prefix = format!("{namespace}_");
        let Ok(entries) = std::fs::read_dir(self.shared.dir.path()) else {
            return out;
        };
        let mut pods: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        pods.sort();
        for pod in pods.iter().filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        }) {
            let mut logs: Vec<_> = std::fs::read_dir(pod)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .collect();
            logs.sort();
            for log in logs {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let all: Vec<&str> = text.lines().collect();
                out.push_str(&format!(
                    "---- {} ----\n{}\n",
                    log.display(),
                    all[all.len().saturating_sub(lines)..].join("\n")
                ));
            }
        }
        out
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        self.task.abort();
        // Kill every container and remove every pod network now, not when the tasks unwind.
        let pods = std::mem::take(&mut *self.shared.pods());
        drop(pods);
    }
}

async fn register_node(client: &Client, name: &str, address: Ipv4Addr) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([("kubernetes.io/hostname".to_owned(), name.to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => return Err(format!("registering Node {name}: {e}")),
    }
    let now = process::now_rfc3339();
    let status = serde_json::json!({"status": {
        "addresses": [{"type": "InternalIP", "address": address.to_string()}, {"type": "Hostname", "address": name}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "TestNodeReady",
            "lastHeartbeatTime": now, "lastTransitionTime": now}],
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(|e| format!("Node {name} status: {e}"))?;
    Ok(())
}

/// Watches every Pod: binds the unscheduled ones here, runs those bound here, stops the deleted.
async fn watch_pods(shared: Arc<Shared>, node: String) {
    let pods: Api<Pod> = Api::all(shared.client.clone());
    let mut stops: HashMap<String, watch::Sender<Option<u64>>> = HashMap::new();
    let mut events = watcher(pods, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                on_pod(&shared, &node, &mut stops, pod);
            }
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(stop) = pod.metadata.uid.as_ref().and_then(|uid| stops.remove(uid)) {
                    let _ = stop.send(Some(0));
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("test node: pod watch: {e}"),
        }
    }
}

fn on_pod(
    shared: &Arc<Shared>,
    node: &str,
    stops: &mut HashMap<String, watch::Sender<Option<u64>>>,
    pod: Pod,
) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    let spec = pod.spec.as_ref();
    let bound_to = spec.and_then(|s| s.node_name.clone());
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    match bound_to {
        None if !deleting => {
            tokio::spawn(bind(shared.client.clone(), pod, node.to_owned()));
        }
        Some(bound) if bound == node => {
            if deleting {
                let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
                let grace = u64::try_from(grace).unwrap_or(0);
                match stops.get(&uid) {
                    Some(stop) => {
                        let _ = stop.send(Some(grace));
                    }
                    None => {
                        tokio::spawn(confirm_deletion(shared.client.clone(), pod));
                    }
                }
            } else if !stops.contains_key(&uid) && phase != "Succeeded" && phase != "Failed" {
                let (stop, stopped) = watch::channel(None);
                stops.insert(uid, stop);
                tokio::spawn(pod::run(Arc::clone(shared), pod, stopped));
            }
        }
        _ => {}
    }
}

async fn bind(client: Client, pod: Pod, node: String) {
    let (Some(namespace), Some(name)) = (pod.metadata.namespace, pod.metadata.name) else {
        return;
    };
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node),
            ..ObjectReference::default()
        },
    };
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let bound: Result<serde_json::Value, _> = pods
        .create_subresource("binding", &name, &PostParams::default(), &binding)
        .await;
    if let Err(e) = bound {
        eprintln!("test node: binding {namespace}/{name}: {e}");
    }
}

/// A pod deleted before it ran here: nothing to stop, confirm at once.
async fn confirm_deletion(client: Client, pod: Pod) {
    let (Some(namespace), Some(name)) = (pod.metadata.namespace, pod.metadata.name) else {
        return;
    };
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    let _ = pods.delete(&name, &params).await;
}
