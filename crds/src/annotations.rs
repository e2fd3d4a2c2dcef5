//! The injector → sidecar contract: `dapr.io/*` annotation keys, the sidecar's flag and env var
//! names, and the default ports. The injector writes these and the sidecar reads them, so both
//! take the names from here and cannot drift apart.

/// Default ports, as in Dapr.
pub mod ports {
    /// The app-facing HTTP API.
    pub const HTTP: u16 = 3500;
    /// Health and metadata only; what Kubernetes probes.
    pub const PUBLIC: u16 = 3501;
    /// The app-facing gRPC API.
    pub const GRPC: u16 = 50001;
    /// Sidecar ↔ sidecar traffic.
    pub const INTERNAL: u16 = 50002;
    /// Prometheus metrics.
    pub const METRICS: u16 = 9090;
}

/// Other defaults shared by the injector and the sidecar.
pub mod defaults {
    /// `--max-body-size`: 4 MiB.
    pub const MAX_BODY_SIZE: u64 = 4 << 20;
    /// `--dapr-graceful-shutdown-seconds`.
    pub const GRACEFUL_SHUTDOWN_SECONDS: u64 = 5;
    /// `--app-channel-address`.
    pub const APP_CHANNEL_ADDRESS: &str = "127.0.0.1";
    /// The built-in secret store of Kubernetes mode (Dapr's name): the pod's namespace's Secrets,
    /// served to the sidecar by the operator.
    pub const KUBERNETES_SECRET_STORE: &str = "kubernetes";
    /// A component's `spec.initTimeout` when unset.
    pub const COMPONENT_INIT_TIMEOUT: &str = "5s";
    /// The audience of the ServiceAccount token a sidecar presents to the operator (the injector
    /// mounts a projected token for it; the operator's TokenReview asks for it).
    pub const OPERATOR_TOKEN_AUDIENCE: &str = "tandem.io/operator";
    /// Where that token is mounted in the sidecar container (a projected volume, key `token`).
    pub const OPERATOR_TOKEN_FILE: &str = "/var/run/secrets/tandem.io/token/token";
    /// The projected ServiceAccount token volume the injector adds for that audience.
    pub const TOKEN_VOLUME: &str = "tandem-identity-token";
    /// Where it is mounted (read-only) in the sidecar; the token file is `<dir>/token`.
    pub const TOKEN_MOUNT_DIR: &str = "/var/run/secrets/tandem.io/token";
    /// Its lifetime; the kubelet refreshes it at 80 %.
    pub const TOKEN_EXPIRATION_SECONDS: i64 = 7200;
    /// `dapr.io/sidecar-listen-addresses` when unset, as in Dapr.
    pub const SIDECAR_LISTEN_ADDRESSES: &str = "[::1],127.0.0.1";
    /// The port of the operator's sidecar API (`tandem-api` Service).
    pub const CONTROL_PLANE_PORT: u16 = 6500;
    /// The operator's name in its SPIFFE ID,
    /// `spiffe://<control-plane trust domain>/ns/<its namespace>/tandem-operator` (Dapr's is
    /// `dapr-operator`); no workload may be signed for it.
    pub const CONTROL_PLANE_APP_ID: &str = "tandem-operator";
    /// The control plane's trust domain when unset (Dapr's Sentry default).
    pub const CONTROL_PLANE_TRUST_DOMAIN: &str = "cluster.local";
    /// The ConfigMap (in the control plane's namespace) where the operator publishes the trust
    /// anchors, key `ca.crt`, for the injector to hand to sidecars (Dapr's `dapr-trust-bundle`).
    pub const TRUST_BUNDLE_CONFIGMAP: &str = "tandem-trust-bundle";
    /// Sidecar probes, as in Dapr: (initialDelaySeconds, timeoutSeconds, periodSeconds, failureThreshold).
    pub const LIVENESS_PROBE: (i32, i32, i32, i32) = (180, 3, 10, 5);
    pub const READINESS_PROBE: (i32, i32, i32, i32) = (1, 1, 1, 5);
    /// App health checks, as in Dapr: `GET /healthz` every 5 s, 500 ms to answer, unhealthy
    /// after 3 failures in a row.
    pub const APP_HEALTH_CHECK_PATH: &str = "/healthz";
    pub const APP_HEALTH_PROBE_INTERVAL_SECONDS: u64 = 5;
    pub const APP_HEALTH_PROBE_TIMEOUT_MS: u64 = 500;
    pub const APP_HEALTH_THRESHOLD: u32 = 3;
}

