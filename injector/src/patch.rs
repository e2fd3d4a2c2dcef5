//! Pure: the JSON Patch that adds the `daprd` sidecar to a pod. No I/O; everything it needs is the
//! pod and the injector's configuration (the sidecar learns its namespace from the downward API,
//! `NAMESPACE`, so nothing in the patch depends on the request's). A pod that already has a `daprd`
//! container or initContainer gets an empty patch, which makes re-invocation safe.

use crate::config::InjectorConfig;
use crate::settings::{AppHealth, SettingsError, SidecarSettings};
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, Pod, Probe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, ServiceAccountTokenProjection, TCPSocketAction, Volume,
    VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tandem_crds::annotations::{defaults, env, flags, keys};

/// The injected container's name (Dapr's; other tools look for it).
pub const SIDECAR_CONTAINER: &str = "daprd";
/// The sidecar binary in the image.
pub const SIDECAR_COMMAND: &str = "/tandem-sidecar";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(
        "annotation {key}: volume {volume:?} does not exist in the pod; add it to spec.volumes or remove it from the annotation"
    )]
    MissingVolume { key: &'static str, volume: String },
    #[error(
        "the pod already has a volume named {0:?}, which the injector needs for the sidecar's token; rename it"
    )]
    VolumeClash(String),
    #[error("the pod has no containers")]
    NoContainers,
    #[error(
        "the control plane's trust anchors (ConfigMap {namespace}/{configmap}, published by the operator) are not available yet"
    )]
    NoTrustAnchors {
        namespace: String,
        configmap: String,
    },
}

/// What the injector adds to `pod`: empty when it already has a sidecar.
pub fn patch(pod: &Pod, cfg: &InjectorConfig) -> Result<Vec<PatchOperation>, PatchError> {
    Ok(plan(pod, cfg)?.map_or_else(Vec::new, |p| p.operations))
}

/// The patch and the warnings for the person creating the pod; `None` when already injected.
#[derive(Debug)]
pub struct Plan {
    pub operations: Vec<PatchOperation>,
    pub warnings: Vec<String>,
    pub app_id: String,
}

/// The patch with its warnings.
pub fn plan(pod: &Pod, cfg: &InjectorConfig) -> Result<Option<Plan>, PatchError> {
    let spec = pod.spec.as_ref();
    if has_sidecar(pod) {
        return Ok(None);
    }
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    if containers.is_empty() {
        return Err(PatchError::NoContainers);
    }
    let empty = BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let name = pod.metadata.name.as_deref().or(pod
        .metadata
        .generate_name
        .as_deref()
        .map(|g| g.trim_end_matches('-')));
    let settings = SidecarSettings::from_annotations(annotations, name)?;
    let volumes = spec.and_then(|s| s.volumes.as_deref()).unwrap_or_default();
    if volumes.iter().any(|v| v.name == defaults::TOKEN_VOLUME) {
        return Err(PatchError::VolumeClash(defaults::TOKEN_VOLUME.to_owned()));
    }
    for mount in &settings.mounts {
        if !volumes.iter().any(|v| v.name == mount.volume) {
            let key = if mount.read_only {
                keys::VOLUME_MOUNTS
            } else {
                keys::VOLUME_MOUNTS_RW
            };
            return Err(PatchError::MissingVolume {
                key,
                volume: mount.volume.clone(),
            });
        }
    }

    let trust_env = cfg.control_plane_trust.env_vars()?;
    let mut ops = Vec::new();
    // The sidecar goes last so the app stays containers[0] (kubectl exec/logs default to it).
    ops.push(add(
        &["spec", "containers", "-"],
        to_value(&sidecar_container(&settings, cfg, trust_env)),
    ));
    let token = token_volume();
    if spec.and_then(|s| s.volumes.as_ref()).is_some() {
        ops.push(add(&["spec", "volumes", "-"], to_value(&token)));
    } else {
        ops.push(add(&["spec", "volumes"], json!([to_value(&token)])));
    }
    let labels = [
        (keys::SIDECAR_INJECTED, "true".to_owned()),
        (keys::APP_ID, settings.app_id.clone()),
        (keys::METRICS_ENABLED, settings.enable_metrics.to_string()),
    ];
    if pod.metadata.labels.is_some() {
        for (key, value) in labels {
            ops.push(add(&["metadata", "labels", key], json!(value)));
        }
    } else {
        let map: BTreeMap<&str, String> = labels.into_iter().collect();
        ops.push(add(&["metadata", "labels"], json!(map)));
    }
    let app_env = [
        (env::DAPR_HTTP_PORT, settings.http_port.to_string()),
        (env::DAPR_GRPC_PORT, settings.grpc_port.to_string()),
        (env::APP_PROTOCOL, settings.app_protocol.clone()),
    ];
    for (i, container) in containers.iter().enumerate() {
        let index = i.to_string();
        match &container.env {
            None => {
                let vars: Vec<Value> = app_env
                    .iter()
                    .map(|(n, v)| json!({"name": n, "value": v}))
                    .collect();
                ops.push(add(
                    &["spec", "containers", &index, "env"],
                    Value::Array(vars),
                ));
            }
            Some(existing) => {
                // The app's own setting wins.
                for (name, value) in app_env
                    .iter()
                    .filter(|(n, _)| !existing.iter().any(|e| e.name == *n))
                {
                    ops.push(add(
                        &["spec", "containers", &index, "env", "-"],
                        json!({"name": name, "value": value}),
                    ));
                }
            }
        }
    }
    Ok(Some(Plan {
        operations: ops,
        warnings: settings.warnings.clone(),
        app_id: settings.app_id,
    }))
}

