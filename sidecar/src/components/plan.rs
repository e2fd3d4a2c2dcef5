//! From manifests to a plan: scope filtering, the catalogue check, `secretKeyRef`/`envRef`
//! resolution, metadata templates and validation. All of it runs before any port is bound; an
//! error names the file, the component and the field. With `ignoreErrors: true` the component is
//! recorded as failed instead.

use super::factory::{self, Instance, Settings};
use super::manifest::{self, Manifest};
use super::metadata::Metadata;
use super::registry::ComponentInfo;
use super::secrets::SecretStore;
use super::state::KeyPrefix;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tandem_crds::annotations::defaults;
use tandem_crds::catalogue::ComponentKind;

/// What loading needs to know about this sidecar.
#[derive(Debug, Clone)]
pub struct PlanContext {
    pub app_id: String,
    pub namespace: Option<String>,
    pub pod_name: Option<String>,
    pub resources_paths: Vec<PathBuf>,
    pub data_dir: PathBuf,
    /// Kubernetes mode: the operator resolved `secretKeyRef`s to Kubernetes Secrets, so one left
    /// without a store is a missing Secret.
    pub secrets_from_operator: bool,
}

/// A component that could not be loaded and was ignored (`ignoreErrors: true`).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedComponent {
    pub info: ComponentInfo,
    pub error: String,
}

/// One component ready to initialise.
#[derive(Debug, Clone)]
pub struct Planned {
    pub info: ComponentInfo,
    pub config: Arc<dyn Settings>,
    pub init_timeout: Duration,
    pub ignore_errors: bool,
    pub key_prefix: KeyPrefix,
    pub actor_state_store: bool,
    /// `route` and `direction`, for bindings only.
    pub binding: Option<super::bindings::BindingSettings>,
}

/// Everything to load.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub components: Vec<Planned>,
    pub failed: Vec<FailedComponent>,
    /// Declarative Subscriptions for this app (scopes applied, routes checked).
    pub subscriptions: Vec<tandem_crds::Subscription>,
}

/// Why start-up must stop.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Read(#[from] manifest::ReadError),
    #[error("{file}: component {name:?} ({type_}): {message}")]
    Component {
        file: String,
        name: String,
        type_: String,
        message: String,
    },
}

fn embedded_defaults(ctx: &PlanContext) -> Vec<Manifest> {
    let path = ctx.data_dir.join("state.sqlite");
    let state = tandem_crds::Component::test("statestore", "state.sqlite")
        .with_metadata("connectionString", &path.to_string_lossy())
        .with_metadata("actorStateStore", "true");
    let pubsub = tandem_crds::Component::test("pubsub", "pubsub.in-memory");
    [state, pubsub]
        .into_iter()
        .map(|component| Manifest {
            file: PathBuf::from("<embedded defaults>"),
            component,
        })
        .collect()
}

/// Expands Dapr's metadata templates: `{uuid}`, `{podName}`, `{namespace}` (`ns.appid`), `{appID}`.
fn expand_templates(value: &str, ctx: &PlanContext) -> String {
    if !value.contains('{') {
        return value.to_owned();
    }
    let namespace = match &ctx.namespace {
        Some(ns) => format!("{ns}.{}", ctx.app_id),
        None => ctx.app_id.clone(),
    };
    let uuid = uuid::Uuid::new_v4().to_string();
    value
        .replace("{uuid}", &uuid)
        .replace("{podName}", ctx.pod_name.as_deref().unwrap_or(&ctx.app_id))
        .replace("{namespace}", &namespace)
        .replace("{appID}", &ctx.app_id)
}

struct Resolver<'a> {
    ctx: &'a PlanContext,
    secret_stores: &'a HashMap<String, Arc<dyn SecretStore>>,
}

