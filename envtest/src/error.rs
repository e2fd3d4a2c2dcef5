//! What can go wrong starting or using the control plane.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "KUBEBUILDER_ASSETS is not set. Cluster tests need etcd, kube-apiserver and kubectl: run \
         `KUBEBUILDER_ASSETS=\"$(scripts/envtest.sh)\" cargo test …` (scripts/test.sh does this); \
         scripts/envtest.sh builds them once and prints their directory"
    )]
    AssetsUnset,
    #[error(
        "{} is missing or not executable (KUBEBUILDER_ASSETS={}); run scripts/envtest.sh and set \
         KUBEBUILDER_ASSETS to the directory it prints",
        path.display(),
        dir.display()
    )]
    AssetMissing { path: PathBuf, dir: PathBuf },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("generating the service-account key: {0}")]
    Key(#[from] rcgen::Error),
    #[error("{name} exited ({status}) before it was ready; last lines of its log:\n{log}")]
    Exited {
        name: &'static str,
        status: ExitStatus,
        log: String,
    },
    #[error("{name} was not ready after {waited:?}; last lines of its log:\n{log}")]
    NotReady {
        name: &'static str,
        waited: Duration,
        log: String,
    },
    #[error("reading the envtest kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("kube client: {0}")]
    Kube(#[from] kube::Error),
    #[error("CRD {name} was not established after {waited:?}: {conditions}")]
    NotEstablished {
        name: String,
        waited: Duration,
        conditions: String,
    },
    #[error("kubectl {args}: {message}")]
    Kubectl { args: String, message: String },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
