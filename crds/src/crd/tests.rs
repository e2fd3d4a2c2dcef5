use super::*;
use serde_json::Value;

/// Every `(crd name, version, schema as JSON)` of every CRD.
fn schemas() -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for crd in all() {
        for version in &crd.spec.versions {
            let schema = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("every version has a schema");
            let json = serde_json::to_value(schema).expect("schema serialises");
            out.push((
                crd.metadata.name.clone().unwrap_or_default(),
                version.name.clone(),
                json,
            ));
        }
    }
    out
}

/// The structural-schema rules kube-apiserver enforces, as far as a schema alone shows them:
/// every node has a `type` unless it preserves unknown fields or is int-or-string, and no node uses
/// `$ref`, `definitions` or an untyped `anyOf`/`oneOf`/`allOf`. Also flags a `default`, which
/// Tandem's schemas do not declare (`without_defaults`).
fn structural_violations(path: &str, schema: &Value, out: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        out.push(format!("{path}: not an object schema"));
        return;
    };
    let forbidden = [
        "$ref",
        "definitions",
        "$defs",
        "$schema",
        "anyOf",
        "oneOf",
        "allOf",
        "default",
    ];
    for key in forbidden {
        if object.contains_key(key) {
            out.push(format!("{path}: has {key}"));
        }
    }
    let free_form = object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        || object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if !object.contains_key("type") && !free_form {
        out.push(format!("{path}: no type"));
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            structural_violations(&format!("{path}.{name}"), property, out);
        }
    }
    if let Some(items) = object.get("items") {
        structural_violations(&format!("{path}[]"), items, out);
    }
    if let Some(additional) = object.get("additionalProperties")
        && additional.is_object()
    {
        structural_violations(&format!("{path}{{}}"), additional, out);
    }
}

#[test]
fn every_schema_is_structural() {
    for (crd, version, schema) in schemas() {
        let mut violations = Vec::new();
        structural_violations("", &schema, &mut violations);
        assert!(violations.is_empty(), "{crd} {version}: {violations:?}");
        if let Some(metadata) = schema.pointer("/properties/metadata") {
            assert_eq!(
                metadata,
                &serde_json::json!({"type": "object"}),
                "{crd} {version}: metadata may only be `type: object`"
            );
        }
    }
}

#[test]
fn the_violation_finder_finds_violations() {
    let mut found = Vec::new();
    let bad = serde_json::json!({
        "type": "object",
        "properties": {
            "a": {"$ref": "#/definitions/A", "type": "object", "default": {}},
            "b": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "c": {"type": "array", "items": {"description": "no type"}},
            "d": {"x-kubernetes-preserve-unknown-fields": true},
        }
    });
    structural_violations("", &bad, &mut found);
    assert_eq!(
        found,
        vec![
            ".a: has $ref",
            ".a: has default",
            ".b: has anyOf",
            ".b: no type",
            ".c[]: no type"
        ]
    );
}

