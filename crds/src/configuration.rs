//! `Configuration` (`dapr.io/v1alpha1`): tracing, metrics, access control, secret scopes, API
//! allow/deny lists and features for the sidecars that name it with `--config`. Fields Tandem does
//! not act on yet are still read, so an existing manifest loads unchanged.

use crate::meta::ObjectMeta;
use serde::{Deserialize, Serialize};

pub const KIND: &str = "Configuration";

/// A Dapr Configuration manifest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Configuration {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ConfigurationSpec,
}

/// `spec` of a Configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    #[serde(default, alias = "metrics", skip_serializing_if = "Option::is_none")]
    pub metric: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_pipeline: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_http_pipeline: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_resolution: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<serde_json::Value>,
}

/// `spec.tracing`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracing {
    /// A decimal string between 0 and 1; "0" turns tracing off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otel: Option<serde_json::Value>,
}

/// `spec.secrets`: per-store access rules for the secrets API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretsSpec {
    #[serde(default)]
    pub scopes: Vec<SecretScope>,
}

/// One secret store's access rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretScope {
    pub store_name: String,
    /// `allow` (default) or `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_access: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_secrets: Vec<String>,
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
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