/// Whether an annotation value turns a switch on, as Dapr reads it (`utils.IsTruthy`): `true`,
/// `t`, `yes`, `y`, `on` or `1`, in any case. The injector and the operator both read
/// `dapr.io/enabled` with this, so a pod that gets a sidecar also gets its `<app-id>-dapr` Service.
pub fn is_truthy(value: &str) -> bool {
    ["true", "t", "yes", "y", "on", "1"]
        .iter()
        .any(|yes| value.trim().eq_ignore_ascii_case(yes))
}

/// `dapr.io/*` pod annotations.
pub mod keys {
    pub const ENABLED: &str = "dapr.io/enabled";
    pub const APP_ID: &str = "dapr.io/app-id";
    pub const APP_PORT: &str = "dapr.io/app-port";
    pub const APP_PROTOCOL: &str = "dapr.io/app-protocol";
    pub const APP_CHANNEL_ADDRESS: &str = "dapr.io/app-channel-address";
    pub const CONFIG: &str = "dapr.io/config";
    pub const LOG_LEVEL: &str = "dapr.io/log-level";
    pub const LOG_AS_JSON: &str = "dapr.io/log-as-json";
    pub const ENABLE_METRICS: &str = "dapr.io/enable-metrics";
    pub const METRICS_PORT: &str = "dapr.io/metrics-port";
    pub const API_TOKEN_SECRET: &str = "dapr.io/api-token-secret";
    pub const APP_TOKEN_SECRET: &str = "dapr.io/app-token-secret";
    pub const MAX_BODY_SIZE: &str = "dapr.io/max-body-size";
    pub const HTTP_MAX_REQUEST_SIZE: &str = "dapr.io/http-max-request-size";
    pub const GRACEFUL_SHUTDOWN_SECONDS: &str = "dapr.io/graceful-shutdown-seconds";
    pub const SIDECAR_LISTEN_ADDRESSES: &str = "dapr.io/sidecar-listen-addresses";
    pub const INTERNAL_GRPC_PORT: &str = "dapr.io/internal-grpc-port";
    pub const GRPC_PORT: &str = "dapr.io/grpc-port";
    /// Label the injector puts on pods it patched.
    pub const SIDECAR_INJECTED: &str = "dapr.io/sidecar-injected";
    /// Label the injector puts on pods it patched: whether the sidecar serves metrics.
    pub const METRICS_ENABLED: &str = "dapr.io/metrics-enabled";
    pub const APP_SSL: &str = "dapr.io/app-ssl";
    pub const ENABLE_PROFILING: &str = "dapr.io/enable-profiling";
    pub const ENABLE_DEBUG: &str = "dapr.io/enable-debug";
    pub const DEBUG_PORT: &str = "dapr.io/debug-port";
    pub const APP_MAX_CONCURRENCY: &str = "dapr.io/app-max-concurrency";
    pub const ENV: &str = "dapr.io/env";
    pub const ENV_FROM_SECRET: &str = "dapr.io/env-from-secret";
    pub const SIDECAR_CPU_REQUEST: &str = "dapr.io/sidecar-cpu-request";
    pub const SIDECAR_CPU_LIMIT: &str = "dapr.io/sidecar-cpu-limit";
    pub const SIDECAR_MEMORY_REQUEST: &str = "dapr.io/sidecar-memory-request";
    pub const SIDECAR_MEMORY_LIMIT: &str = "dapr.io/sidecar-memory-limit";
    pub const LIVENESS_PROBE_DELAY_SECONDS: &str = "dapr.io/sidecar-liveness-probe-delay-seconds";
    pub const LIVENESS_PROBE_TIMEOUT_SECONDS: &str =
        "dapr.io/sidecar-liveness-probe-timeout-seconds";
    pub const LIVENESS_PROBE_PERIOD_SECONDS: &str = "dapr.io/sidecar-liveness-probe-period-seconds";
    pub const LIVENESS_PROBE_THRESHOLD: &str = "dapr.io/sidecar-liveness-probe-threshold";
    pub const READINESS_PROBE_DELAY_SECONDS: &str = "dapr.io/sidecar-readiness-probe-delay-seconds";
    pub const READINESS_PROBE_TIMEOUT_SECONDS: &str =
        "dapr.io/sidecar-readiness-probe-timeout-seconds";
    pub const READINESS_PROBE_PERIOD_SECONDS: &str =
        "dapr.io/sidecar-readiness-probe-period-seconds";
    pub const READINESS_PROBE_THRESHOLD: &str = "dapr.io/sidecar-readiness-probe-threshold";
    pub const SIDECAR_IMAGE: &str = "dapr.io/sidecar-image";
    pub const SIDECAR_SECCOMP_PROFILE_TYPE: &str = "dapr.io/sidecar-seccomp-profile-type";
    pub const HTTP_READ_BUFFER_SIZE: &str = "dapr.io/http-read-buffer-size";
    pub const READ_BUFFER_SIZE: &str = "dapr.io/read-buffer-size";
    pub const BLOCK_SHUTDOWN_DURATION: &str = "dapr.io/block-shutdown-duration";
    pub const ENABLE_API_LOGGING: &str = "dapr.io/enable-api-logging";
    pub const UNIX_DOMAIN_SOCKET_PATH: &str = "dapr.io/unix-domain-socket-path";
    pub const VOLUME_MOUNTS: &str = "dapr.io/volume-mounts";
    pub const VOLUME_MOUNTS_RW: &str = "dapr.io/volume-mounts-rw";
    pub const DISABLE_BUILTIN_K8S_SECRET_STORE: &str = "dapr.io/disable-builtin-k8s-secret-store";
    pub const ENABLE_APP_HEALTH_CHECK: &str = "dapr.io/enable-app-health-check";
    pub const APP_HEALTH_CHECK_PATH: &str = "dapr.io/app-health-check-path";
    pub const APP_HEALTH_PROBE_INTERVAL: &str = "dapr.io/app-health-probe-interval";
    pub const APP_HEALTH_PROBE_TIMEOUT: &str = "dapr.io/app-health-probe-timeout";
    pub const APP_HEALTH_THRESHOLD: &str = "dapr.io/app-health-threshold";
    pub const APP_BINDING_OPTIONS_TIMEOUT: &str = "dapr.io/app-binding-options-timeout";
    pub const PLACEMENT_HOST_ADDRESS: &str = "dapr.io/placement-host-address";
    pub const ACTORS_DISSEMINATE_TIMEOUT: &str = "dapr.io/actors-disseminate-timeout";
    pub const SCHEDULER_HOST_ADDRESS: &str = "dapr.io/scheduler-host-address";
    pub const PLUGGABLE_COMPONENTS: &str = "dapr.io/pluggable-components";
    pub const PLUGGABLE_COMPONENTS_SOCKETS_FOLDER: &str =
        "dapr.io/pluggable-components-sockets-folder";
    pub const COMPONENT_CONTAINER: &str = "dapr.io/component-container";
    pub const INJECT_PLUGGABLE_COMPONENTS: &str = "dapr.io/inject-pluggable-components";
    pub const SENTRY_REQUEST_JWT_AUDIENCES: &str = "dapr.io/sentry-request-jwt-audiences";
    pub const SIDECAR_SVC_ANNOTATIONS: &str = "dapr.io/sidecar-svc-annotations";
    pub const DISABLE_INIT_ENDPOINTS: &str = "dapr.io/disable-init-endpoints";
    pub const ENABLE_NATIVE_SIDECAR: &str = "dapr.io/enable-native-sidecar";
}

