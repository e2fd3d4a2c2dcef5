//! A rendered multi-document manifest, parsed into objects that tests look up by kind and name.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the manifest is not YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("no {kind} named {name:?} in the manifest")]
    Missing { kind: String, name: String },
    #[error("{kind} {name:?} does not have the shape of its Kubernetes type: {source}")]
    Shape {
        kind: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The objects of a manifest, in order; empty documents are left out.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    pub objects: Vec<Value>,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, Error> {
        let mut objects = Vec::new();
        for document in serde_norway::Deserializer::from_str(text) {
            let value = Value::deserialize(document)?;
            if !value.is_null() {
                objects.push(value);
            }
        }
        Ok(Manifest { objects })
    }

    /// `(kind, name)` of every object, sorted.
    pub fn ids(&self) -> Vec<(String, String)> {
        let mut ids: Vec<_> = self.objects.iter().map(id).collect();
        ids.sort();
        ids
    }

    /// The objects of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    /// The object of `kind` named `name`, as its Kubernetes type.
    pub fn get<K: DeserializeOwned>(&self, kind: &str, name: &str) -> Result<K, Error> {
        let object = self
            .objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .ok_or_else(|| Error::Missing {
                kind: kind.to_owned(),
                name: name.to_owned(),
            })?;
        serde_json::from_value(object.clone()).map_err(|source| Error::Shape {
            kind: kind.to_owned(),
            name: name.to_owned(),
            source,
        })
    }
}

/// `(kind, metadata.name)` of an object.
pub fn id(object: &Value) -> (String, String) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (text(&object["kind"]), text(&object["metadata"]["name"]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails on what it unwraps")]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;

    const TEXT: &str = "---\n# Source: a\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\nspec:\n  ports: [{port: 443}]\n---\n# Source: empty\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n";

    #[test]
    fn parses_every_document_and_skips_empty_ones() {
        let manifest = Manifest::parse(TEXT).unwrap();
        assert_eq!(
            manifest.ids(),
            vec![
                ("Service".to_owned(), "b".to_owned()),
                ("ServiceAccount".to_owned(), "a".to_owned())
            ]
        );
        let service: Service = manifest.get("Service", "b").unwrap();
        assert_eq!(service.spec.unwrap().ports.unwrap()[0].port, 443);
        assert!(matches!(
            manifest.get::<Service>("Service", "a"),
            Err(Error::Missing { .. })
        ));
    }

    #[test]
    fn broken_yaml_is_an_error() {
        assert!(Manifest::parse("a: [").is_err());
    }
}
