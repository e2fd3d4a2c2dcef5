//! The `dapr.io/*` annotations Tandem does not act on: Dapr's that the sidecar has no flag or
//! feature for yet ([`UNSUPPORTED`], validated, then ignored) and keys Dapr does not know. Both only
//! warn; neither is ever a reason to refuse a pod.

use std::collections::BTreeMap;
use tandem_crds::annotations::keys;

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
    keys::ENABLE_APP_HEALTH_CHECK,
    keys::APP_HEALTH_CHECK_PATH,
    keys::APP_HEALTH_PROBE_INTERVAL,
    keys::APP_HEALTH_PROBE_TIMEOUT,
    keys::APP_HEALTH_THRESHOLD,
];

/// What a valid value of an annotation looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    Int,
    Port,
    Any,
}

impl ValueKind {
    pub(super) fn accepts(self, value: &str) -> bool {
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

/// One warning for each `dapr.io/*` annotation Tandem does not act on, in key order.
pub(super) fn warnings(annotations: &BTreeMap<String, String>) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::super::SidecarSettings;
    use super::*;

    #[test]
    fn every_unsupported_annotation_warns_and_never_fails() {
        for (key, _) in UNSUPPORTED {
            for value in ["true", "garbage", ""] {
                let annotations: BTreeMap<String, String> = [
                    (keys::APP_ID.to_owned(), "a".to_owned()),
                    ((*key).to_owned(), value.to_owned()),
                ]
                .into();
                let settings = SidecarSettings::from_annotations(&annotations, None);
                let Ok(settings) = settings else {
                    panic!("{key}={value:?} failed: {settings:?}");
                };
                assert_eq!(settings.warnings.len(), 1, "{key}={value:?}");
            }
        }
    }
}
