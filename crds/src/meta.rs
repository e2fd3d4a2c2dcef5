//! The part of Kubernetes object metadata that Dapr manifests use.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `metadata` of a Dapr manifest. Unknown fields (uid, resourceVersion, …) are ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The resource's name; for a Component, the name apps use in API paths.
    #[serde(default)]
    pub name: String,
    /// The namespace; empty in standalone mode unless the manifest sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

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