impl Resolver<'_> {
    /// The final metadata of a component: literal values (templated), env refs and secrets.
    fn metadata(&self, m: &Manifest) -> Result<Metadata, String> {
        let mut fields = BTreeMap::new();
        for item in &m.component.spec.metadata {
            let value = if let Some(reference) = &item.secret_key_ref {
                let store_name = m
                    .component
                    .auth
                    .as_ref()
                    .map(|a| a.secret_store.as_str())
                    .unwrap_or("");
                if store_name.is_empty() && self.ctx.secrets_from_operator {
                    return Err(format!(
                        "metadata field {:?}: Kubernetes Secret {:?} (key {:?}) was not found in namespace {:?}; create it, or name another store in auth.secretStore",
                        item.name,
                        reference.name,
                        if reference.key.is_empty() {
                            &reference.name
                        } else {
                            &reference.key
                        },
                        self.ctx.namespace.as_deref().unwrap_or_default(),
                    ));
                }
                if store_name.is_empty() {
                    return Err(format!(
                        "metadata field {:?}: secretKeyRef needs auth.secretStore naming a secret store",
                        item.name
                    ));
                }
                let store = self.secret_stores.get(store_name).ok_or_else(|| {
                    format!("metadata field {:?}: secret store {store_name:?} (auth.secretStore) is not loaded", item.name)
                })?;
                let key = if reference.key.is_empty() {
                    &reference.name
                } else {
                    &reference.key
                };
                // Local stores answer at once; one that would wait cannot serve a component load.
                let secret = futures_util::FutureExt::now_or_never(store.get(&reference.name))
                    .ok_or_else(|| {
                        format!("metadata field {:?}: secret store {store_name:?} cannot be read while components load", item.name)
                    })?
                    .map_err(|e| format!("metadata field {:?}: {e}", item.name))?
                    .ok_or_else(|| {
                        format!(
                            "metadata field {:?}: secret {:?} not found in {store_name:?}",
                            item.name, reference.name
                        )
                    })?;
                secret.get(key).cloned().ok_or_else(|| {
                    format!(
                        "metadata field {:?}: secret {:?} has no key {key:?}",
                        item.name, reference.name
                    )
                })?
            } else if let Some(var) = &item.env_ref {
                std::env::var(var).map_err(|_| {
                    format!("metadata field {:?}: envRef {var:?} is not set", item.name)
                })?
            } else {
                expand_templates(&item.value_string().unwrap_or_default(), self.ctx)
            };
            fields.insert(item.name.clone(), value);
        }
        Ok(Metadata::new(fields))
    }

    fn plan_one(&self, m: &Manifest) -> Result<Planned, String> {
        let spec = &m.component.spec;
        let kind = ComponentKind::find(&spec.type_).ok_or_else(|| {
            format!(
                "spec.type {:?} is not a supported component type",
                spec.type_
            )
        })?;
        let names: Vec<&str> = spec.metadata.iter().map(|i| i.name.as_str()).collect();
        kind.check(&spec.version, names.iter().copied())
            .map_err(|e| e.to_string())?;
        let md = self.metadata(m)?;
        let base = m.file.parent().unwrap_or(Path::new("."));
        let config = factory::settings(kind.type_, &md, base).map_err(|e| e.to_string())?;
        let timeout_text = spec
            .init_timeout
            .as_deref()
            .unwrap_or(defaults::COMPONENT_INIT_TIMEOUT);
        let init_timeout = super::metadata::parse_duration(timeout_text)
            .map_err(|e| format!("spec.initTimeout {timeout_text:?}: {e}"))?;
        let key_prefix = KeyPrefix::parse(md.get("keyPrefix"))
            .map_err(|e| format!("metadata field \"keyPrefix\": {e}"))?;
        Ok(Planned {
            info: info_of(m, kind.type_),
            config,
            init_timeout,
            ignore_errors: spec.ignore_errors,
            key_prefix,
            actor_state_store: md
                .bool("actorStateStore", false)
                .map_err(|e| e.to_string())?,
            binding: if kind.block() == "bindings" {
                Some(super::bindings::BindingSettings::new(
                    m.component.name(),
                    md.get("route"),
                    md.get("direction"),
                )?)
            } else {
                None
            },
        })
    }
}

fn info_of(m: &Manifest, type_: &str) -> ComponentInfo {
    let version = if m.component.spec.version.is_empty() {
        "v1"
    } else {
        &m.component.spec.version
    };
    ComponentInfo {
        name: m.component.name().to_owned(),
        type_: type_.to_owned(),
        version: version.to_owned(),
        file: m.file.clone(),
    }
}

/// Builds the plan. Secret stores are planned (and, being local, built) first so that other
/// components can resolve their `secretKeyRef`s through them.
/// Secret stores built while planning, by name.
pub type BuiltSecretStores = HashMap<String, Arc<dyn SecretStore>>;

pub fn plan(ctx: &PlanContext) -> Result<(Plan, BuiltSecretStores), LoadError> {
    let resources = if ctx.resources_paths.is_empty() {
        manifest::Resources {
            components: embedded_defaults(ctx),
            subscriptions: Vec::new(),
        }
    } else {
        manifest::read_all(&ctx.resources_paths)?
    };
    plan_resources(ctx, resources)
}

