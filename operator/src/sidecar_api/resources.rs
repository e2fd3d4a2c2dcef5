//! What one sidecar is sent: the pure part. From everything the operator has cached for a
//! namespace, [`resources_for`] picks what the app may see (Components and Subscriptions whose
//! `scopes` name it or are empty, the Configuration it names), and [`resolve_secrets`] fills in
//! `secretKeyRef` values from that namespace's Kubernetes Secrets. Nothing here reads another
//! namespace: the caller hands in only the sidecar's own.

use super::secrets::secret_values;
use crate::controller::{external_secret_store, referenced_secrets};
use k8s_openapi::api::core::v1::Secret;
use std::collections::{BTreeMap, BTreeSet};
pub use tandem_crds::control_plane::Resources;
use tandem_crds::{Component, Configuration, Subscription};

pub use crate::controller::KUBERNETES_SECRET_STORE;

/// Who is asking and what for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub namespace: &'a str,
    pub app_id: &'a str,
    /// `--config` of the sidecar, when it has one.
    pub configuration: Option<&'a str>,
}

/// The resources `wanted` may see, from objects of any namespaces (others are skipped), sorted by
/// name so that equal inputs give equal messages. Secrets are not resolved yet.
pub fn resources_for<'a>(
    wanted: &Wanted<'_>,
    components: impl IntoIterator<Item = &'a Component>,
    configurations: impl IntoIterator<Item = &'a Configuration>,
    subscriptions: impl IntoIterator<Item = &'a Subscription>,
) -> Resources {
    let here = |meta: &tandem_crds::ObjectMeta| meta.namespace.as_deref() == Some(wanted.namespace);
    let visible =
        |scopes: &[String]| scopes.is_empty() || scopes.iter().any(|s| s == wanted.app_id);
    let mut components: Vec<Component> = components
        .into_iter()
        .filter(|c| here(&c.metadata) && visible(&c.scopes))
        .map(|c| as_sent(c.clone()))
        .collect();
    components.sort_by(|a, b| a.name().cmp(b.name()));
    let configuration = wanted.configuration.and_then(|name| {
        configurations
            .into_iter()
            .find(|c| here(&c.metadata) && c.metadata.name.as_deref() == Some(name))
            .map(|c| {
                let mut c = c.clone();
                c.metadata.managed_fields = None;
                c
            })
    });
    let mut subscriptions: Vec<Subscription> = subscriptions
        .into_iter()
        .filter(|s| here(&s.metadata) && visible(&s.scopes))
        .map(|s| {
            let mut s = s.clone();
            s.metadata.managed_fields = None;
            s.status = None;
            s
        })
        .collect();
    subscriptions.sort_by(|a, b| a.name().cmp(b.name()));
    Resources {
        components,
        configuration,
        subscriptions,
    }
}

/// A Component as a sidecar gets it: without the operator's bookkeeping.
fn as_sent(mut component: Component) -> Component {
    component.metadata.managed_fields = None;
    component.status = None;
    component
}

/// Whether `component`'s `secretKeyRef`s are read from Kubernetes Secrets (no secret store named,
/// or the built-in `kubernetes` one), as the Dapr operator decides.
pub fn reads_kubernetes_secrets(component: &Component) -> bool {
    external_secret_store(component).is_none()
}

/// The names of the Kubernetes Secrets `components` need resolved.
pub fn secrets_needed(components: &[Component]) -> BTreeSet<String> {
    components
        .iter()
        .flat_map(referenced_secrets)
        .filter(|name| !name.is_empty())
        .collect()
}

/// Replaces each `secretKeyRef` to a Kubernetes Secret with the key's value (the key defaults to
/// the Secret's name). A reference whose Secret or key is missing stays as it is, so the sidecar
/// reports it when it loads the component. `secrets` holds Secrets of the components' own
/// namespace only.
pub fn resolve_secrets(components: &mut [Component], secrets: &BTreeMap<String, Secret>) {
    for component in components
        .iter_mut()
        .filter(|c| reads_kubernetes_secrets(c))
    {
        for item in &mut component.spec.metadata {
            let Some(reference) = &item.secret_key_ref else {
                continue;
            };
            let key = if reference.key.is_empty() {
                &reference.name
            } else {
                &reference.key
            };
            let value = secrets
                .get(&reference.name)
                .and_then(|secret| secret_values(secret).remove(key));
            if let Some(value) = value {
                item.value = Some(serde_json::Value::String(value));
                item.secret_key_ref = None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
