//! Pure: a pod's `dapr.io/*` annotations → validated [`SidecarSettings`] with Dapr's defaults.
//! A bad value of an annotation Tandem acts on is an error naming the annotation; annotations
//! the sidecar has no flag for yet ([`UNSUPPORTED`]) and unknown `dapr.io/*` keys only produce
//! warnings (returned to `kubectl` as admission warnings).

use std::collections::BTreeMap;
use tandem_crds::annotations::{defaults, is_truthy, keys, ports};

/// Recognised Dapr annotations whose daprd flag or feature tandem-sidecar lacks: validated,
/// then ignored with a warning. The second field is what a valid value looks like.
pub const UNSUPPORTED: &[(&str, ValueKind)] = &[
    (keys::APP_SSL, ValueKind::Bool),
    (keys::ENABLE_PROFILING, ValueKind::Bool),
    (keys::ENABLE_DEBUG, ValueKind::Bool),
    (keys::DEBUG_PORT, ValueKind::Port),
    (keys::APP_MAX_CONCURRENCY, ValueKind::Int),
    (keys::HTTP_READ_BUFFER_SIZE, ValueKind::Int),
    (keys::READ_BUFFER_SIZE, ValueKind::Any),
    (keys::BLOCK_SHUTDOWN_DURATION, ValueKind::Any),
    (keys::ENABLE_API_LOGGING, ValueKind::Bool),
    (keys::UNIX_DOMAIN_SOCKET_PATH, ValueKind::Any),
    (keys::DISABLE_BUILTIN_K8S_SECRET_STORE, ValueKind::Bool),
    (keys::ENABLE_APP_HEALTH_CHECK, ValueKind::Bool),
    (keys::APP_HEALTH_CHECK_PATH, ValueKind::Any),
    (keys::APP_HEALTH_PROBE_INTERVAL, ValueKind::Int),
    (keys::APP_HEALTH_PROBE_TIMEOUT, ValueKind::Int),
    (keys::APP_HEALTH_THRESHOLD, ValueKind::Int),
    (keys::APP_BINDING_OPTIONS_TIMEOUT, ValueKind::Any),
    (keys::PLACEMENT_HOST_ADDRESS, ValueKind::Any),
    (keys::ACTORS_DISSEMINATE_TIMEOUT, ValueKind::Any),
    (keys::SCHEDULER_HOST_ADDRESS, ValueKind::Any),
    (keys::PLUGGABLE_COMPONENTS, ValueKind::Any),
    (keys::PLUGGABLE_COMPONENTS_SOCKETS_FOLDER, ValueKind::Any),
    (keys::COMPONENT_CONTAINER, ValueKind::Any),
    (keys::INJECT_PLUGGABLE_COMPONENTS, ValueKind::Bool),
    (keys::SENTRY_REQUEST_JWT_AUDIENCES, ValueKind::Any),
    (keys::DISABLE_INIT_ENDPOINTS, ValueKind::Any),
    (keys::ENABLE_NATIVE_SIDECAR, ValueKind::Bool),
];

/// Annotations Tandem acts on (here, or in the operator: `sidecar-svc-annotations`).
const SUPPORTED: &[&str] = &[
    keys::ENABLED,
    keys::APP_ID,
    keys::APP_PORT,
    keys::APP_PROTOCOL,
    keys::APP_CHANNEL_ADDRESS,
    keys::CONFIG,
    keys::LOG_LEVEL,
    keys::LOG_AS_JSON,
    keys::ENABLE_METRICS,
    keys::METRICS_PORT,
    keys::API_TOKEN_SECRET,
    keys::APP_TOKEN_SECRET,
    keys::MAX_BODY_SIZE,
    keys::HTTP_MAX_REQUEST_SIZE,
    keys::GRACEFUL_SHUTDOWN_SECONDS,
    keys::SIDECAR_LISTEN_ADDRESSES,
    keys::INTERNAL_GRPC_PORT,
    keys::GRPC_PORT,
    keys::ENV,
    keys::ENV_FROM_SECRET,
    keys::SIDECAR_CPU_REQUEST,
    keys::SIDECAR_CPU_LIMIT,
    keys::SIDECAR_MEMORY_REQUEST,
    keys::SIDECAR_MEMORY_LIMIT,
    keys::LIVENESS_PROBE_DELAY_SECONDS,
    keys::LIVENESS_PROBE_TIMEOUT_SECONDS,
    keys::LIVENESS_PROBE_PERIOD_SECONDS,
    keys::LIVENESS_PROBE_THRESHOLD,
    keys::READINESS_PROBE_DELAY_SECONDS,
    keys::READINESS_PROBE_TIMEOUT_SECONDS,
    keys::READINESS_PROBE_PERIOD_SECONDS,
    keys::READINESS_PROBE_THRESHOLD,
    keys::SIDECAR_IMAGE,
    keys::SIDECAR_SECCOMP_PROFILE_TYPE,
    keys::VOLUME_MOUNTS,
    keys::VOLUME_MOUNTS_RW,
    keys::SIDECAR_SVC_ANNOTATIONS,
];