#[test]
fn each_kind_is_namespaced_in_dapr_io_with_a_status_subresource_per_version() {
    let names: Vec<_> = all()
        .iter()
        .map(|crd| {
            (
                crd.metadata.name.clone().unwrap_or_default(),
                file_name(crd),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("components.dapr.io", "components.dapr.io.yaml"),
            ("configurations.dapr.io", "configurations.dapr.io.yaml"),
            ("subscriptions.dapr.io", "subscriptions.dapr.io.yaml"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    for crd in all() {
        assert_eq!(crd.spec.group, "dapr.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        let stored: Vec<_> = crd.spec.versions.iter().filter(|v| v.storage).collect();
        assert_eq!(
            stored.len(),
            1,
            "{:?}: one storage version",
            crd.metadata.name
        );
        for version in &crd.spec.versions {
            assert!(version.served);
            let status = version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref());
            assert!(status.is_some(), "{:?} {}", crd.metadata.name, version.name);
        }
    }
}

#[test]
fn component_keeps_auth_and_scopes_at_the_top_level_and_documents_fields() {
    let component = Component::crd();
    let schema = serde_json::to_value(&component.spec.versions[0].schema).expect("json");
    let root = schema
        .pointer("/openAPIV3Schema/properties")
        .expect("root properties");
    assert_eq!(
        root.pointer("/auth/properties/secretStore/type"),
        Some(&Value::from("string"))
    );
    assert_eq!(
        root.pointer("/scopes/items/type"),
        Some(&Value::from("string"))
    );
    assert!(root.pointer("/spec/properties/auth").is_none());
    let item = root
        .pointer("/spec/properties/metadata/items/properties")
        .expect("items");
    assert_eq!(
        item.pointer("/value/x-kubernetes-preserve-unknown-fields"),
        Some(&Value::Bool(true)),
        "a metadata value may be any JSON"
    );
    assert_eq!(
        root.pointer("/spec/properties/type/description"),
        Some(&Value::from(
            "The component type, `<block>.<implementation>` (for example `state.redis`)."
        )),
        "doc comments become descriptions"
    );
    let conditions = root
        .pointer("/status/properties/conditions")
        .expect("conditions");
    assert_eq!(
        conditions.pointer("/x-kubernetes-list-type"),
        Some(&Value::from("map"))
    );
}

#[test]
fn subscription_serves_both_versions_and_stores_v2alpha1_without_a_webhook_yet() {
    let crd = Subscription::crd();
    let versions: Vec<_> = crd
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.storage))
        .collect();
    assert_eq!(versions, [("v1alpha1", false), ("v2alpha1", true)]);
    let conversion = crd.spec.conversion.as_ref().expect("conversion");
    assert_eq!(conversion.strategy, "None");
    let spec_of = |i: usize| {
        let schema = serde_json::to_value(&crd.spec.versions[i].schema).expect("json");
        schema
            .pointer("/openAPIV3Schema/properties/spec/properties")
            .cloned()
            .expect("spec properties")
    };
    let (v1, v2) = (spec_of(0), spec_of(1));
    assert!(v1.get("route").is_some() && v1.get("routes").is_none());
    assert!(
        v2.get("route").is_some(),
        "v1alpha1 objects keep their route"
    );
    assert_eq!(
        v2.pointer("/routes/properties/rules/items/required"),
        Some(&serde_json::json!(["match", "path"]))
    );
}

#[test]
fn configuration_schema_keeps_free_form_sections_and_both_metric_keys() {
    let crd = Configuration::crd();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("json");
    let spec = schema
        .pointer("/openAPIV3Schema/properties/spec/properties")
        .expect("spec properties");
    for key in ["metric", "metrics", "nameResolution"] {
        assert_eq!(
            spec.pointer(&format!("/{key}/x-kubernetes-preserve-unknown-fields")),
            Some(&Value::Bool(true)),
            "{key}"
        );
    }
    // The security sections are typed: the apiserver refuses a malformed policy at apply time.
    for (pointer, want) in [
        (
            "/accessControl/properties/policies/items/properties/operations/items/required",
            serde_json::json!(["action", "name"]),
        ),
        (
            "/api/properties/denied/items/properties/version/type",
            serde_json::json!("string"),
        ),
        (
            "/mtls/properties/workloadCertTTL/type",
            serde_json::json!("string"),
        ),
    ] {
        assert_eq!(spec.pointer(pointer), Some(&want), "{pointer}");
    }
    assert_eq!(
        spec.pointer("/secrets/properties/scopes/items/properties/storeName/type"),
        Some(&Value::from("string"))
    );
}

#[test]
fn yaml_round_trips_to_the_same_definition() {
    for crd in all() {
        let yaml = to_yaml(&crd).expect("yaml");
        assert!(yaml.starts_with("# Generated by `cargo run -p tandem-crds --bin crdgen`"));
        let back: CustomResourceDefinition = serde_norway::from_str(&yaml).expect("parses");
        assert_eq!(back, crd);
    }
}

/// The `kube::Resource` facts `Api<K>` builds URLs from, checked against the CRD that serves them.
fn check_resource<K>(storage_version: &str)
where
    K: kube::Resource<DynamicType = ()> + CustomResourceExt,
{
    let crd = K::crd();
    assert_eq!(
        K::crd_name(),
        crd.metadata.name.as_deref().unwrap_or_default()
    );
    assert_eq!(K::group(&()), crd.spec.group);
    assert_eq!(K::kind(&()), crd.spec.names.kind);
    assert_eq!(K::plural(&()), crd.spec.names.plural);
    assert_eq!(K::version(&()), storage_version);
    assert_eq!(K::api_version(&()), format!("dapr.io/{storage_version}"));
    let stored = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .expect("stored");
    assert_eq!(stored.name, storage_version);
}

#[test]
fn resource_impls_agree_with_the_crds() {
    check_resource::<Component>("v1alpha1");
    check_resource::<Configuration>("v1alpha1");
    check_resource::<Subscription>("v2alpha1");
}
