//! Pure: a pod's `dapr.io/*` annotations → validated [`SidecarSettings`] with Dapr's defaults.
//! A bad value of an annotation Tandem acts on is an error naming the annotation; annotations
//! the sidecar has no flag for yet ([`UNSUPPORTED`]) and unknown `dapr.io/*` keys only produce
//! warnings (returned to `kubectl` as admission warnings).
//!
//! [`read::Annotations`] reads and checks one annotation at a time; [`unsupported`] judges the
//! rest; [`SidecarSettings::from_annotations`] puts them together.

mod app_health;
mod read;
mod unsupported;

pub use app_health::AppHealth;
pub use read::is_quantity;
pub use unsupported::{UNSUPPORTED, ValueKind};

use read::Annotations;
use std::collections::BTreeMap;
use tandem_crds::annotations::{defaults, keys, ports};

/// At most this many warnings go back to the client (the API server caps them too).
const MAX_WARNINGS: usize = 10;

/// The liveness probe's annotations: initial delay, timeout, period, failure threshold.
const LIVENESS: [&str; 4] = [
    keys::LIVENESS_PROBE_DELAY_SECONDS,
    keys::LIVENESS_PROBE_TIMEOUT_SECONDS,
    keys::LIVENESS_PROBE_PERIOD_SECONDS,
    keys::LIVENESS_PROBE_THRESHOLD,
];
/// The readiness probe's annotations, in [`LIVENESS`]'s order.
const READINESS: [&str; 4] = [
    keys::READINESS_PROBE_DELAY_SECONDS,
    keys::READINESS_PROBE_TIMEOUT_SECONDS,
    keys::READINESS_PROBE_PERIOD_SECONDS,
    keys::READINESS_PROBE_THRESHOLD,
];

/// An annotation value Tandem cannot use; the message says which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: {value:?} {reason}")]
pub struct SettingsError {
    pub key: &'static str,
    /// The value, shortened to 64 characters.
    pub value: String,
    pub reason: String,
}

