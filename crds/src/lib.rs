//! The contract every Tandem binary shares: the `dapr.io` resource types (Component, Subscription,
//! Configuration) as they appear in Dapr manifests and as Kubernetes resources (`kube::Resource`,
//! so `kube::Api<Component>` works), their CustomResourceDefinitions (`crd`, written to
//! `crds/yaml/` by `crdgen`), the catalogue of component types Tandem supports, and the names the
//! injector writes and the sidecar reads (annotations, flags, env vars, ports).
//!
//! This crate holds data and pure functions only: no client, no runtime, no HTTP.

#[macro_use]
mod resource;

pub mod access_control;
pub mod annotations;
pub mod catalogue;
pub mod cluster_dns;
pub mod component;
pub mod configuration;
pub mod control_plane;
pub mod crd;
pub mod meta;
pub mod status;
pub mod subscription;

pub use component::{Component, ComponentSpec, MetadataItem, SecretKeyRef};
pub use configuration::{Configuration, ConfigurationSpec};
pub use meta::ObjectMeta;
pub use status::Status;
pub use subscription::Subscription;

/// The API group of every Dapr resource.
pub const GROUP: &str = "dapr.io";
