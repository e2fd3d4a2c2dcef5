//! Component manifests shared by several test binaries.

/// An in-memory state store `statestore` and an environment secret store `secretstore`.
pub const STATE_AND_SECRETS: &str = "\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec: {type: state.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: secretstore}
spec: {type: secretstores.local.env, version: v1}
";