/// Whether the pod already runs a sidecar (ours, or Dapr's).
pub fn has_sidecar(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|spec| {
        spec.containers.iter().any(|c| c.name == SIDECAR_CONTAINER)
            || spec
                .init_containers
                .iter()
                .flatten()
                .any(|c| c.name == SIDECAR_CONTAINER)
    })
}

/// The `args` of the sidecar: `--mode kubernetes --app-id <id> --control-plane-address <addr>`,
/// the ports, then what the annotations ask for. Only flags `tandem-sidecar` understands.
pub fn sidecar_args(settings: &SidecarSettings, cfg: &InjectorConfig) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut flag = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    flag(flags::MODE, "kubernetes".into());
    flag(flags::APP_ID, settings.app_id.clone());
    flag(
        flags::CONTROL_PLANE_ADDRESS,
        cfg.control_plane_address.clone(),
    );
    flag(flags::DAPR_HTTP_PORT, settings.http_port.to_string());
    flag(flags::DAPR_PUBLIC_PORT, settings.public_port.to_string());
    flag(flags::DAPR_GRPC_PORT, settings.grpc_port.to_string());
    flag(
        flags::DAPR_INTERNAL_GRPC_PORT,
        settings.internal_grpc_port.to_string(),
    );
    flag(
        flags::DAPR_LISTEN_ADDRESSES,
        settings.listen_addresses.clone(),
    );
    flag(flags::APP_PROTOCOL, settings.app_protocol.clone());
    flag(flags::LOG_LEVEL, settings.log_level.clone());
    if cfg.sidecar_mtls {
        flag(flags::ENABLE_MTLS, "true".into());
    }
    flag(flags::ENABLE_METRICS, settings.enable_metrics.to_string());
    if settings.enable_metrics {
        flag(flags::METRICS_PORT, settings.metrics_port.to_string());
    }
    if let Some(port) = settings.app_port {
        flag(flags::APP_PORT, port.to_string());
    }
    if let Some(address) = &settings.app_channel_address {
        flag(flags::APP_CHANNEL_ADDRESS, address.clone());
    }
    if let Some(config) = &settings.config {
        flag(flags::CONFIG, config.clone());
    }
    if settings.log_as_json {
        flag(flags::LOG_AS_JSON, "true".into());
    }
    if let Some(size) = &settings.max_body_size {
        flag(flags::MAX_BODY_SIZE, size.clone());
    }
    if let Some(seconds) = settings.graceful_shutdown_seconds {
        flag(flags::GRACEFUL_SHUTDOWN_SECONDS, seconds.to_string());
    }
    for (name, value) in settings.app_health.iter().flat_map(AppHealth::flags) {
        flag(name, value);
    }
    args
}

