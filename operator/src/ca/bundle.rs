//! The trust anchors, public: a ConfigMap in the operator's namespace (Dapr's `dapr-trust-bundle`
//! shape, key `ca.crt`) that the injector reads to hand each sidecar its `DAPR_TRUST_ANCHORS`.
//! The injector never needs the CA Secret (which holds the signing key). Every replica publishes
//! the same anchors; a write happens only when what is there differs.

use super::TRUST_ANCHORS_KEY;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use std::collections::BTreeMap;

/// Lost create/update races retried before giving up (the next check tries again).
const ATTEMPTS: usize = 3;

/// What a ConfigMap should hold for `anchors`, or `None` when `existing` already holds it.
pub fn desired(existing: Option<&ConfigMap>, anchors: &str) -> Option<BTreeMap<String, String>> {
    let current = existing
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get(TRUST_ANCHORS_KEY));
    if current.map(String::as_str) == Some(anchors) {
        return None;
    }
    Some(BTreeMap::from([(
        TRUST_ANCHORS_KEY.to_owned(),
        anchors.to_owned(),
    )]))
}

/// Makes ConfigMap `namespace/name` hold `anchors` under `ca.crt`.
pub async fn publish(
    client: kube::Client,
    namespace: &str,
    name: &str,
    anchors: &str,
) -> Result<(), kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let existing = api.get_opt(name).await?;
        let Some(data) = desired(existing.as_ref(), anchors) else {
            return Ok(());
        };
        let written = match existing {
            Some(mut map) => {
                map.data = Some(data);
                api.replace(name, &PostParams::default(), &map).await
            }
            None => {
                let map = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        namespace: Some(namespace.to_owned()),
                        ..ObjectMeta::default()
                    },
                    data: Some(data),
                    ..ConfigMap::default()
                };
                api.create(&PostParams::default(), &map).await
            }
        };
        match written {
            Ok(_) => {
                tracing::info!(%namespace, %name, "published the trust anchors");
                return Ok(());
            }
            // Another replica wrote first: read again.
            Err(kube::Error::Api(status)) if status.code == 409 => last = Some(status),
            Err(error) => return Err(error),
        }
    }
    Err(last.map_or_else(
        || kube::Error::Service("the trust anchors ConfigMap kept changing".into()),
        kube::Error::Api,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(anchors: Option<&str>) -> ConfigMap {
        ConfigMap {
            data: anchors.map(|a| BTreeMap::from([(TRUST_ANCHORS_KEY.to_owned(), a.to_owned())])),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn written_only_when_it_differs() {
        let want = Some(BTreeMap::from([(
            TRUST_ANCHORS_KEY.to_owned(),
            "A".to_owned(),
        )]));
        assert_eq!(desired(None, "A"), want);
        assert_eq!(desired(Some(&map(None)), "A"), want);
        assert_eq!(desired(Some(&map(Some("B"))), "A"), want);
        assert_eq!(desired(Some(&map(Some("A"))), "A"), None);
    }
}
