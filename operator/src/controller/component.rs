//! Component rules: the type and version are in the catalogue, the metadata has every required
//! field and no unknown one, and every `secretKeyRef` names a Secret and key that exist in the
//! Component's own namespace (only when Kubernetes Secrets resolve them: `auth.secretStore` unset
//! or `kubernetes`). Secrets are watched, so creating a missing one flips the Component to Ready.

use super::{Context, Labelled, Scope, Validate, namespace_of};
use crate::cache::{Shared, list_from_cache};
use crate::conditions::{Reason, Verdict};
use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tandem_crds::catalogue::{CATALOGUE, CatalogueError, ComponentKind};
use tandem_crds::{Component, Status};

/// The secret store name that means "Kubernetes Secrets of the component's namespace".
pub use tandem_crds::annotations::defaults::KUBERNETES_SECRET_STORE;

/// Secrets of one namespace by name, with their key names. Values are never kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretIndex {
    keys: BTreeMap<String, BTreeSet<String>>,
}

impl SecretIndex {
    /// Records that Secret `name` exists with `keys`.
    pub fn insert(&mut self, name: &str, keys: impl IntoIterator<Item = String>) {
        self.keys
            .insert(name.to_owned(), keys.into_iter().collect());
    }

    /// Records a Secret read from the API: its `data` and `stringData` key names.
    pub fn insert_secret(&mut self, secret: &Secret) {
        let data = secret.data.iter().flat_map(|d| d.keys().cloned());
        let string_data = secret.string_data.iter().flat_map(|d| d.keys().cloned());
        let name = secret.metadata.name.as_deref().unwrap_or_default();
        self.insert(name, data.chain(string_data));
    }

    fn keys(&self, name: &str) -> Option<&BTreeSet<String>> {
        self.keys.get(name)
    }
}

/// The secret store named by `auth.secretStore` when it is not Kubernetes Secrets.
pub fn external_secret_store(component: &Component) -> Option<&str> {
    let store = component.auth.as_ref()?.secret_store.as_str();
    (!store.is_empty() && store != KUBERNETES_SECRET_STORE).then_some(store)
}

/// The Secrets this component's `secretKeyRef`s read, when Kubernetes Secrets resolve them.
pub fn referenced_secrets(component: &Component) -> BTreeSet<String> {
    if external_secret_store(component).is_some() {
        return BTreeSet::new();
    }
    let refs = component.spec.metadata.iter();
    refs.filter_map(|item| item.secret_key_ref.as_ref())
        .map(|secret| secret.name.clone())
        .collect()
}

/// The verdict on one Component, given the Secrets its namespace has.
pub fn component_verdict(component: &Component, secrets: &SecretIndex) -> Verdict {
    let type_ = component.spec.type_.as_str();
    let Some(kind) = ComponentKind::find(type_) else {
        let supported: Vec<_> = CATALOGUE.iter().map(|k| k.type_).collect();
        return Verdict::invalid(
            Reason::UnknownType,
            format!(
                "spec.type {type_:?} is not a component type Tandem supports; use one of: {}",
                supported.join(", ")
            ),
        );
    };
    let fields = component
        .spec
        .metadata
        .iter()
        .map(|item| item.name.as_str());
    if let Err(error) = kind.check(&component.spec.version, fields) {
        return catalogue_verdict(kind, &error);
    }
    let version = match component.spec.version.as_str() {
        "" => kind.versions.first().copied().unwrap_or_default(),
        version => version,
    };
    let checked = format!("{} {version}: metadata complete", kind.type_);
    if let Some(store) = external_secret_store(component) {
        return Verdict::valid(format!(
            "{checked}; secretKeyRefs are resolved by secret store {store:?} when a sidecar loads \
             the component, so they are not checked here"
        ));
    }
    let (found, problems) = check_secret_refs(component, secrets);
    if let Some((reason, _)) = problems.first() {
        let messages: Vec<_> = problems.iter().map(|(_, m)| m.as_str()).collect();
        return Verdict::invalid(*reason, messages.join("; "));
    }
    match found {
        0 => Verdict::valid(checked),
        n => Verdict::valid(format!("{checked}; {n} secretKeyRef(s) found in Secrets")),
    }
}

