//! `Component` (`dapr.io/v1alpha1`): one configured building block (a state store, a pub/sub, a
//! secret store, …). `auth` and `scopes` sit at the top level of the manifest, not under `spec`,
//! exactly as in Dapr, so the root object is written out here rather than derived.

use crate::crd::{self, Version};
use crate::meta::ObjectMeta;
use crate::status::Status;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::crd::CustomResourceExt;
use kube::core::dynamic::ApiResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const KIND: &str = "Component";
const VERSION: &str = "v1alpha1";

/// A Dapr Component: a building block implementation (`spec.type`) and its settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::crd::without_defaults)]
pub struct Component {
    /// `dapr.io/v1alpha1`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// `Component`.
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default)]
    #[schemars(schema_with = "crd::object_meta")]
    pub metadata: ObjectMeta,
    pub spec: ComponentSpec,
    /// Which secret store resolves `secretKeyRef` values; Kubernetes Secrets when unset in
    /// Kubernetes mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// App ids allowed to load this component; empty (or an empty key) means every app.
    #[serde(
        default,
        deserialize_with = "crate::meta::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scopes: Vec<String>,
    /// Written by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

dapr_resource!(Component {
    kind: KIND,
    version: VERSION,
    plural: "components",
    spec: ComponentSpec,
});

impl CustomResourceExt for Component {
    fn crd() -> CustomResourceDefinition {
        let version = Version {
            name: VERSION,
            schema: crd::structural_schema::<Component>(),
            storage: true,
        };
        crd::definition(KIND, "components", vec![version], None)
    }
    fn crd_name() -> &'static str {
        "components.dapr.io"
    }
    fn api_resource() -> ApiResource {
        ApiResource::erase::<Self>(&())
    }
    fn shortnames() -> &'static [&'static str] {
        &[]
    }
}

fn default_api_version() -> String {
    format!("{}/{VERSION}", crate::GROUP)
}
fn default_kind() -> String {
    KIND.to_owned()
}

/// `spec` of a Component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// The component type, `<block>.<implementation>` (for example `state.redis`).
    #[serde(rename = "type")]
    pub type_: String,
    /// The component version, for example `v1`.
    #[serde(default)]
    pub version: String,
    /// Keep running (and report the component as failed) when it cannot initialise.
    #[serde(default)]
    pub ignore_errors: bool,
    /// How long initialisation may take, as a Go duration (`5s`, `1m30s`). Default 5 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_timeout: Option<String>,
    /// The component's settings (an empty `metadata:` key is no settings, as in daprd).
    #[serde(default, deserialize_with = "crate::meta::null_as_default")]
    pub metadata: Vec<MetadataItem>,
}

/// `auth` of a Component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// The name of the secret store component that resolves `secretKeyRef`s.
    #[serde(default)]
    pub secret_store: String,
}

/// One `spec.metadata[]` entry: a literal `value`, a `secretKeyRef` or an `envRef`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataItem {
    /// The setting's name, for example `redisHost`.
    pub name: String,
    /// Any JSON/YAML value; Dapr reads it as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crd::any_value")]
    pub value: Option<serde_json::Value>,
    /// Read the value from a secret of the component's secret store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// The name of an environment variable of the sidecar that holds the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_ref: Option<String>,
}

impl MetadataItem {
    /// The literal value as Dapr reads it: strings as they are, other scalars in their JSON form.
    pub fn value_string(&self) -> Option<String> {
        match self.value.as_ref()? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// A reference to a key of a secret in a secret store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The secret's name.
    pub name: String,
    /// The key inside the secret; defaults to the secret's name.
    #[serde(default)]
    pub key: String,
}

impl Component {
    /// Whether the app `app_id` may load this component (`scopes` empty or naming it).
    pub fn in_scope(&self, app_id: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| s == app_id)
    }

    /// A test fixture builder: `Component::test("statestore", "state.redis").with_metadata(..)`.
    pub fn test(name: &str, type_: &str) -> Self {
        Component {
            api_version: default_api_version(),
            kind: default_kind(),
            metadata: crate::meta::named(name),
            spec: ComponentSpec {
                type_: type_.to_owned(),
                version: "v1".to_owned(),
                ..ComponentSpec::default()
            },
            auth: None,
            scopes: Vec::new(),
            status: None,
        }
    }

    /// Adds a literal metadata value (fixture builder).
    pub fn with_metadata(mut self, name: &str, value: &str) -> Self {
        self.spec.metadata.push(MetadataItem {
            name: name.to_owned(),
            value: Some(serde_json::Value::String(value.to_owned())),
            ..MetadataItem::default()
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIS: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
  namespace: production
spec:
  type: state.redis
  version: v1
  initTimeout: 1m
  ignoreErrors: true
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisDB
    value: 3
  - name: redisPassword
    secretKeyRef:
      name: redis-secret
      key: password
auth:
  secretStore: envvar-secret-store
scopes:
- order
- checkout
"#;

    #[test]
    fn parses_a_dapr_component_manifest() {
        let c: Component = serde_norway::from_str(REDIS).expect("valid manifest");
        assert_eq!(c.name(), "statestore");
        assert_eq!(c.metadata.namespace.as_deref(), Some("production"));
        assert_eq!(c.spec.type_, "state.redis");
        assert_eq!(c.spec.init_timeout.as_deref(), Some("1m"));
        assert!(c.spec.ignore_errors);
        assert_eq!(c.spec.metadata[1].value_string().as_deref(), Some("3"));
        let secret = c.spec.metadata[2]
            .secret_key_ref
            .as_ref()
            .expect("secret ref");
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str()),
            ("redis-secret", "password")
        );
        assert_eq!(
            c.auth.as_ref().expect("auth").secret_store,
            "envvar-secret-store"
        );
        assert!(c.in_scope("order") && !c.in_scope("catalog"));
    }

    #[test]
    fn empty_metadata_and_scopes_keys_read_as_empty_lists() {
        let manifest = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: secrets\nspec:\n  type: secretstores.local.env\n  version: v1\n  metadata:\nscopes:\n";
        let c: Component = serde_norway::from_str(manifest).expect("daprd accepts this manifest");
        assert!(c.spec.metadata.is_empty());
        assert!(c.scopes.is_empty());
    }

    #[test]
    fn empty_scopes_admit_every_app() {
        assert!(Component::test("s", "state.in-memory").in_scope("anything"));
    }
}
