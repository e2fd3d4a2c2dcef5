//! The security sections of a Configuration, as Dapr documents them: `spec.accessControl` (which
//! apps may invoke which of this app's operations), `spec.api` (which sidecar APIs the app may
//! call) and `spec.mtls` (certificate lifetimes).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `spec.accessControl`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessControlSpec {
    /// `allow` or `deny`: the action when no policy decides. Missing with policies present: deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<String>,
    /// This app's trust domain, the first segment of its SPIFFE ID (default `public`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
    /// One policy per calling app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AppPolicy>,
}

/// What one calling app may do.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppPolicy {
    /// The caller's app id.
    #[serde(default)]
    pub app_id: String,
    /// `allow` or `deny` for this caller's operations that no operation rule matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<String>,
    /// The caller's trust domain (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
    /// The caller's namespace (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Rules per operation (method path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<OperationRule>,
}

/// A rule for one operation path; `*` matches one path segment, `**` any number.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationRule {
    /// The method path, for example `/orders/*` (gRPC: `/package.Service/Method`).
    pub name: String,
    /// HTTP verbs the action applies to (`*` for all); ignored for gRPC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_verb: Vec<String>,
    /// `allow` or `deny`.
    pub action: String,
}

/// `spec.api`: API allow and deny lists.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiSpec {
    /// When not empty, only these API groups are served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<ApiRule>,
    /// These API groups are not served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<ApiRule>,
}

/// One API group and version, for example `state` and `v1.0` (or `v1` on gRPC).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiRule {
    /// The group: `state`, `invoke`, `publish`, `bindings`, `secrets`, `actors`, `metadata`, …
    pub name: String,
    /// The version: `v1.0`, `v1.0-alpha1` (HTTP) or `v1`, `v1alpha1` (gRPC).
    #[serde(default)]
    pub version: String,
    /// `http` (also when left out) or `grpc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// `spec.mtls` (Dapr's Sentry settings; Tandem's standalone sidecar reads its TTL from
/// `--mtls-cert-ttl` for now).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MtlsSpec {
    /// Whether sidecars talk mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// How long a workload certificate lives (a Go duration, default `24h`).
    #[serde(
        default,
        rename = "workloadCertTTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_cert_ttl: Option<String>,
    /// How much clock difference certificates tolerate (a Go duration, default `15m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_clock_skew: Option<String>,
    /// The CA's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentry_address: Option<String>,
    /// The control plane's trust domain (default `cluster.local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_trust_domain: Option<String>,
}
