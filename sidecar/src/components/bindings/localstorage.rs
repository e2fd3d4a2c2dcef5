//! `bindings.localstorage`: an output binding over files under `rootPath`, with Dapr's
//! operations: `create` (request metadata `fileName`, default a random UUID; answers
//! `{"fileName": …}`), `get`, `delete`, and `list` (the absolute paths of the files under the
//! root, or under the folder `fileName` names).
//!
//! As in Dapr, `create` writes the data after undoing the runtime's JSON encoding of a string
//! and then, when what is left is valid base64, decoding that: so `"aGk="` writes `hi`.
//!
//! A `fileName` may name sub-folders but never leaves the root: absolute names, `..`, and
//! symbolic links that resolve outside the root (or nowhere) are refused as bad requests.
//! Dapr clamps such names into the root instead; refusing says plainly what happened. File
//! work runs on the blocking pool.

use super::{BindingError, InvokeRequest, InvokeResponse, OutputBinding};
use crate::components::bindings::Binding;
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use async_trait::async_trait;
use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

const OPERATIONS: &[&str] = &["create", "get", "list", "delete"];
/// Roots Dapr refuses: kernel interfaces, boot files, and the service account secrets.
const DISALLOWED_ROOTS: &[&str] = &["/proc", "/sys", "/boot", "/var/run/secrets"];
/// Go's `base64.StdEncoding`, which ignores stray bits after the last character.
const GO_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Validated settings of a `bindings.localstorage` component.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalStorageConfig {
    /// As given; made absolute (against the working directory, as Dapr does) and resolved when
    /// the component starts.
    pub root: PathBuf,
}

fn disallowed(root: &Path) -> bool {
    DISALLOWED_ROOTS.iter().any(|d| root.starts_with(d))
}

impl LocalStorageConfig {
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        let root = md.require("rootPath")?;
        if disallowed(Path::new(root)) {
            return Err(MetadataError {
                field: "rootPath".to_owned(),
                value: root.to_owned(),
                reason: "points to a disallowed location".to_owned(),
            });
        }
        Ok(LocalStorageConfig {
            root: PathBuf::from(root),
        })
    }
}

/// The binding: the canonical root folder.
#[derive(Debug)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// Creates the root if missing and resolves it (symbolic links included).
    pub async fn open(config: &LocalStorageConfig) -> Result<Self, String> {
        let given = config.root.clone();
        let root = tokio::task::spawn_blocking(move || -> io::Result<PathBuf> {
            let root = std::path::absolute(&given)?;
            std::fs::create_dir_all(&root)?;
            root.canonicalize()
        })
        .await
        .map_err(|e| format!("rootPath: {e}"))?
        .map_err(|e| format!("rootPath {}: {e}", config.root.display()))?;
        if disallowed(&root) {
            return Err(format!(
                "rootPath {} points to a disallowed location",
                root.display()
            ));
        }
        Ok(LocalStorage { root })
    }
}

/// `root/name`, refused unless it stays inside `root`: no absolute names, no `..`, and every
/// symbolic link on the way must resolve inside `root`. Parts that do not exist yet are fine
/// (`create` makes them).
fn resolve(root: &Path, name: &str) -> Result<PathBuf, BindingError> {
    let escapes = || BindingError::BadRequest(format!("fileName {name:?} is outside rootPath"));
    let mut path = root.to_path_buf();
    // Past the first part that does not exist, there are no links left to check.
    let mut exists = true;
    for part in Path::new(name).components() {
        match part {
            Component::Normal(part) => path.push(part),
            Component::CurDir => continue,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(escapes());
            }
        }
        if !exists {
            continue;
        }
        match path.symlink_metadata() {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = path.canonicalize().map_err(|_| escapes())?;
                if !target.starts_with(root) {
                    return Err(escapes());
                }
            }
            Ok(_) => {}
            Err(_) => exists = false,
        }
    }
    Ok(path)
}

