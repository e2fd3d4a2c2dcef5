//! `Configuration` (`dapr.io/v1alpha1`): tracing, metrics, access control, secret scopes, API
//! allow/deny lists and features for the sidecars that name it with `--config`. Fields Tandem does
//! not act on yet are still read (and kept by the apiserver as free-form objects), so an existing
//! manifest loads unchanged; the security sections (`accessControl`, `api`, `mtls`) are typed in
//! [`crate::access_control`]. Its root object is plain metadata/spec/status, so it is derived.

pub use crate::access_control::{
    AccessControlSpec, ApiRule, ApiSpec, AppPolicy, MtlsSpec, OperationRule,
};
use crate::crd::free_form_object;
use crate::status::Status;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const KIND: &str = "Configuration";

/// `spec` of a Configuration.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "dapr.io",
    version = "v1alpha1",
    kind = "Configuration",
    namespaced,
    status = "Status",
    derive = "Default",
    derive = "PartialEq",
    doc = "A Dapr Configuration: settings for the sidecars of the apps that name it."
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = add_metrics_alias, transform = crate::crd::without_defaults)]
pub struct ConfigurationSpec {
    /// Distributed tracing: sampling rate and exporters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    /// Metrics settings (Dapr also reads the key `metrics`).
    #[serde(default, alias = "metrics", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub metric: Option<serde_json::Value>,
    /// mTLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsSpec>,
    /// Which secrets each secret store lets the app read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsSpec>,
    /// Which apps may invoke this app's operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control: Option<AccessControlSpec>,
    /// Middleware on the sidecar's HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub http_pipeline: Option<serde_json::Value>,
    /// Middleware on calls from the sidecar to the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub app_http_pipeline: Option<serde_json::Value>,
    /// The name resolution component and its settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub name_resolution: Option<serde_json::Value>,
    /// Preview features turned on or off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    /// Allow and deny lists of sidecar APIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiSpec>,
    /// Component types the sidecar refuses to load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub components: Option<serde_json::Value>,
    /// Logging settings, for example API call logging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub logging: Option<serde_json::Value>,
}

/// Dapr's CRD knows both `metric` and `metrics`; the schema lists both so the apiserver keeps
/// whichever a manifest uses (serde reads either into `metric`).
fn add_metrics_alias(schema: &mut schemars::Schema) {
    let properties = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut);
    if let Some(properties) = properties
        && let Some(metric) = properties.get("metric").cloned()
    {
        properties.insert("metrics".to_owned(), metric);
    }
}

/// `spec.tracing`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tracing {
    /// A decimal string between 0 and 1; "0" turns tracing off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rate: Option<String>,
    /// Also write spans to the sidecar's stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<bool>,
    /// The Zipkin exporter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<ZipkinSpec>,
    /// The OpenTelemetry (OTLP) exporter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otel: Option<OtelSpec>,
}

/// `spec.tracing.zipkin`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZipkinSpec {
    /// The collector's span endpoint, e.g. `http://zipkin.default.svc.cluster.local:9411/api/v2/spans`.
    #[serde(default)]
    pub endpoint_address: String,
}

/// `spec.tracing.otel`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtelSpec {
    /// The collector's address: `host:port` (gRPC) or a URL (HTTP).
    #[serde(default)]
    pub endpoint_address: String,
    /// `grpc` or `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// TLS to the collector; true when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_secure: Option<bool>,
    /// Extra headers sent with each export, as `key=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// How long one export may take, a duration such as `10s` or `500ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// `spec.secrets`: per-store access rules for the secrets API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretsSpec {
    /// One rule per secret store.
    #[serde(default)]
    pub scopes: Vec<SecretScope>,
}

/// One secret store's access rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretScope {
    /// The secret store component's name.
    pub store_name: String,
    /// `allow` (default) or `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_access: Option<String>,
    /// When set, only these secrets may be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_secrets: Vec<String>,
    /// Secrets that may not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_secrets: Vec<String>,
}

impl SecretScope {
    /// Whether `key` may be read from this store under this rule (Dapr's order: an explicit
    /// allow list wins, then the deny list, then the default).
    pub fn allows(&self, key: &str) -> bool {
        if !self.allowed_secrets.is_empty() {
            return self.allowed_secrets.iter().any(|s| s == key);
        }
        if self.denied_secrets.iter().any(|s| s == key) {
            return false;
        }
        !self
            .default_access
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case("deny"))
    }
}

/// One `spec.features[]` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Feature {
    /// The feature's name.
    pub name: String,
    /// Whether it is on.
    #[serde(default)]
    pub enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(default: Option<&str>, allowed: &[&str], denied: &[&str]) -> SecretScope {
        SecretScope {
            store_name: "s".into(),
            default_access: default.map(str::to_owned),
            allowed_secrets: allowed.iter().map(|s| s.to_string()).collect(),
            denied_secrets: denied.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn secret_scope_decisions() {
        let cases = [
            (scope(None, &[], &[]), "a", true),
            (scope(Some("deny"), &[], &[]), "a", false),
            (scope(Some("deny"), &["a"], &[]), "a", true),
            (scope(Some("deny"), &["a"], &[]), "b", false),
            (scope(Some("allow"), &[], &["b"]), "b", false),
            (scope(Some("allow"), &[], &["b"]), "a", true),
        ];
        for (rule, key, want) in cases {
            assert_eq!(rule.allows(key), want, "{rule:?} {key}");
        }
    }
}