/// Builds the plan from resources read elsewhere (files, or the operator in Kubernetes mode).
pub fn plan_resources(
    ctx: &PlanContext,
    resources: manifest::Resources,
) -> Result<(Plan, BuiltSecretStores), LoadError> {
    let subscriptions = plan_subscriptions(ctx, resources.subscriptions)?;
    let manifests = resources.components;
    let mut seen = HashMap::new();
    let mut in_scope = Vec::new();
    for m in manifests {
        if !m.component.in_scope(&ctx.app_id) {
            tracing::debug!(component = %m.component.name(), "not loaded: scoped to other apps");
            continue;
        }
        if let Some(first) = seen.insert(m.component.name().to_owned(), m.file.clone()) {
            return Err(component_error(
                &m,
                format!(
                    "a component of this name is already loaded from {}",
                    first.display()
                ),
            ));
        }
        in_scope.push(m);
    }
    let (secret_manifests, others): (Vec<_>, Vec<_>) = in_scope
        .into_iter()
        .partition(|m| m.component.spec.type_.starts_with("secretstores."));

    let mut plan = Plan {
        subscriptions,
        ..Plan::default()
    };
    let mut secret_stores: HashMap<String, Arc<dyn SecretStore>> = HashMap::new();
    let no_stores = HashMap::new();
    for m in &secret_manifests {
        let resolver = Resolver {
            ctx,
            secret_stores: &no_stores,
        };
        let planned = resolver.plan_one(m);
        // Local secret stores need no server: build them now, for the other components.
        let built = match planned {
            Ok(p) => futures_util::FutureExt::now_or_never(p.config.init())
                .unwrap_or_else(|| Err("secret store did not initialise synchronously".into()))
                .map(|instance| (p, instance)),
            Err(e) => Err(e),
        };
        match built {
            Ok((p, Instance::Secrets(store))) => {
                secret_stores.insert(p.info.name.clone(), store);
                plan.components.push(p);
            }
            Ok((
                p,
                Instance::State(_) | Instance::PubSub(_) | Instance::Binding(_) | Instance::Lock(_),
            )) => {
                return Err(component_error(
                    m,
                    format!("{} is not a secret store", p.info.type_),
                ));
            }
            Err(message) => record_failure(&mut plan, m, message)?,
        }
    }
    let resolver = Resolver {
        ctx,
        secret_stores: &secret_stores,
    };
    for m in &others {
        match resolver.plan_one(m) {
            Ok(p) => plan.components.push(p),
            Err(message) => record_failure(&mut plan, m, message)?,
        }
    }
    Ok((plan, secret_stores))
}

/// Keeps the Subscriptions in scope for this app; one whose routing rules do not compile stops
/// start-up with a message naming the file and the subscription.
fn plan_subscriptions(
    ctx: &PlanContext,
    found: Vec<manifest::SubscriptionManifest>,
) -> Result<Vec<tandem_crds::Subscription>, LoadError> {
    let mut out = Vec::new();
    for m in found {
        let s = &m.subscription;
        if !s.scopes.is_empty() && !s.scopes.contains(&ctx.app_id) {
            continue;
        }
        let json = crate::pubsub::subscriptions::SubscriptionJson::from(s);
        if let Err(message) = crate::pubsub::subscriptions::Subscription::try_from(json) {
            return Err(LoadError::Component {
                file: m.file.display().to_string(),
                name: s.name().to_owned(),
                type_: "Subscription".into(),
                message,
            });
        }
        out.push(m.subscription);
    }
    Ok(out)
}

fn component_error(m: &Manifest, message: String) -> LoadError {
    LoadError::Component {
        file: m.file.display().to_string(),
        name: m.component.name().to_owned(),
        type_: m.component.spec.type_.clone(),
        message,
    }
}

fn record_failure(plan: &mut Plan, m: &Manifest, message: String) -> Result<(), LoadError> {
    if !m.component.spec.ignore_errors {
        return Err(component_error(m, message));
    }
    tracing::error!(component = %m.component.name(), error = %message, "component failed to load; ignored (ignoreErrors)");
    plan.failed.push(FailedComponent {
        info: info_of(m, &m.component.spec.type_),
        error: message,
    });
    Ok(())
}

#[cfg(test)]
mod tests;