/// The sidecar's command-line flags (daprd's names).
pub mod flags {
    pub const APP_ID: &str = "app-id";
    pub const APP_PORT: &str = "app-port";
    pub const APP_PROTOCOL: &str = "app-protocol";
    pub const APP_CHANNEL_ADDRESS: &str = "app-channel-address";
    pub const DAPR_HTTP_PORT: &str = "dapr-http-port";
    pub const DAPR_PUBLIC_PORT: &str = "dapr-public-port";
    pub const DAPR_GRPC_PORT: &str = "dapr-grpc-port";
    pub const DAPR_INTERNAL_GRPC_PORT: &str = "dapr-internal-grpc-port";
    pub const DAPR_LISTEN_ADDRESSES: &str = "dapr-listen-addresses";
    pub const METRICS_PORT: &str = "metrics-port";
    pub const ENABLE_METRICS: &str = "enable-metrics";
    /// mTLS between sidecars, certificates from the control plane's CA (Kubernetes mode).
    pub const ENABLE_MTLS: &str = "enable-mtls";
    pub const RESOURCES_PATH: &str = "resources-path";
    pub const CONFIG: &str = "config";
    pub const LOG_LEVEL: &str = "log-level";
    pub const LOG_AS_JSON: &str = "log-as-json";
    pub const MAX_BODY_SIZE: &str = "max-body-size";
    pub const GRACEFUL_SHUTDOWN_SECONDS: &str = "dapr-graceful-shutdown-seconds";
    pub const MODE: &str = "mode";
    /// The operator's sidecar API, `host:port` (Kubernetes mode).
    pub const CONTROL_PLANE_ADDRESS: &str = "control-plane-address";
    /// The file holding the token the sidecar presents to the operator.
    pub const CONTROL_PLANE_TOKEN_FILE: &str = "control-plane-token-file";
    /// The cluster's DNS domain (Kubernetes mode); default from resolv.conf, else cluster.local.
    pub const KUBERNETES_CLUSTER_DOMAIN: &str = "kubernetes-cluster-domain";
    pub const ENABLE_APP_HEALTH_CHECK: &str = "enable-app-health-check";
    pub const APP_HEALTH_CHECK_PATH: &str = "app-health-check-path";
    pub const APP_HEALTH_PROBE_INTERVAL: &str = "app-health-probe-interval";
    pub const APP_HEALTH_PROBE_TIMEOUT: &str = "app-health-probe-timeout";
    pub const APP_HEALTH_THRESHOLD: &str = "app-health-threshold";
}

