//! What the operator keeps of a Deployment or StatefulSet: [`TrimmedWorkload`]. A workload
//! reconcile reads the workload's identity (namespace, name, uid), its `spec.selector.matchLabels`
//! and its pod template's `dapr.io/*` annotations; everything else (the pod spec, the status,
//! managedFields, the workload's own labels and annotations) is skipped while the watch's JSON is
//! decoded, so it is neither parsed into structs nor cached.

use super::trim_meta;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// The annotations of a pod template that the operator reads.
const DAPR_PREFIX: &str = "dapr.io/";

/// A workload of kind `K` (Deployment, StatefulSet) as the operator caches it.
#[derive(Deserialize)]
#[serde(from = "Decoded")]
pub struct TrimmedWorkload<K> {
    pub metadata: ObjectMeta,
    /// `spec.selector.matchLabels`.
    pub match_labels: Option<BTreeMap<String, String>>,
    /// The `dapr.io/*` annotations of `spec.template.metadata`.
    pub template_annotations: Option<BTreeMap<String, String>>,
    kind: PhantomData<fn() -> K>,
}

/// The parts of the JSON that are read; serde skips every other field.
#[derive(Deserialize)]
struct Decoded {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<DecodedSpec>,
}

#[derive(Deserialize)]
struct DecodedSpec {
    #[serde(default)]
    selector: Option<DecodedSelector>,
    #[serde(default)]
    template: Option<DecodedTemplate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DecodedSelector {
    #[serde(default)]
    match_labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct DecodedTemplate {
    #[serde(default)]
    metadata: Option<DecodedTemplateMeta>,
}

#[derive(Deserialize)]
struct DecodedTemplateMeta {
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

impl<K> From<Decoded> for TrimmedWorkload<K> {
    fn from(decoded: Decoded) -> Self {
        let Decoded { mut metadata, spec } = decoded;
        trim_meta(&mut metadata);
        // The workload's own labels and annotations are not read (the pod template's are).
        metadata.labels = None;
        metadata.annotations = None;
        let (selector, template) = spec.map_or((None, None), |s| (s.selector, s.template));
        let template_annotations = template
            .and_then(|t| t.metadata)
            .and_then(|m| m.annotations)
            .map(|all| {
                all.into_iter()
                    .filter(|(key, _)| key.starts_with(DAPR_PREFIX))
                    .collect()
            });
        TrimmedWorkload {
            metadata,
            match_labels: selector.and_then(|s| s.match_labels),
            template_annotations,
            kind: PhantomData,
        }
    }
}

impl<K> TrimmedWorkload<K> {
    /// A workload with these parts (tests and callers that build one by hand).
    pub fn new(
        metadata: ObjectMeta,
        match_labels: Option<BTreeMap<String, String>>,
        template_annotations: Option<BTreeMap<String, String>>,
    ) -> Self {
        TrimmedWorkload {
            metadata,
            match_labels,
            template_annotations,
            kind: PhantomData,
        }
    }
}

// By hand: a derive would require `K: Clone` / `K: Debug`, which the marker does not need.
impl<K> Clone for TrimmedWorkload<K> {
    fn clone(&self) -> Self {
        TrimmedWorkload {
            metadata: self.metadata.clone(),
            match_labels: self.match_labels.clone(),
            template_annotations: self.template_annotations.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Resource<DynamicType = ()>> fmt::Debug for TrimmedWorkload<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(&format!("Trimmed{}", K::kind(&())))
            .field("metadata", &self.metadata)
            .field("match_labels", &self.match_labels)
            .field("template_annotations", &self.template_annotations)
            .finish()
    }
}

/// The same kind, group, version and URL as `K`: an `Api<TrimmedWorkload<K>>` lists and watches
/// `K`'s objects.
impl<K: Resource<DynamicType = ()>> Resource for TrimmedWorkload<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};

    fn decode<K>(json: serde_json::Value) -> TrimmedWorkload<K> {
        serde_json::from_value(json).expect("decodes")
    }

    #[test]
    fn keeps_what_the_reconcile_reads_and_drops_the_rest() {
        let deployment = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "checkout", "namespace": "shop", "uid": "u-1", "resourceVersion": "7",
                "generation": 3,
                "labels": {"team": "a"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{…}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "checkout"}},
                "template": {
                    "metadata": {"labels": {"app": "checkout"}, "annotations": {
                        "dapr.io/enabled": "true", "dapr.io/app-id": "orders",
                        "prometheus.io/scrape": "true"}},
                    "spec": {"containers": [{"name": "app", "image": "app:1"}]},
                },
            },
            "status": {"replicas": 2},
        });
        let trimmed: TrimmedWorkload<Deployment> = decode(deployment);
        let meta = &trimmed.metadata;
        assert_eq!(meta.name.as_deref(), Some("checkout"));
        assert_eq!(meta.namespace.as_deref(), Some("shop"));
        assert_eq!(meta.uid.as_deref(), Some("u-1"));
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert_eq!(meta.generation, Some(3));
        assert_eq!(meta.managed_fields, None);
        assert_eq!(meta.labels, None);
        assert_eq!(meta.annotations, None);
        let labels = BTreeMap::from([("app".to_owned(), "checkout".to_owned())]);
        assert_eq!(trimmed.match_labels, Some(labels));
        let dapr = BTreeMap::from([
            ("dapr.io/app-id".to_owned(), "orders".to_owned()),
            ("dapr.io/enabled".to_owned(), "true".to_owned()),
        ]);
        assert_eq!(trimmed.template_annotations, Some(dapr));
    }

    #[test]
    fn a_workload_without_selector_or_template_metadata_decodes() {
        for json in [
            serde_json::json!({"metadata": {"name": "a"}}),
            serde_json::json!({"metadata": {"name": "a"}, "spec": {}}),
            serde_json::json!({"metadata": {"name": "a"}, "spec": {"selector": {}, "template": {}}}),
        ] {
            let trimmed: TrimmedWorkload<StatefulSet> = decode(json);
            assert_eq!(trimmed.match_labels, None);
            assert_eq!(trimmed.template_annotations, None);
        }
    }

    #[test]
    fn has_the_kind_and_url_of_the_workload() {
        let url = |ns| TrimmedWorkload::<Deployment>::url_path(&(), ns);
        assert_eq!(url(Some("shop")), Deployment::url_path(&(), Some("shop")));
        assert_eq!(
            TrimmedWorkload::<StatefulSet>::kind(&()),
            StatefulSet::kind(&())
        );
        assert_eq!(TrimmedWorkload::<StatefulSet>::api_version(&()), "apps/v1");
        let meta = ObjectMeta {
            name: Some("ledger".to_owned()),
            uid: Some("u-2".to_owned()),
            ..ObjectMeta::default()
        };
        let workload = TrimmedWorkload::<StatefulSet>::new(meta, None, None);
        let owner = workload.controller_owner_ref(&()).expect("owner");
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("StatefulSet", "ledger", Some(true))
        );
    }
}
