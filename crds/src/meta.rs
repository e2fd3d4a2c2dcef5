//! Object metadata and the `apiVersion`/`kind` header of Dapr manifests.

/// `metadata` of every resource: Kubernetes' own type, so the same value works in a manifest file and
/// through `kube::Api`. Unknown fields are ignored when reading.
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// The `apiVersion`/`kind` header every manifest starts with; used to sort a multi-document file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeMeta {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
}

impl TypeMeta {
    /// True when this is a `dapr.io/<version>` resource of the given kind.
    pub fn is_dapr(&self, kind: &str) -> bool {
        self.kind == kind
            && self
                .api_version
                .split_once('/')
                .is_some_and(|(group, _)| group == crate::GROUP)
    }
}

/// `metadata.name`, or `""` when the manifest has none.
pub(crate) fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// A list (or other value) written as an empty YAML key (`metadata:` with nothing under it) reads
/// as its default, as daprd reads it; use with `#[serde(default, deserialize_with = ...)]`.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Metadata with just a name (fixture builders).
pub(crate) fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_dapr_needs_the_group_and_the_kind() {
        let header = |api_version: &str, kind: &str| TypeMeta {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        };
        let cases = [
            (header("dapr.io/v1alpha1", "Component"), true),
            (header("dapr.io/v2alpha1", "Component"), true),
            (header("apps/v1", "Component"), false),
            (header("dapr.io", "Component"), false),
            (header("dapr.io/v1alpha1", "Subscription"), false),
        ];
        for (meta, want) in cases {
            assert_eq!(meta.is_dapr("Component"), want, "{meta:?}");
        }
    }

    #[test]
    fn metadata_ignores_fields_it_does_not_know_and_nulls_and_may_be_partial() {
        let meta: ObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "statestore",
            "namespace": "prod",
            "somethingNew": {"a": 1},
            "creationTimestamp": null,
        }))
        .expect("partial metadata parses");
        assert_eq!(name_of(&meta), "statestore");
        assert_eq!(meta.namespace.as_deref(), Some("prod"));
        assert_eq!(name_of(&ObjectMeta::default()), "");
    }
}