/// At most this many warnings go back to the client (the API server caps them too).
const MAX_WARNINGS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    Int,
    Port,
    Any,
}

impl ValueKind {
    fn accepts(self, value: &str) -> bool {
        let value = value.trim();
        match self {
            ValueKind::Bool => [
                "true", "false", "t", "f", "yes", "no", "y", "n", "on", "off", "1", "0",
            ]
            .iter()
            .any(|v| value.eq_ignore_ascii_case(v)),
            ValueKind::Int => value.parse::<i64>().is_ok(),
            ValueKind::Port => value.parse::<u16>().is_ok_and(|p| p > 0),
            ValueKind::Any => true,
        }
    }
}

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
    pub mounts: Vec<ExtraMount>,
    /// For the person creating the pod; never a reason to refuse it.
    pub warnings: Vec<String>,
}

impl SidecarSettings {
    /// Reads the annotations of a pod named `pod_name` (the app id when `dapr.io/app-id` is unset).
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
        pod_name: Option<&str>,
    ) -> Result<SidecarSettings, SettingsError> {
        let get = |key: &str| {
            annotations
                .get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let mut warnings = Vec::new();

        let app_id = match (get(keys::APP_ID), pod_name.filter(|n| !n.is_empty())) {
            (Some(id), _) => id.to_owned(),
            (None, Some(name)) => {
                warnings.push(format!(
                    "{} is not set; using the pod name {name:?} as the app id",
                    keys::APP_ID
                ));
                name.to_owned()
            }
            (None, None) => {
                return Err(invalid(
                    keys::APP_ID,
                    "",
                    "must be set: the pod has no name yet (generateName)",
                ));
            }
        };
        if !crate::config::is_dns_label(&format!("{app_id}-dapr")) {
            return Err(invalid(
                keys::APP_ID,
                &app_id,
                "is not a valid app id: <app-id>-dapr must be a DNS-1123 label (lowercase letters, digits, '-', at most 63 characters)",
            ));
        }
        let port =
            |key: &'static str, default: Option<u16>| -> Result<Option<u16>, SettingsError> {
                match get(key) {
                    None => Ok(default),
                    Some(v) => v
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .map(Some)
                        .ok_or_else(|| invalid(key, v, "is not a port (1-65535)")),
                }
            };
        let bool_of = |key: &'static str, default: bool| -> Result<bool, SettingsError> {
            match get(key) {
                None => Ok(default),
                Some(v) if ValueKind::Bool.accepts(v) => Ok(is_truthy(v)),
                Some(v) => Err(invalid(key, v, "is not a boolean (true/false)")),
            }
        };
        let one_of =
            |key: &'static str, default: &str, allowed: &[&str]| -> Result<String, SettingsError> {
                let value = get(key).unwrap_or(default).to_ascii_lowercase();
                if allowed.contains(&value.as_str()) {
                    Ok(value)
                } else {
                    Err(invalid(
                        key,
                        &value,
                        format!("is not one of {}", allowed.join(", ")),
                    ))
                }
            };
        let probe = |keys: [&'static str; 4],
                     defaults: (i32, i32, i32, i32)|
         -> Result<Probe, SettingsError> {
            let field = |key: &'static str, default: i32, min: i32| match get(key) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n >= min)
                    .ok_or_else(|| invalid(key, v, format!("is not a whole number >= {min}"))),
            };
            Ok(Probe {
                initial_delay_seconds: field(keys[0], defaults.0, 0)?,
                timeout_seconds: field(keys[1], defaults.1, 1)?,
                period_seconds: field(keys[2], defaults.2, 1)?,
                failure_threshold: field(keys[3], defaults.3, 1)?,
            })
        };
        let quantity = |key: &'static str| -> Result<Option<String>, SettingsError> {
            match get(key) {
                None => Ok(None),
                Some(v) if is_quantity(v) => Ok(Some(v.to_owned())),
                Some(v) => Err(invalid(
                    key,
                    v,
                    "is not a Kubernetes quantity (like 100m, 0.5, 128Mi)",
                )),
            }
        };

        let app_port = port(keys::APP_PORT, None)?;
        let metrics_port =
            port(keys::METRICS_PORT, Some(ports::METRICS))?.unwrap_or(ports::METRICS);
        let grpc_port = port(keys::GRPC_PORT, Some(ports::GRPC))?.unwrap_or(ports::GRPC);
        let internal_grpc_port =
            port(keys::INTERNAL_GRPC_PORT, Some(ports::INTERNAL))?.unwrap_or(ports::INTERNAL);
        let enable_metrics = bool_of(keys::ENABLE_METRICS, true)?;
        let mut taken = vec![("dapr-http", ports::HTTP), ("dapr-public", ports::PUBLIC)];
        taken.push(("dapr-grpc", grpc_port));
        taken.push(("dapr-internal", internal_grpc_port));
        if enable_metrics {
            taken.push(("dapr-metrics", metrics_port));
        }
        if let Some(app_port) = app_port {
            taken.push(("the app", app_port));
        }
        for (i, (name, p)) in taken.iter().enumerate() {
            if let Some((other, _)) = taken[..i].iter().find(|(_, q)| q == p) {
                let key = match *name {
                    "dapr-grpc" => keys::GRPC_PORT,
                    "dapr-internal" => keys::INTERNAL_GRPC_PORT,
                    "dapr-metrics" => keys::METRICS_PORT,
                    _ => keys::APP_PORT,
                };
                return Err(invalid(
                    key,
                    &p.to_string(),
                    format!("is already used by {other}"),
                ));
            }
        }

        let listen_addresses =
            get(keys::SIDECAR_LISTEN_ADDRESSES).unwrap_or(defaults::SIDECAR_LISTEN_ADDRESSES);
        for addr in listen_addresses.split(',') {
            let bare = addr.trim().trim_start_matches('[').trim_end_matches(']');
            if bare.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(
                    keys::SIDECAR_LISTEN_ADDRESSES,
                    listen_addresses,
                    "must be IP addresses, comma-separated",
                ));
            }
        }
        let graceful_shutdown_seconds = match get(keys::GRACEFUL_SHUTDOWN_SECONDS) {
            None | Some("-1") => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                invalid(
                    keys::GRACEFUL_SHUTDOWN_SECONDS,
                    v,
                    "is not a whole number of seconds",
                )
            })?),
        };
        let max_body_size = match (get(keys::MAX_BODY_SIZE), get(keys::HTTP_MAX_REQUEST_SIZE)) {
            (Some(size), _) if is_size(size) => Some(size.to_owned()),
            (Some(size), _) => {
                return Err(invalid(
                    keys::MAX_BODY_SIZE,
                    size,
                    "is not a size (like 4Mi or 4194304)",
                ));
            }
            // Legacy: megabytes.
            (None, Some(mb)) => match mb.parse::<u32>() {
                Ok(mb) if mb > 0 => Some(format!("{mb}Mi")),
                _ => {
                    return Err(invalid(
                        keys::HTTP_MAX_REQUEST_SIZE,
                        mb,
                        "is not a whole number of megabytes",
                    ));
                }
            },
            (None, None) => None,
        };
        let name_value =
            |key: &'static str, value: &str| -> Result<Option<String>, SettingsError> {
                if crate::config::is_dns_subdomain(value) {
                    Ok(Some(value.to_owned()))
                } else {
                    Err(invalid(key, value, "is not a Kubernetes object name"))
                }
            };

        let settings = SidecarSettings {
            app_protocol: one_of(
                keys::APP_PROTOCOL,
                "http",
                &["http", "https", "grpc", "grpcs", "h2c"],
            )?,
            app_channel_address: get(keys::APP_CHANNEL_ADDRESS).map(str::to_owned),
            config: get(keys::CONFIG)
                .map(|c| name_value(keys::CONFIG, c))
                .transpose()?
                .flatten(),
            log_level: one_of(
                keys::LOG_LEVEL,
                "info",
                &["debug", "info", "warn", "error", "fatal"],
            )?,
            log_as_json: bool_of(keys::LOG_AS_JSON, false)?,
            enable_metrics,
            metrics_port,
            http_port: ports::HTTP,
            public_port: ports::PUBLIC,
            grpc_port,
            internal_grpc_port,
            listen_addresses: listen_addresses.to_owned(),
            api_token_secret: get(keys::API_TOKEN_SECRET)
                .map(|s| name_value(keys::API_TOKEN_SECRET, s))
                .transpose()?
                .flatten(),
            app_token_secret: get(keys::APP_TOKEN_SECRET)
                .map(|s| name_value(keys::APP_TOKEN_SECRET, s))
                .transpose()?
                .flatten(),
            env: parse_env(get(keys::ENV))?,
            env_from_secret: parse_env_from_secret(get(keys::ENV_FROM_SECRET))?,
            resources: Resources {
                cpu_request: quantity(keys::SIDECAR_CPU_REQUEST)?,
                cpu_limit: quantity(keys::SIDECAR_CPU_LIMIT)?,
                memory_request: quantity(keys::SIDECAR_MEMORY_REQUEST)?,
                memory_limit: quantity(keys::SIDECAR_MEMORY_LIMIT)?,
            },
            liveness: probe(
                [
                    keys::LIVENESS_PROBE_DELAY_SECONDS,
                    keys::LIVENESS_PROBE_TIMEOUT_SECONDS,
                    keys::LIVENESS_PROBE_PERIOD_SECONDS,
                    keys::LIVENESS_PROBE_THRESHOLD,
                ],
                defaults::LIVENESS_PROBE,
            )?,
            readiness: probe(
                [
                    keys::READINESS_PROBE_DELAY_SECONDS,
                    keys::READINESS_PROBE_TIMEOUT_SECONDS,
                    keys::READINESS_PROBE_PERIOD_SECONDS,
                    keys::READINESS_PROBE_THRESHOLD,
                ],
                defaults::READINESS_PROBE,
            )?,
            image: match get(keys::SIDECAR_IMAGE) {
                Some(image) if image.contains(char::is_whitespace) => {
                    return Err(invalid(
                        keys::SIDECAR_IMAGE,
                        image,
                        "is not an image reference",
                    ));
                }
                other => other.map(str::to_owned),
            },
            seccomp_profile_type: match get(keys::SIDECAR_SECCOMP_PROFILE_TYPE) {
                None => None,
                Some(t @ ("RuntimeDefault" | "Unconfined" | "Localhost")) => Some(t.to_owned()),
                Some(t) => {
                    return Err(invalid(
                        keys::SIDECAR_SECCOMP_PROFILE_TYPE,
                        t,
                        "is not one of RuntimeDefault, Unconfined, Localhost",
                    ));
                }
            },
            max_body_size,
            graceful_shutdown_seconds,
            mounts: [
                parse_mounts(keys::VOLUME_MOUNTS, get(keys::VOLUME_MOUNTS), true)?,
                parse_mounts(keys::VOLUME_MOUNTS_RW, get(keys::VOLUME_MOUNTS_RW), false)?,
            ]
            .concat(),
            app_id,
            app_port,
            warnings: Vec::new(),
        };
        warnings.extend(unsupported_warnings(annotations));
        warnings.truncate(MAX_WARNINGS);
        Ok(SidecarSettings {
            warnings,
            ..settings
        })
    }
}