/// Environment variables.
pub mod env {
    /// Token apps must present to the sidecar (`dapr-api-token` header).
    pub const DAPR_API_TOKEN: &str = "DAPR_API_TOKEN";
    /// Token the sidecar presents to its own app.
    pub const APP_API_TOKEN: &str = "APP_API_TOKEN";
    /// Set for the app by `tandem-sidecar run`.
    pub const DAPR_HTTP_PORT: &str = "DAPR_HTTP_PORT";
    pub const DAPR_GRPC_PORT: &str = "DAPR_GRPC_PORT";
    pub const APP_ID: &str = "APP_ID";
    /// The pod's namespace (downward API); used for `namespace` key prefixes and caller headers.
    pub const NAMESPACE: &str = "NAMESPACE";
    pub const POD_NAME: &str = "POD_NAME";
    /// The pod's IP (downward API `status.podIP`): where the sidecar's internal port listens in
    /// Kubernetes mode.
    pub const POD_IP: &str = "POD_IP";
    /// Set on app containers by the injector: the protocol the sidecar speaks to the app.
    pub const APP_PROTOCOL: &str = "APP_PROTOCOL";
    /// Set on the sidecar by the injector: the names of the variables from `dapr.io/env`.
    pub const DAPR_ENV_KEYS: &str = "DAPR_ENV_KEYS";
    /// Set on the sidecar by the injector: the control plane's trust anchors (PEM). With them the
    /// sidecar talks to the operator over TLS and accepts only the operator's SPIFFE ID.
    pub const DAPR_TRUST_ANCHORS: &str = "DAPR_TRUST_ANCHORS";
    /// The control plane's namespace and trust domain: they make the operator's SPIFFE ID.
    pub const DAPR_CONTROLPLANE_NAMESPACE: &str = "DAPR_CONTROLPLANE_NAMESPACE";
    pub const DAPR_CONTROLPLANE_TRUST_DOMAIN: &str = "DAPR_CONTROLPLANE_TRUST_DOMAIN";
}

/// HTTP headers of the Dapr wire protocol.
pub mod headers {
    pub const API_TOKEN: &str = "dapr-api-token";
    pub const APP_ID: &str = "dapr-app-id";
    pub const CALLER_APP_ID: &str = "dapr-caller-app-id";
    pub const CALLER_NAMESPACE: &str = "dapr-caller-namespace";
    pub const CALLEE_APP_ID: &str = "dapr-callee-app-id";
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
}

#[cfg(test)]
mod tests {
    use super::is_truthy;

    #[test]
    fn truthy_values_are_daprs() {
        for yes in ["true", "TRUE", "True", "t", "yes", "Y", "on", "1", " true "] {
            assert!(is_truthy(yes), "{yes:?}");
        }
        for no in ["false", "", "0", "no", "off", "enabled", "truee", "2"] {
            assert!(!is_truthy(no), "{no:?}");
        }
    }
}
