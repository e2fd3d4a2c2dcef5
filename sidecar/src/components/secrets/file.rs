//! `secretstores.local.file`: secrets from a JSON file, read once at start-up. Nested objects are
//! flattened with `nestedSeparator` (`a:b`); with `multiValued`, each top-level key is a secret
//! whose keys are its (flattened) children.

use super::{Secret, SecretError, SecretStore};
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct FileStore {
    secrets: BTreeMap<String, Secret>,
}

fn flatten(prefix: &str, value: &Value, sep: &str, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}{sep}{k}")
                };
                flatten(&key, v, sep, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

impl FileStore {
    /// Reads and flattens the file. Errors name the file.
    pub fn load(path: &Path, separator: &str, multi_valued: bool) -> Result<Self, String> {
        let text = std::fs::read(path)
            .map_err(|e| format!("cannot read secretsFile {}: {e}", path.display()))?;
        let json: Value = serde_json::from_slice(&text)
            .map_err(|e| format!("secretsFile {} is not valid JSON: {e}", path.display()))?;
        let Value::Object(top) = json else {
            return Err(format!(
                "secretsFile {} must hold a JSON object",
                path.display()
            ));
        };
        let mut secrets = BTreeMap::new();
        for (name, value) in &top {
            if multi_valued {
                let mut keys = BTreeMap::new();
                match value {
                    Value::Object(_) => flatten("", value, separator, &mut keys),
                    other => flatten(name, other, separator, &mut keys),
                }
                secrets.insert(name.clone(), keys);
            } else {
                let mut flat = BTreeMap::new();
                flatten(name, value, separator, &mut flat);
                for (k, v) in flat {
                    secrets.insert(k.clone(), BTreeMap::from([(k, v)]));
                }
            }
        }
        Ok(FileStore { secrets })
    }
}

impl FileStore {
    pub fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        Ok(self.secrets.get(name).cloned())
    }

    pub fn bulk(&self) -> Result<BTreeMap<String, Secret>, SecretError> {
        Ok(self.secrets.clone())
    }
}

#[async_trait::async_trait]
impl SecretStore for FileStore {
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        FileStore::get(self, name)
    }

    async fn bulk(&self) -> Result<BTreeMap<String, Secret>, SecretError> {
        FileStore::bulk(self)
    }
}

/// `secretstores.local.file`'s settings.
#[derive(Debug)]
pub struct FileSettings {
    path: std::path::PathBuf,
    separator: String,
    multi_valued: bool,
}

#[async_trait::async_trait]
impl Settings for FileSettings {
    async fn init(&self) -> Result<Instance, String> {
        let store = FileStore::load(&self.path, &self.separator, self.multi_valued)?;
        Ok(Instance::Secrets(Arc::new(store)))
    }
}

/// A relative `secretsFile` that does not exist from the working directory is read from the
/// manifest's folder (`base`).
pub fn settings(md: &Metadata, base: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    let file = std::path::PathBuf::from(md.require("secretsFile")?);
    Ok(Arc::new(FileSettings {
        path: if file.is_relative() && !file.exists() {
            base.join(file)
        } else {
            file
        },
        separator: md.get("nestedSeparator").unwrap_or(":").to_owned(),
        multi_valued: md.bool("multiValued", false)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(json: &str, multi: bool) -> FileStore {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, json).expect("write");
        FileStore::load(&path, ":", multi).expect("load")
    }

    #[test]
    fn flattens_nested_secrets() {
        let s = store(r#"{"db":{"user":"u","pass":"p"},"token":"t","n":5}"#, false);
        assert_eq!(
            s.get("db:user").expect("get"),
            Some(BTreeMap::from([("db:user".into(), "u".into())]))
        );
        assert_eq!(
            s.get("token")
                .expect("get")
                .and_then(|m| m.get("token").cloned()),
            Some("t".into())
        );
        assert_eq!(
            s.get("n").expect("get").and_then(|m| m.get("n").cloned()),
            Some("5".into())
        );
        assert!(s.get("db").expect("get").is_none());
    }

    #[test]
    fn multi_valued_secrets_keep_their_keys() {
        let s = store(r#"{"db":{"user":"u","pass":"p"}}"#, true);
        let db = s.get("db").expect("get").expect("db");
        assert_eq!(db.get("user").map(String::as_str), Some("u"));
        assert_eq!(db.len(), 2);
    }

    #[test]
    fn bad_files_are_named() {
        let err =
            FileStore::load(Path::new("/nonexistent/s.json"), ":", false).expect_err("missing");
        assert!(err.contains("/nonexistent/s.json"));
    }
}