fn unsupported_warnings(annotations: &BTreeMap<String, String>) -> Vec<String> {
    let mut warnings = Vec::new();
    for (key, value) in annotations
        .iter()
        .filter(|(k, _)| k.starts_with("dapr.io/"))
    {
        if SUPPORTED.contains(&key.as_str()) {
            continue;
        }
        let shown: String = key.chars().take(64).collect();
        match UNSUPPORTED.iter().find(|(k, _)| k == key) {
            Some((_, kind)) if kind.accepts(value) => {
                warnings.push(format!(
                    "{shown} is not supported by tandem-sidecar yet; ignored"
                ));
            }
            Some(_) => warnings.push(format!(
                "{shown} has an invalid value (and is not supported yet); ignored"
            )),
            None => warnings.push(format!("{shown} is not a known Dapr annotation; ignored")),
        }
    }
    warnings
}

/// `K=V,K2=V2` (values may contain `=`; entries are trimmed).
fn parse_env(value: Option<&str>) -> Result<Vec<(String, String)>, SettingsError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut env: Vec<(String, String)> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, val) = entry
            .split_once('=')
            .ok_or_else(|| invalid(keys::ENV, entry, "is not NAME=value"))?;
        let name = name.trim();
        if !is_env_name(name) {
            return Err(invalid(
                keys::ENV,
                name,
                "is not an environment variable name",
            ));
        }
        if env.iter().any(|(n, _)| n == name) {
            return Err(invalid(keys::ENV, name, "is listed twice"));
        }
        env.push((name.to_owned(), val.trim().to_owned()));
    }
    Ok(env)
}

