//! Pure caBundle decisions: which webhooks of a Mutating/ValidatingWebhookConfiguration, or
//! whether a CRD's conversion webhook, carry a caBundle other than our CA, and the JSON Patch
//! that fixes exactly those. The writers (injector, operator) do the I/O and write nothing when
//! these say everything is current.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Whether a base64 `caBundle` holds exactly `ca_pem`.
pub fn is_current(ca_bundle: Option<&str>, ca_pem: &str) -> bool {
    ca_bundle
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .is_some_and(|bytes| bytes == ca_pem.as_bytes())
}

/// Indices of `webhooks[*]` in a webhook configuration (as JSON) whose caBundle is not `ca_pem`.
pub fn stale_webhooks(config: &Value, ca_pem: &str) -> Vec<usize> {
    let Some(webhooks) = config.get("webhooks").and_then(Value::as_array) else {
        return Vec::new();
    };
    webhooks
        .iter()
        .enumerate()
        .filter(|(_, webhook)| {
            let bundle = webhook
                .pointer("/clientConfig/caBundle")
                .and_then(Value::as_str);
            !is_current(bundle, ca_pem)
        })
        .map(|(i, _)| i)
        .collect()
}

/// A JSON Patch (RFC 6902, as a JSON array) setting the caBundle of the webhooks at `indices`.
/// `add` replaces an existing member and creates a missing one. Each index is guarded by a
/// `test` of the webhook's name, so a configuration re-applied in between cannot be mis-patched.
pub fn webhooks_patch(config: &Value, indices: &[usize], ca_pem: &str) -> Value {
    let bundle = STANDARD.encode(ca_pem);
    let mut ops = Vec::new();
    for &i in indices {
        if let Some(name) = config.pointer(&format!("/webhooks/{i}/name")) {
            ops.push(json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": name}));
        }
        ops.push(json!({
            "op": "add",
            "path": format!("/webhooks/{i}/clientConfig/caBundle"),
            "value": bundle,
        }));
    }
    Value::Array(ops)
}

/// Whether a CRD (as JSON) has a webhook conversion whose caBundle is not `ca_pem`.
pub fn crd_conversion_is_stale(crd: &Value, ca_pem: &str) -> bool {
    let Some(client_config) = crd.pointer("/spec/conversion/webhook/clientConfig") else {
        return false;
    };
    let bundle = client_config.get("caBundle").and_then(Value::as_str);
    !is_current(bundle, ca_pem)
}

/// The JSON Patch setting a CRD's conversion webhook caBundle.
pub fn crd_conversion_patch(ca_pem: &str) -> Value {
    json!([{
        "op": "add",
        "path": "/spec/conversion/webhook/clientConfig/caBundle",
        "value": STANDARD.encode(ca_pem),
    }])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn config(bundles: &[Option<&str>]) -> Value {
        let webhooks: Vec<Value> = bundles
            .iter()
            .enumerate()
            .map(|(i, bundle)| {
                let mut client_config = json!({"url": "https://x/mutate"});
                if let Some(b) = bundle {
                    client_config["caBundle"] = json!(b);
                }
                json!({"name": format!("w{i}.tandem.io"), "clientConfig": client_config})
            })
            .collect();
        json!({"webhooks": webhooks})
    }

    #[test]
    fn stale_webhooks_table() {
        let ours = STANDARD.encode(CA);
        let other = STANDARD.encode("other");
        let cases: [(&[Option<&str>], Vec<usize>); 6] = [
            (&[], vec![]),
            (&[Some(&ours)], vec![]),
            (&[None], vec![0]),
            (&[Some("")], vec![0]),
            (&[Some(&ours), Some(&other), None], vec![1, 2]),
            (&[Some("%%% not base64")], vec![0]),
        ];
        for (bundles, expected) in cases {
            assert_eq!(
                stale_webhooks(&config(bundles), CA),
                expected,
                "{bundles:?}"
            );
        }
        assert!(stale_webhooks(&json!({}), CA).is_empty());
    }

    #[test]
    fn patch_fixes_exactly_the_stale_ones() {
        let mut doc = config(&[None, Some("eA=="), Some(&STANDARD.encode(CA))]);
        let stale = stale_webhooks(&doc, CA);
        let patch: json_patch_free::Ops =
            serde_json::from_value(webhooks_patch(&doc, &stale, CA)).unwrap();
        json_patch_free::apply(&mut doc, &patch);
        assert!(stale_webhooks(&doc, CA).is_empty());
    }

    #[test]
    fn crd_conversion() {
        let mut crd = json!({"spec": {"conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"name": "tandem-webhook"}}}}}});
        assert!(crd_conversion_is_stale(&crd, CA));
        crd["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"] =
            json!(STANDARD.encode(CA));
        assert!(!crd_conversion_is_stale(&crd, CA));
        assert!(!crd_conversion_is_stale(&json!({"spec": {}}), CA));
        let op = &crd_conversion_patch(CA)[0];
        assert_eq!(op["path"], "/spec/conversion/webhook/clientConfig/caBundle");
    }

    /// Just enough of JSON Patch (`test`, `add` on an object member) to check our own patches
    /// without another dependency.
    mod json_patch_free {
        use serde_json::Value;

        pub type Ops = Vec<Value>;

        pub fn apply(doc: &mut Value, ops: &Ops) {
            for op in ops {
                let path = op["path"].as_str().unwrap();
                match op["op"].as_str().unwrap() {
                    "test" => assert_eq!(doc.pointer(path).unwrap(), &op["value"]),
                    "add" => {
                        let (parent, key) = path.rsplit_once('/').unwrap();
                        doc.pointer_mut(parent).unwrap()[key] = op["value"].clone();
                    }
                    other => panic!("unexpected op {other}"),
                }
            }
        }
    }
}