fn sidecar_container(
    settings: &SidecarSettings,
    cfg: &InjectorConfig,
    trust_env: Vec<EnvVar>,
) -> Container {
    let port = |name: &str, port: u16| ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(port),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    };
    let mut ports = vec![
        port("dapr-http", settings.http_port),
        port("dapr-grpc", settings.grpc_port),
        port("dapr-internal", settings.internal_grpc_port),
        port("dapr-public", settings.public_port),
    ];
    if settings.enable_metrics {
        ports.push(port("dapr-metrics", settings.metrics_port));
    }
    let field = |name: &str, path: &str| EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let secret = |name: &str, secret: &str, key: &str| EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let mut env_vars = vec![
        field(env::NAMESPACE, "metadata.namespace"),
        field(env::POD_NAME, "metadata.name"),
        // The sidecar's internal port listens on the pod's IP.
        field(env::POD_IP, "status.podIP"),
    ];
    // The control plane's trust anchors and identity: the sidecar verifies the operator.
    env_vars.extend(trust_env);
    if let Some(name) = &settings.api_token_secret {
        env_vars.push(secret(env::DAPR_API_TOKEN, name, "token"));
    }
    if let Some(name) = &settings.app_token_secret {
        env_vars.push(secret(env::APP_API_TOKEN, name, "token"));
    }
    for (name, value) in &settings.env {
        env_vars.push(EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            ..EnvVar::default()
        });
    }
    if !settings.env.is_empty() {
        let names: Vec<&str> = settings.env.iter().map(|(n, _)| n.as_str()).collect();
        env_vars.push(EnvVar {
            name: env::DAPR_ENV_KEYS.to_owned(),
            value: Some(names.join(" ")),
            ..EnvVar::default()
        });
    }
    for from in &settings.env_from_secret {
        env_vars.push(secret(&from.name, &from.secret, &from.key));
    }

    let mut mounts = vec![VolumeMount {
        name: defaults::TOKEN_VOLUME.to_owned(),
        mount_path: defaults::TOKEN_MOUNT_DIR.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    }];
    mounts.extend(settings.mounts.iter().map(|m| VolumeMount {
        name: m.volume.clone(),
        mount_path: m.path.clone(),
        read_only: Some(m.read_only),
        ..VolumeMount::default()
    }));

    let public_port = IntOrString::Int(i32::from(settings.public_port));
    let readiness = Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/v1.0/healthz".to_owned()),
            port: public_port.clone(),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(settings.readiness.initial_delay_seconds),
        timeout_seconds: Some(settings.readiness.timeout_seconds),
        period_seconds: Some(settings.readiness.period_seconds),
        failure_threshold: Some(settings.readiness.failure_threshold),
        ..Probe::default()
    };
    let liveness = Probe {
        tcp_socket: Some(TCPSocketAction {
            port: public_port,
            ..TCPSocketAction::default()
        }),
        initial_delay_seconds: Some(settings.liveness.initial_delay_seconds),
        timeout_seconds: Some(settings.liveness.timeout_seconds),
        period_seconds: Some(settings.liveness.period_seconds),
        failure_threshold: Some(settings.liveness.failure_threshold),
        ..Probe::default()
    };

    let quantities = |pairs: [(&str, &Option<String>); 2]| {
        let map: BTreeMap<String, Quantity> = pairs
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), Quantity(v.clone()))))
            .collect();
        (!map.is_empty()).then_some(map)
    };
    let r = &settings.resources;
    let requests = quantities([("cpu", &r.cpu_request), ("memory", &r.memory_request)]);
    let limits = quantities([("cpu", &r.cpu_limit), ("memory", &r.memory_limit)]);
    let resources = (requests.is_some() || limits.is_some()).then(|| ResourceRequirements {
        requests,
        limits,
        ..ResourceRequirements::default()
    });

    Container {
        name: SIDECAR_CONTAINER.to_owned(),
        image: Some(
            settings
                .image
                .clone()
                .unwrap_or_else(|| cfg.sidecar_image.clone()),
        ),
        image_pull_policy: Some(cfg.sidecar_image_pull_policy.as_str().to_owned()),
        command: Some(vec![SIDECAR_COMMAND.to_owned()]),
        args: Some(sidecar_args(settings, cfg)),
        ports: Some(ports),
        env: Some(env_vars),
        volume_mounts: Some(mounts),
        readiness_probe: Some(readiness),
        liveness_probe: Some(liveness),
        resources,
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            run_as_non_root: Some(cfg.sidecar_run_as_non_root),
            read_only_root_filesystem: Some(cfg.sidecar_read_only_root_filesystem),
            capabilities: cfg.sidecar_drop_all_capabilities.then(|| Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            seccomp_profile: settings
                .seccomp_profile_type
                .as_ref()
                .map(|t| SeccompProfile {
                    type_: t.clone(),
                    localhost_profile: None,
                }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// The projected ServiceAccount token the sidecar shows the operator (audience
/// [`defaults::OPERATOR_TOKEN_AUDIENCE`], 2 h, refreshed by the kubelet).
fn token_volume() -> Volume {
    Volume {
        name: defaults::TOKEN_VOLUME.to_owned(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o444),
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(defaults::OPERATOR_TOKEN_AUDIENCE.to_owned()),
                    expiration_seconds: Some(defaults::TOKEN_EXPIRATION_SECONDS),
                    path: "token".to_owned(),
                }),
                ..VolumeProjection::default()
            }]),
        }),
        ..Volume::default()
    }
}

/// An `add` at the pointer made of `tokens` (escaped by jsonptr, so `dapr.io/app-id` is one token).
fn add(tokens: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(tokens.iter().copied()),
        value,
    })
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
