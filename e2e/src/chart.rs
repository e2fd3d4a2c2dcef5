//! `helm template`, `helm lint --strict` and `kubernetes-validate` on the chart in `charts/tandem`.

use crate::tools::{self, Output, Tools};
use std::io::Write;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tool(#[from] tools::Error),
    #[error("writing the rendered manifest to a temp file: {0}")]
    TempFile(#[source] std::io::Error),
}

/// One way of rendering the chart: release namespace, target Kubernetes version, `--set` values.
#[derive(Clone, Debug)]
pub struct Render {
    namespace: String,
    kube_version: Option<String>,
    api_versions: Vec<String>,
    values: Vec<String>,
    include_crds: bool,
}

impl Render {
    /// The chart with its default values, released as `tandem` into `namespace`.
    pub fn new(namespace: &str) -> Render {
        Render {
            namespace: namespace.to_owned(),
            kube_version: None,
            api_versions: Vec::new(),
            values: Vec::new(),
            include_crds: false,
        }
    }

    /// Renders for this Kubernetes version (`.Capabilities.KubeVersion`).
    pub fn kube_version(mut self, version: &str) -> Render {
        self.kube_version = Some(version.to_owned());
        self
    }

    /// Adds an API version to `.Capabilities.APIVersions`.
    pub fn api_version(mut self, version: &str) -> Render {
        self.api_versions.push(version.to_owned());
        self
    }

    /// `--set key=value`.
    pub fn set(mut self, key: &str, value: &str) -> Render {
        self.values.push(format!("{key}={value}"));
        self
    }

    /// The HA values: `global.ha.enabled=true`.
    pub fn ha(self) -> Render {
        self.set("global.ha.enabled", "true")
    }

    /// Renders the CRDs in `crds/` too.
    pub fn include_crds(mut self) -> Render {
        self.include_crds = true;
        self
    }

    /// `helm template`: the manifest.
    pub fn template(&self, tools: &Tools) -> Result<String, Error> {
        let mut command = helm(tools);
        command
            .arg("template")
            .arg("tandem")
            .arg(crate::chart_dir());
        self.add_args(&mut command);
        if let Some(version) = &self.kube_version {
            command.arg("--kube-version").arg(version);
        }
        for version in &self.api_versions {
            command.arg("--api-versions").arg(version);
        }
        if self.include_crds {
            command.arg("--include-crds");
        }
        Ok(tools::run(&mut command)?.stdout)
    }

    /// `helm lint --strict` with these values.
    pub fn lint(&self, tools: &Tools) -> Result<Output, Error> {
        let mut command = helm(tools);
        command.arg("lint").arg("--strict").arg(crate::chart_dir());
        self.add_args(&mut command);
        Ok(tools::run(&mut command)?)
    }

    fn add_args(&self, command: &mut Command) {
        command.arg("--namespace").arg(&self.namespace);
        for value in &self.values {
            command.arg("--set").arg(value);
        }
    }
}

/// helm with its config, cache and data homes in a temp dir of their own, so that nothing the user
/// has configured (repositories, plugins) changes what is rendered.
fn helm(tools: &Tools) -> Command {
    let home = std::env::temp_dir().join("tandem-e2e-helm");
    let mut command = Command::new(&tools.helm);
    command
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"));
    command
}

/// `kubernetes-validate --strict -k <version>` on `manifest` (unknown fields are errors; custom
/// resources and CRDs without a bundled schema only warn).
pub fn validate(tools: &Tools, manifest: &str, kube_version: &str) -> Result<Output, Error> {
    let mut file = tempfile::Builder::new()
        .prefix("tandem-chart-")
        .suffix(".yaml")
        .tempfile()
        .map_err(Error::TempFile)?;
    file.write_all(manifest.as_bytes())
        .map_err(Error::TempFile)?;
    let mut command = Command::new(&tools.kubernetes_validate);
    command
        .arg("--strict")
        .arg("-k")
        .arg(kube_version)
        .arg(file.path());
    Ok(tools::run(&mut command)?)
}
