//! The built-in `kubernetes` secret store of Kubernetes mode, served to sidecars: Secrets of the
//! pod's own namespace only (the token says which), filtered by the secret scopes of the
//! Configuration the pod names in `dapr.io/config` — read from the pod, not from the request, so a
//! sidecar cannot pick laxer rules. The sidecar applies the same scopes again.

use super::SidecarApi;
use super::auth::Claim;
use super::resources::KUBERNETES_SECRET_STORE;
use super::routes::{ApiError, authenticate, respond};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::ListParams;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tandem_crds::Configuration;
use tandem_crds::annotations::keys;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretQuery {
    app_id: String,
}

/// One Secret's keys and values, as text.
pub fn secret_values(secret: &Secret) -> BTreeMap<String, String> {
    let data = secret.data.iter().flatten();
    let mut values: BTreeMap<String, String> = data
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        values.entry(k.clone()).or_insert_with(|| v.clone());
    }
    values
}

/// Whether the pod's Configuration lets it read Secret `name` through the `kubernetes` store
/// (no Configuration, or no rule for the store: yes).
pub fn allowed_by_scopes(configuration: Option<&Configuration>, name: &str) -> bool {
    let rule = configuration
        .and_then(|c| c.spec.secrets.as_ref())
        .and_then(|s| {
            s.scopes
                .iter()
                .find(|s| s.store_name == KUBERNETES_SECRET_STORE)
        });
    rule.is_none_or(|rule| rule.allows(name))
}

/// The checks every secret request makes; returns the pod's Configuration.
async fn admitted(
    api: &SidecarApi,
    namespace: &str,
    pod: &str,
    query: Result<Query<SecretQuery>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<Option<Configuration>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::Malformed(format!(
            "{}; expected ?appId=<app id>",
            rejection.body_text()
        ))
    })?;
    let claim = Claim {
        namespace,
        pod_name: pod,
        app_id: &query.app_id,
    };
    let pod: Pod = authenticate(api, &claim, headers).await?;
    if !api.scope.contains(namespace) {
        return Err(ApiError::OutOfScope(namespace.to_owned()));
    }
    let config = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(keys::CONFIG))
        .filter(|name| !name.is_empty());
    Ok(config.and_then(|name| api.index.configuration(namespace, name)))
}

fn secrets_api(api: &SidecarApi, namespace: &str) -> Api<Secret> {
    Api::namespaced(api.client.clone(), namespace)
}

pub(crate) async fn one_secret(
    State(api): State<Arc<SidecarApi>>,
    Path((namespace, pod, name)): Path<(String, String, String)>,
    query: Result<Query<SecretQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let answer = async {
        let config = admitted(&api, &namespace, &pod, query, &headers).await?;
        if !allowed_by_scopes(config.as_ref(), &name) {
            return Err(ApiError::Denied(super::Denied::SecretOutOfScope(
                name.clone(),
            )));
        }
        let secret = secrets_api(&api, &namespace)
            .get_opt(&name)
            .await
            .map_err(|e| ApiError::Unavailable(format!("reading Secret {namespace}/{name}: {e}")))?
            .ok_or_else(|| {
                ApiError::NotFound(format!("secret {name} not found in namespace {namespace}"))
            })?;
        Ok(axum::Json(secret_values(&secret)).into_response())
    };
    respond(&api, answer.await)
}

pub(crate) async fn all_secrets(
    State(api): State<Arc<SidecarApi>>,
    Path((namespace, pod)): Path<(String, String)>,
    query: Result<Query<SecretQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let answer = async {
        let config = admitted(&api, &namespace, &pod, query, &headers).await?;
        let listed = secrets_api(&api, &namespace)
            .list(&ListParams::default())
            .await
            .map_err(|e| ApiError::Unavailable(format!("listing Secrets in {namespace}: {e}")))?;
        let all: BTreeMap<String, BTreeMap<String, String>> = listed
            .items
            .iter()
            .filter_map(|s| Some((s.metadata.name.clone()?, s)))
            .filter(|(name, _)| allowed_by_scopes(config.as_ref(), name))
            .map(|(name, secret)| (name, secret_values(secret)))
            .collect();
        Ok(axum::Json(all).into_response())
    };
    respond(&api, answer.await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use tandem_crds::ConfigurationSpec;
    use tandem_crds::configuration::{SecretScope, SecretsSpec};

    #[test]
    fn values_come_from_data_and_string_data() {
        let secret = Secret {
            data: Some([("a".to_owned(), ByteString(b"1".to_vec()))].into()),
            string_data: Some([("b".to_owned(), "2".to_owned())].into()),
            ..Secret::default()
        };
        let values = secret_values(&secret);
        assert_eq!(values.get("a").map(String::as_str), Some("1"));
        assert_eq!(values.get("b").map(String::as_str), Some("2"));
    }

    #[test]
    fn the_kubernetes_store_rule_of_the_pods_configuration_applies() {
        let config = |scope: SecretScope| {
            Configuration::new(
                "c",
                ConfigurationSpec {
                    secrets: Some(SecretsSpec {
                        scopes: vec![scope],
                    }),
                    ..ConfigurationSpec::default()
                },
            )
        };
        assert!(allowed_by_scopes(None, "anything"));
        let only_redis = config(SecretScope {
            store_name: KUBERNETES_SECRET_STORE.into(),
            default_access: Some("deny".into()),
            allowed_secrets: vec!["redis".into()],
            ..SecretScope::default()
        });
        assert!(allowed_by_scopes(Some(&only_redis), "redis"));
        assert!(!allowed_by_scopes(Some(&only_redis), "db"));
        let other_store = config(SecretScope {
            store_name: "vault".into(),
            default_access: Some("deny".into()),
            ..SecretScope::default()
        });
        assert!(allowed_by_scopes(Some(&other_store), "db"));
    }
}
