//! The typed shape of a Configuration's `spec.accessControl` (which apps may invoke which of this
//! app's operations) and `spec.api` (which sidecar APIs the app may call), as Dapr documents
//! them. `ConfigurationSpec` still keeps both as free-form objects so existing manifests load
//! unchanged; readers parse them with [`AccessControlSpec::from_value`] and [`ApiSpec::from_value`].

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

impl AccessControlSpec {
    pub fn from_value(value: &serde_json::Value) -> Result<AccessControlSpec, serde_json::Error> {
        AccessControlSpec::deserialize(value)
    }
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
    /// `http`, `grpc`, or empty for both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

impl ApiSpec {
    pub fn from_value(value: &serde_json::Value) -> Result<ApiSpec, serde_json::Error> {
        ApiSpec::deserialize(value)
    }
}