/// `K=secret` (key `secret`) or `K=secret:key`.
fn parse_env_from_secret(value: Option<&str>) -> Result<Vec<SecretEnv>, SettingsError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut env = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || {
            invalid(
                keys::ENV_FROM_SECRET,
                entry,
                "is not NAME=secret or NAME=secret:key",
            )
        };
        let (name, source) = entry.split_once('=').ok_or_else(bad)?;
        let (secret, key) = source.split_once(':').unwrap_or((source, source));
        let (name, secret, key) = (name.trim(), secret.trim(), key.trim());
        if !is_env_name(name) || !crate::config::is_dns_subdomain(secret) || key.is_empty() {
            return Err(bad());
        }
        env.push(SecretEnv {
            name: name.to_owned(),
            secret: secret.to_owned(),
            key: key.to_owned(),
        });
    }
    Ok(env)
}

/// `volume:/path,...`.
fn parse_mounts(
    key: &'static str,
    value: Option<&str>,
    read_only: bool,
) -> Result<Vec<ExtraMount>, SettingsError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut mounts = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (volume, path) = entry
            .split_once(':')
            .filter(|(v, p)| !v.is_empty() && p.starts_with('/'))
            .ok_or_else(|| invalid(key, entry, "is not volume:/absolute/path"))?;
        mounts.push(ExtraMount {
            volume: volume.to_owned(),
            path: path.to_owned(),
            read_only,
        });
    }
    Ok(mounts)
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A Kubernetes resource quantity: a decimal number with an optional binary (`Ki`…`Ei`),
/// decimal (`n`, `u`, `m`, `k`, `M`…`E`) or exponent (`e3`) suffix.
pub fn is_quantity(value: &str) -> bool {
    let value = value.strip_prefix(['+', '-']).unwrap_or(value);
    let end = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(end);
    let number_ok = !number.is_empty() && number != "." && number.matches('.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
            | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|exp| exp.strip_prefix(['+', '-']).unwrap_or(exp))
        .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()));
    number_ok && suffix_ok
}

/// A size as the sidecar's `--max-body-size` reads it: bytes, or `K/M/G(B)` / `Ki/Mi/Gi(B)`.
fn is_size(value: &str) -> bool {
    let end = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(end);
    number.parse::<f64>().is_ok_and(|n| n > 0.0)
        && matches!(
            unit.trim(),
            "" | "B"
                | "K"
                | "KB"
                | "k"
                | "kB"
                | "Ki"
                | "KiB"
                | "M"
                | "MB"
                | "Mi"
                | "MiB"
                | "G"
                | "GB"
                | "Gi"
                | "GiB"
        )
}