fn catalogue_verdict(kind: &ComponentKind, error: &CatalogueError) -> Verdict {
    let type_ = kind.type_;
    match error {
        CatalogueError::UnknownVersion { .. } => Verdict::invalid(
            Reason::UnsupportedVersion,
            format!("{error} for {type_}; set spec.version to a supported one"),
        ),
        CatalogueError::MissingField(_) => Verdict::invalid(
            Reason::MissingMetadata,
            format!("{error}; add it to spec.metadata of this {type_} component"),
        ),
        CatalogueError::UnknownField(_) => Verdict::invalid(
            Reason::UnknownMetadata,
            format!("{error}: {type_} does not read it; check its spelling or remove it"),
        ),
    }
}

/// How many `secretKeyRef`s resolve, and what is wrong with the others (Secret missing first).
fn check_secret_refs(
    component: &Component,
    secrets: &SecretIndex,
) -> (usize, Vec<(Reason, String)>) {
    let namespace = component.metadata.namespace.as_deref().unwrap_or_default();
    let mut found = 0;
    let mut problems = Vec::new();
    for item in &component.spec.metadata {
        let Some(secret) = &item.secret_key_ref else {
            continue;
        };
        let key = match secret.key.as_str() {
            "" => secret.name.as_str(),
            key => key,
        };
        let (field, name) = (&item.name, &secret.name);
        match secrets.keys(name) {
            None => problems.push((
                Reason::SecretNotFound,
                format!(
                    "metadata field {field:?} reads Secret {name:?}, which does not exist in \
                     namespace {namespace:?}; create it with the key {key:?}"
                ),
            )),
            Some(keys) if !keys.contains(key) => problems.push((
                Reason::SecretKeyNotFound,
                format!(
                    "metadata field {field:?} reads key {key:?} of Secret {name:?}, which has no \
                     such key (it has: {}); add the key or fix secretKeyRef.key",
                    keys.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            )),
            Some(_) => found += 1,
        }
    }
    problems.sort_by_key(|(reason, _)| *reason != Reason::SecretNotFound);
    (found, problems)
}

/// The Components in `secret`'s namespace whose `secretKeyRef`s read it: the ones to reconcile
/// when it changes (only its name and namespace matter).
pub fn components_reading(
    components: &[Arc<Component>],
    secret: &ObjectMeta,
) -> Vec<ObjectRef<Component>> {
    let namespace = secret.namespace.as_deref();
    let name = secret.name.as_deref().unwrap_or_default();
    components
        .iter()
        .filter(|c| c.metadata.namespace.as_deref() == namespace)
        .filter(|c| referenced_secrets(c).contains(name))
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// Components (from the shared cache), and the Secrets they read (names only: a watch of their
/// metadata, never their data).
pub(crate) fn controller(
    client: &kube::Client,
    scope: &Scope,
    components: &Shared<Component>,
) -> Controller<Component> {
    let store = components.store();
    // `PartialObjectMeta` makes the watch ask for metadata only.
    let secrets = watcher(
        scope.api::<PartialObjectMeta<Secret>>(client),
        list_from_cache(),
    );
    Controller::for_shared_stream(components.applied(), store.clone()).watches_stream(
        secrets.touched_objects(),
        move |secret: PartialObjectMeta<Secret>| {
            components_reading(&store.state(), &secret.metadata)
        },
    )
}

impl Labelled for Component {
    const LABEL: &'static str = "component";
}

impl Validate for Component {
    fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// Reads the referenced Secrets from the API (fresh, and only in the Component's namespace),
    /// keeping their key names.
    async fn verdict(&self, ctx: &Context) -> Result<Verdict> {
        let namespace = namespace_of(self)?;
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        let mut index = SecretIndex::default();
        for name in referenced_secrets(self) {
            let action = format!("get Secret {namespace}/{name}");
            if let Some(secret) = api.get_opt(&name).await.map_err(Error::api(action))? {
                index.insert_secret(&secret);
            }
        }
        Ok(component_verdict(self, &index))
    }
}

#[cfg(test)]
mod tests;
