//! One pod on the test node, from start to deletion: fetch what its spec refers to, give it a
//! network namespace, write its volumes, start its containers (restarting those that exit, as
//! `restartPolicy: Always` does), probe readiness and report the status through the API; when it is
//! deleted, SIGTERM every container, SIGKILL what is left after the grace period, remove the
//! network and confirm the deletion (grace 0, as the kubelet does).

use super::network::resolv_conf;
use super::probe::Readiness;
use super::process::{ContainerProcess, now_rfc3339};
use super::spec::{self, Fetched, Placement, References, VolumeContents};
use super::status::{ContainerView, PodView, pod_status};
use super::{RunningPod, Shared};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often containers are checked and the status reconsidered.
const TICK: Duration = Duration::from_millis(250);
/// The wait before an exited container is started again.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// The longest grace period the test node waits (the pod's own is used when shorter).
const MAX_GRACE: Duration = Duration::from_secs(30);

/// Runs `pod` until `stop` carries a grace period (seconds), then stops it.
pub(super) async fn run(shared: Arc<Shared>, pod: Pod, mut stop: watch::Receiver<Option<u64>>) {
    let (namespace, name) = (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
    let key = format!("{namespace}/{name}");
    match start(&shared, &pod).await {
        Ok(view) => {
            supervise(&shared, &pod, &api, view, &mut stop).await;
            let grace = (*stop.borrow()).unwrap_or(0);
            shut_down(&shared, &key, Duration::from_secs(grace).min(MAX_GRACE)).await;
        }
        Err(message) => {
            eprintln!("test node: pod {key} cannot start: {message}");
            let status = serde_json::json!({"status": {"phase": "Pending", "message": message}});
            let _ = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await;
            let _ = stop.wait_for(Option::is_some).await;
            shared.pods().remove(&key);
        }
    }
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: pod.metadata.uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let _ = api.delete(&name, &params).await;
}

/// Fetches, wires and starts the pod; the status view to keep current.
async fn start(shared: &Shared, pod: &Pod) -> Result<PodView, String> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let fetched = fetch(shared, pod, spec::references(pod)).await?;
    let volumes = spec::volumes(pod, &fetched)?;
    let network = shared.bridge.attach_pod(&resolv_conf(
        shared.bridge.address(),
        &namespace,
        &shared.cluster_domain,
    ))?;
    let pod_dir = shared.dir.path().join(format!("{namespace}_{name}"));
    let volume_dirs = write_volumes(&pod_dir, volumes)?;
    let placement = Placement {
        pod_ip: network.address,
        host_ip: shared.bridge.address(),
        volume_dirs: &volume_dirs,
    };
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    let mut running = RunningPod {
        network,
        containers: BTreeMap::new(),
        pod_dir: pod_dir.clone(),
    };
    let mut views = Vec::new();
    for container in containers {
        let launch = spec::launch(pod, container, &shared.images, &fetched, &placement)?;
        let log = pod_dir.join(format!("{}.log", container.name));
        let process = ContainerProcess::start(&running.network.netns, &launch, &log, &pod_dir)?;
        views.push(ContainerView {
            name: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
            ready: false,
            running_since: Some(process.started_at.clone()),
            last_exit: None,
            restarts: 0,
        });
        running
            .containers
            .insert(container.name.clone(), (launch, process));
    }
    let view = PodView {
        pod_ip: running.network.address,
        host_ip: shared.bridge.address(),
        start_time: now_rfc3339(),
        containers: views,
        terminating: false,
    };
    shared.pods().insert(format!("{namespace}/{name}"), running);
    Ok(view)
}