/// Dapr's decoding of `create` data: a JSON string loses its quotes, then valid base64 is
/// decoded.
fn file_contents(data: &[u8]) -> Vec<u8> {
    let text = serde_json::from_slice::<String>(data)
        .map(String::into_bytes)
        .unwrap_or_else(|_| data.to_vec());
    GO_BASE64.decode(&text).unwrap_or(text)
}

/// Every file (not folder) under `dir`, recursively, without following linked folders.
fn walk(dir: &Path, files: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), files)?;
        } else {
            files.push(entry.path().to_string_lossy().into_owned());
        }
    }
    Ok(())
}

fn backend(what: &str, name: &str, e: &io::Error) -> BindingError {
    BindingError::backend(format!("{what} {name:?}: {e}"))
}

/// One operation, on the blocking pool's thread.
fn run(root: &Path, op: &str, name: &str, data: &[u8]) -> Result<InvokeResponse, BindingError> {
    let require_name = || {
        if name.is_empty() {
            Err(BindingError::BadRequest(format!(
                "localstorage {op}: request metadata fileName is required"
            )))
        } else {
            Ok(())
        }
    };
    match op {
        "create" => {
            let path = resolve(root, name)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| backend("creating the folder of", name, &e))?;
            }
            std::fs::write(&path, file_contents(data)).map_err(|e| backend("writing", name, &e))?;
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let body = serde_json::json!({ "fileName": relative }).to_string();
            Ok(InvokeResponse {
                data: Some(Bytes::from(body)),
                metadata: BTreeMap::from([("fileName".to_owned(), relative)]),
            })
        }
        "get" => {
            require_name()?;
            let bytes = std::fs::read(resolve(root, name)?).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => BindingError::backend(format!("file not found: {name}")),
                _ => backend("reading", name, &e),
            })?;
            Ok(InvokeResponse {
                data: (!bytes.is_empty()).then(|| Bytes::from(bytes)),
                metadata: BTreeMap::new(),
            })
        }
        "delete" => {
            require_name()?;
            let path = resolve(root, name)?;
            let is_dir = path.symlink_metadata().is_ok_and(|m| m.is_dir());
            let removed = if is_dir {
                std::fs::remove_dir(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| backend("deleting", name, &e))?;
            Ok(InvokeResponse::default())
        }
        _ => {
            let dir = resolve(root, name)?;
            if !dir.is_dir() {
                return Err(BindingError::backend(format!(
                    "unable to list files as {name:?} is not a folder"
                )));
            }
            let mut files = Vec::new();
            walk(&dir, &mut files).map_err(|e| backend("listing", name, &e))?;
            files.sort();
            let body = serde_json::to_vec(&files)
                .map_err(|e| BindingError::backend(format!("encoding the list: {e}")))?;
            Ok(InvokeResponse {
                data: Some(Bytes::from(body)),
                metadata: BTreeMap::new(),
            })
        }
    }
}

#[async_trait]
impl OutputBinding for LocalStorage {
    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse, BindingError> {
        let InvokeRequest {
            operation,
            data,
            metadata,
        } = request;
        if !OPERATIONS.contains(&operation.as_str()) {
            return Err(BindingError::unsupported(&operation, OPERATIONS));
        }
        let name = match metadata.get("fileName").filter(|n| !n.is_empty()) {
            Some(name) => name.clone(),
            None if operation == "create" => uuid::Uuid::new_v4().to_string(),
            None => String::new(),
        };
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || run(&root, &operation, &name, &data))
            .await
            .map_err(|e| BindingError::backend(format!("localstorage: {e}")))?
    }
}

#[cfg(test)]
mod tests;

#[async_trait]
impl Settings for LocalStorageConfig {
    async fn init(&self) -> Result<Instance, String> {
        let storage = LocalStorage::open(self).await?;
        Ok(Instance::Binding(Binding::output(Arc::new(storage))))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(LocalStorageConfig::from_metadata(md)?))
}
