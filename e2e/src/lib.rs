//! Test support for Tandem's end-to-end tests (the scenarios are in `tests/`).
//!
//! The chart tests run the real tools: `helm` and `kubernetes-validate` from the directory
//! `$TANDEM_TOOLS` (installed once by `scripts/k8s-tools.sh`), and kubectl with a real
//! kube-apiserver from `$KUBEBUILDER_ASSETS` (`scripts/envtest.sh`, through `tandem-envtest`).
//! [`chart::Render`] runs `helm template`, [`manifest::Manifest`] parses what it printed, and
//! [`rbac`] judges the rendered roles.

pub mod binaries;
pub mod chart;
pub mod cluster_dns;
pub mod local_process;
pub mod manifest;
pub mod node;
pub mod one_machine;
pub mod rbac;
pub mod sidecar_http;
pub mod test_actor;
pub mod test_app;
pub mod tools;

use std::path::PathBuf;

/// The repository's root (this crate lives in `<root>/e2e`).
pub fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// The chart's directory, `<root>/charts/tandem`.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts").join("tandem")
}
