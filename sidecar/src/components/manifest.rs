//! Reading manifests from resources paths: every `.yaml`/`.yml` file, every document in it. Dapr
//! Components are kept with the file they came from; other kinds are skipped.

use std::path::{Path, PathBuf};
use tandem_crds::Component;
use tandem_crds::meta::TypeMeta;

/// A Component and the file it was read from (for error messages).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub file: PathBuf,
    pub component: Component,
}

/// A file or document that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ReadError {
    pub file: String,
    pub message: String,
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let err = |message: String| ReadError {
        file: dir.display().to_string(),
        message,
    };
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let listing =
        std::fs::read_dir(dir).map_err(|e| err(format!("cannot read resources path: {e}")))?;
    let mut files: Vec<PathBuf> = listing
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

/// A declarative Subscription and the file it was read from.
#[derive(Debug, Clone)]
pub struct SubscriptionManifest {
    pub file: PathBuf,
    pub subscription: tandem_crds::Subscription,
}

/// Everything read from resources paths.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub components: Vec<Manifest>,
    pub subscriptions: Vec<SubscriptionManifest>,
}

/// Parses every document of one file: Components and Subscriptions are kept, other kinds
/// skipped.
pub fn parse_file(file: &Path, text: &str) -> Result<Resources, ReadError> {
    let err = |message: String| ReadError {
        file: file.display().to_string(),
        message,
    };
    let mut out = Resources::default();
    for (i, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize_from(document)
            .map_err(|e| err(format!("document {}: invalid YAML: {e}", i + 1)))?;
        if value.is_null() {
            continue; // an empty document (`---` at the end)
        }
        let header: TypeMeta = serde_json::from_value(value.clone()).unwrap_or_default();
        if header.is_dapr(tandem_crds::subscription::KIND) {
            let name = value
                .pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_owned();
            let subscription: tandem_crds::Subscription = serde_json::from_value(value)
                .map_err(|e| err(format!("subscription {name:?}: {e}")))?;
            out.subscriptions.push(SubscriptionManifest {
                file: file.to_path_buf(),
                subscription,
            });
            continue;
        }
        if !header.is_dapr(tandem_crds::component::KIND) {
            tracing::debug!(file = %file.display(), kind = %header.kind, "skipping a resource that is not a Component");
            continue;
        }
        let name = value
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_owned();
        let component: Component =
            serde_json::from_value(value).map_err(|e| err(format!("component {name:?}: {e}")))?;
        if component.name().is_empty() {
            return Err(err(format!(
                "document {}: a Component needs metadata.name",
                i + 1
            )));
        }
        out.components.push(Manifest {
            file: file.to_path_buf(),
            component,
        });
    }
    Ok(out)
}

/// Reads every manifest under the given paths (directories or single files).
pub fn read_all(paths: &[PathBuf]) -> Result<Resources, ReadError> {
    let mut out = Resources::default();
    for dir in paths {
        for file in yaml_files(dir)? {
            let text = std::fs::read_to_string(&file).map_err(|e| ReadError {
                file: file.display().to_string(),
                message: format!("cannot read: {e}"),
            })?;
            let found = parse_file(&file, &text)?;
            out.components.extend(found.components);
            out.subscriptions.extend(found.subscriptions);
        }
    }
    Ok(out)
}

/// `serde_json::Value` from any serde deserializer (here: one YAML document).
trait DeserializeFrom: Sized {
    fn deserialize_from<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

impl DeserializeFrom for serde_json::Value {
    fn deserialize_from<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::Deserialize::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_components_and_subscriptions_and_skips_other_kinds() {
        let text = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: a}\nspec: {type: state.in-memory, version: v1}\n---\napiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: s}\nspec: {topic: t, pubsubname: p, route: /r}\n---\napiVersion: apps/v1\nkind: Component\nmetadata: {name: not-dapr}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: b}\nspec: {type: secretstores.local.env, version: v1}\n---\n";
        let got = parse_file(Path::new("x.yaml"), text).expect("parses");
        let names: Vec<_> = got.components.iter().map(|m| m.component.name()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(got.subscriptions.len(), 1, "Subscriptions are kept too");
        assert_eq!(
            got.subscriptions[0].subscription.spec.route.as_deref(),
            Some("/r")
        );
    }

    #[test]
    fn errors_name_the_file_and_component() {
        let bad = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: broken}\nspec: {version: v1}\n";
        let err = parse_file(Path::new("dir/bad.yaml"), bad).expect_err("no spec.type");
        let msg = err.to_string();
        assert!(
            msg.contains("dir/bad.yaml") && msg.contains("broken") && msg.contains("type"),
            "{msg}"
        );
        let err = parse_file(Path::new("y.yaml"), "a: [unclosed").expect_err("invalid yaml");
        assert!(err.to_string().contains("y.yaml"));
    }
}