/// Keeps the containers running and the status current until `stop` says otherwise.
async fn supervise(
    shared: &Shared,
    pod: &Pod,
    api: &Api<Pod>,
    mut view: PodView,
    stop: &mut watch::Receiver<Option<u64>>,
) {
    let key = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    let name = pod.metadata.name.clone().unwrap_or_default();
    let specs: Vec<_> = pod.spec.iter().flat_map(|s| s.containers.clone()).collect();
    let mut readiness: Vec<Readiness> = specs
        .iter()
        .map(|c| Readiness::new(c, Instant::now()))
        .collect();
    let mut exited_at: Vec<Option<Instant>> = vec![None; specs.len()];
    let mut reported = None;
    while stop.borrow().is_none() {
        for (index, container) in specs.iter().enumerate() {
            let state = check_process(
                shared,
                &key,
                container,
                &mut view.containers[index],
                &mut exited_at[index],
            );
            if state == Process::Restarted {
                readiness[index] = Readiness::new(container, Instant::now());
            }
            let running = state != Process::Down;
            readiness[index]
                .check(container, view.pod_ip, running)
                .await;
            view.containers[index].ready = readiness[index].ready();
        }
        let status = pod_status(&view);
        if reported.as_ref() != Some(&status) {
            let patch = serde_json::json!({ "status": status });
            if api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                reported = Some(status);
            }
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
    view.terminating = true;
    let patch = serde_json::json!({ "status": pod_status(&view) });
    let _ = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await;
}

/// A container process as the last check found it.
#[derive(Debug, PartialEq)]
enum Process {
    Running,
    Restarted,
    Down,
}

/// Whether `container`'s process runs; an exited one is started again after [`RESTART_DELAY`].
fn check_process(
    shared: &Shared,
    key: &str,
    container: &k8s_openapi::api::core::v1::Container,
    view: &mut ContainerView,
    exited_at: &mut Option<Instant>,
) -> Process {
    let mut pods = shared.pods();
    let Some(running) = pods.get_mut(key) else {
        return Process::Down;
    };
    let netns = running.network.netns.clone();
    let pod_dir = running.pod_dir.clone();
    let Some((launch, process)) = running.containers.get_mut(&container.name) else {
        return Process::Down;
    };
    if let Some(status) = process.exited() {
        let since = *exited_at.get_or_insert_with(Instant::now);
        view.running_since = None;
        view.last_exit = Some(status.code().unwrap_or(-1));
        if since.elapsed() >= RESTART_DELAY {
            let log = pod_dir.join(format!("{}.log", container.name));
            if let Ok(again) = ContainerProcess::start(&netns, launch, &log, &pod_dir) {
                view.running_since = Some(again.started_at.clone());
                view.restarts += 1;
                *process = again;
                *exited_at = None;
                return Process::Restarted;
            }
        }
        return Process::Down;
    }
    Process::Running
}

/// SIGTERM to every container, SIGKILL after `grace`, then the network goes.
async fn shut_down(shared: &Shared, key: &str, grace: Duration) {
    if let Some(running) = shared.pods().get_mut(key) {
        for (_, process) in running.containers.values_mut() {
            process.terminate();
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        let all_exited = shared.pods().get_mut(key).is_none_or(|running| {
            running
                .containers
                .values_mut()
                .all(|(_, process)| process.exited().is_some())
        });
        if all_exited {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Dropping the processes kills what is left; dropping the network removes the namespace.
    let removed = shared.pods().remove(key);
    drop(removed);
}

/// Secrets, ConfigMaps and tokens `pod` needs, from its namespace.
async fn fetch(shared: &Shared, pod: &Pod, references: References) -> Result<Fetched, String> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let client = shared.client.clone();
    let mut fetched = Fetched::default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    for name in references.secrets {
        let secret = secrets
            .get(&name)
            .await
            .map_err(|e| format!("Secret {name}: {e}"))?;
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0));
        fetched.secrets.insert(name, data.collect());
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    for name in references.config_maps {
        let map = maps
            .get(&name)
            .await
            .map_err(|e| format!("ConfigMap {name}: {e}"))?;
        let mut data: BTreeMap<String, Vec<u8>> = map
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        data.extend(
            map.binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0)),
        );
        fetched.config_maps.insert(name, data);
    }
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".to_owned());
    let accounts: Api<ServiceAccount> = Api::namespaced(client, &namespace);
    for token in references.tokens {
        // No audience: the API server's own (as the kubelet asks for it).
        let audiences = if token.audience.is_empty() {
            Vec::new()
        } else {
            vec![token.audience.clone()]
        };
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences,
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
                expiration_seconds: Some(token.expiration_seconds),
            },
            ..TokenRequest::default()
        };
        let issued = accounts
            .create_token_request(&account, &PostParams::default(), &request)
            .await
            .map_err(|e| format!("token for ServiceAccount {account}: {e}"))?;
        let value = issued.status.map(|s| s.token).unwrap_or_default();
        fetched.tokens.insert(token, value);
    }
    Ok(fetched)
}

/// Writes each volume's files under `pod_dir`; the directory of each volume by name.
fn write_volumes(
    pod_dir: &std::path::Path,
    volumes: BTreeMap<String, VolumeContents>,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let io = |what: &std::path::Path, e: std::io::Error| format!("writing {}: {e}", what.display());
    let mut dirs = BTreeMap::new();
    std::fs::create_dir_all(pod_dir).map_err(|e| io(pod_dir, e))?;
    for (name, contents) in volumes {
        let dir = match contents {
            VolumeContents::HostPath(path) => path,
            VolumeContents::Files(files) => {
                let dir = spec::volume_dir(pod_dir, &name);
                std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
                for (path, bytes) in files {
                    let file = dir.join(path.trim_start_matches('/'));
                    if let Some(parent) = file.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                    }
                    std::fs::write(&file, bytes).map_err(|e| io(&file, e))?;
                }
                dir
            }
        };
        dirs.insert(name, dir);
    }
    Ok(dirs)
}