fn invalid(key: &'static str, value: &str, reason: impl Into<String>) -> SettingsError {
    let mut shown: String = value.chars().take(64).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    SettingsError {
        key,
        value: shown,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub initial_delay_seconds: i32,
    pub timeout_seconds: i32,
    pub period_seconds: i32,
    pub failure_threshold: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnv {
    pub name: String,
    pub secret: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraMount {
    pub volume: String,
    pub path: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
}

/// Everything the patch needs to know about the sidecar of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarSettings {
    pub app_id: String,
    pub app_port: Option<u16>,
    pub app_protocol: String,
    pub app_channel_address: Option<String>,
    pub config: Option<String>,
    pub log_level: String,
    pub log_as_json: bool,
    pub enable_metrics: bool,
    pub metrics_port: u16,
    pub http_port: u16,
    pub public_port: u16,
    pub grpc_port: u16,
    pub internal_grpc_port: u16,
    pub listen_addresses: String,
    pub api_token_secret: Option<String>,
    pub app_token_secret: Option<String>,
    pub env: Vec<(String, String)>,
    pub env_from_secret: Vec<SecretEnv>,
    pub resources: Resources,
    pub liveness: Probe,
    pub readiness: Probe,
    pub image: Option<String>,
    pub seccomp_profile_type: Option<String>,
    pub max_body_size: Option<String>,
    pub graceful_shutdown_seconds: Option<u64>,
    /// `dapr.io/enable-app-health-check` and `dapr.io/app-health-*`.
    pub app_health: Option<AppHealth>,
    pub mounts: Vec<ExtraMount>,
    /// For the person creating the pod; never a reason to refuse it.
    pub warnings: Vec<String>,
}

impl SidecarSettings {
    /// Reads the annotations of a pod named `pod_name` (the app id when `dapr.io/app-id` is unset).
    /// Annotations are checked in a fixed order; the first bad one is the error.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
        pod_name: Option<&str>,
    ) -> Result<SidecarSettings, SettingsError> {
        let read = Annotations::new(annotations);
        let mut warnings = Vec::new();
        let app_id = read.app_id(pod_name, &mut warnings)?;
        let app_port = read.port(keys::APP_PORT)?;
        let metrics_port = read.port(keys::METRICS_PORT)?.unwrap_or(ports::METRICS);
        let grpc_port = read.port(keys::GRPC_PORT)?.unwrap_or(ports::GRPC);
        let internal_port = read
            .port(keys::INTERNAL_GRPC_PORT)?
            .unwrap_or(ports::INTERNAL);
        let enable_metrics = read.bool(keys::ENABLE_METRICS, true)?;
        let mut taken = vec![
            ("dapr-http", keys::APP_PORT, ports::HTTP),
            ("dapr-public", keys::APP_PORT, ports::PUBLIC),
            ("dapr-grpc", keys::GRPC_PORT, grpc_port),
            ("dapr-internal", keys::INTERNAL_GRPC_PORT, internal_port),
        ];
        if enable_metrics {
            taken.push(("dapr-metrics", keys::METRICS_PORT, metrics_port));
        }
        taken.extend(app_port.map(|port| ("the app", keys::APP_PORT, port)));
        distinct_ports(&taken)?;
        let listen_addresses = read.listen_addresses()?;
        let graceful_shutdown_seconds = read.graceful_shutdown_seconds()?;
        let max_body_size = read.max_body_size()?;
        let app_health = app_health::app_health(&read)?;

        let protocols = ["http", "https", "grpc", "grpcs", "h2c"];
        let levels = ["debug", "info", "warn", "error", "fatal"];
        let settings = SidecarSettings {
            app_protocol: read.one_of(keys::APP_PROTOCOL, "http", &protocols)?,
            app_channel_address: read.get(keys::APP_CHANNEL_ADDRESS).map(str::to_owned),
            config: read.object_name(keys::CONFIG)?,
            log_level: read.one_of(keys::LOG_LEVEL, "info", &levels)?,
            log_as_json: read.bool(keys::LOG_AS_JSON, false)?,
            enable_metrics,
            metrics_port,
            http_port: ports::HTTP,
            public_port: ports::PUBLIC,
            grpc_port,
            internal_grpc_port: internal_port,
            listen_addresses: listen_addresses.to_owned(),
            api_token_secret: read.object_name(keys::API_TOKEN_SECRET)?,
            app_token_secret: read.object_name(keys::APP_TOKEN_SECRET)?,
            env: read.env()?,
            env_from_secret: read.env_from_secret()?,
            resources: Resources {
                cpu_request: read.quantity(keys::SIDECAR_CPU_REQUEST)?,
                cpu_limit: read.quantity(keys::SIDECAR_CPU_LIMIT)?,
                memory_request: read.quantity(keys::SIDECAR_MEMORY_REQUEST)?,
                memory_limit: read.quantity(keys::SIDECAR_MEMORY_LIMIT)?,
            },
            liveness: read.probe(LIVENESS, defaults::LIVENESS_PROBE)?,
            readiness: read.probe(READINESS, defaults::READINESS_PROBE)?,
            image: read.image()?,
            seccomp_profile_type: read.seccomp_profile_type()?,
            max_body_size,
            graceful_shutdown_seconds,
            app_health,
            mounts: [
                read.mounts(keys::VOLUME_MOUNTS, true)?,
                read.mounts(keys::VOLUME_MOUNTS_RW, false)?,
            ]
            .concat(),
            app_id,
            app_port,
            warnings: Vec::new(),
        };
        warnings.extend(unsupported::warnings(annotations));
        warnings.truncate(MAX_WARNINGS);
        Ok(SidecarSettings {
            warnings,
            ..settings
        })
    }
}

/// Each port once: (what uses it, the annotation that set it, the port). The first clash is
/// reported on the later user's annotation, naming the earlier user.
fn distinct_ports(taken: &[(&str, &'static str, u16)]) -> Result<(), SettingsError> {
    for (i, (_, key, port)) in taken.iter().enumerate() {
        if let Some((other, _, _)) = taken[..i].iter().find(|(_, _, p)| p == port) {
            return Err(invalid(
                key,
                &port.to_string(),
                format!("is already used by {other}"),
            ));
        }
    }
    Ok(())
}
