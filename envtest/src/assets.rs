//! The control-plane binaries, found in the directory `KUBEBUILDER_ASSETS` names (the last line
//! `scripts/envtest.sh` prints).

use crate::Error;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable naming the directory with `etcd`, `kube-apiserver` and `kubectl`.
pub const ASSETS_ENV: &str = "KUBEBUILDER_ASSETS";

/// Paths of the binaries a control plane runs.
#[derive(Clone, Debug)]
pub struct Assets {
    pub dir: PathBuf,
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kubectl: PathBuf,
}

impl Assets {
    /// The binaries under `$KUBEBUILDER_ASSETS`.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_dir(std::env::var_os(ASSETS_ENV))
    }

    /// The binaries under `dir` (the value of `KUBEBUILDER_ASSETS`, if set). `etcd` and
    /// `kube-apiserver` must be there; `kubectl` and `kube-controller-manager` are checked when used.
    pub fn from_dir(dir: Option<OsString>) -> Result<Self, Error> {
        let dir = match dir {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => return Err(Error::AssetsUnset),
        };
        let assets = Assets {
            etcd: dir.join("etcd"),
            kube_apiserver: dir.join("kube-apiserver"),
            kube_controller_manager: dir.join("kube-controller-manager"),
            kubectl: dir.join("kubectl"),
            dir,
        };
        assets.require(&assets.etcd)?;
        assets.require(&assets.kube_apiserver)?;
        Ok(assets)
    }

    /// `Ok` when `path` is an executable file.
    pub fn require(&self, path: &Path) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(()),
            _ => Err(Error::AssetMissing {
                path: path.to_path_buf(),
                dir: self.dir.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_empty_assets_say_to_run_the_script() {
        for value in [None, Some(OsString::new())] {
            let err = Assets::from_dir(value).expect_err("no directory");
            let message = err.to_string();
            assert!(message.contains("KUBEBUILDER_ASSETS"), "{message}");
            assert!(message.contains("scripts/envtest.sh"), "{message}");
        }
    }

    #[test]
    fn a_directory_without_the_binaries_names_the_missing_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = Assets::from_dir(Some(dir.path().into())).expect_err("empty dir");
        let message = err.to_string();
        assert!(message.contains("/etcd is missing"), "{message}");
        assert!(message.contains("scripts/envtest.sh"), "{message}");
    }

    #[test]
    fn executables_in_the_directory_are_found() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["etcd", "kube-apiserver"] {
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let assets = Assets::from_dir(Some(dir.path().into())).expect("found");
        assert_eq!(assets.kube_apiserver, dir.path().join("kube-apiserver"));
        let err = assets.require(&assets.kubectl).expect_err("no kubectl");
        assert!(err.to_string().contains("/kubectl is missing"), "{err}");
    }
}
