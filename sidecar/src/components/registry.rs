//! The live components. Built from a [`Plan`] before the servers start; each component then
//! initialises in the background, retried with backoff until its `initTimeout`. Lookups never
//! block: a component that is not ready yet is reported as such.

use super::bindings::Binding;
use super::factory::Instance;
use super::lock::LockStore;
use super::plan::{FailedComponent, Plan, Planned};
use super::pubsub::PubSub;
use super::secrets::SecretStore;
use super::state::{Feature, KeyPrefix, StateStore};
use crate::resiliency::Backoff;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The pause between init attempts of a component.
const INIT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));

/// Name, type and origin of a component.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentInfo {
    pub name: String,
    pub type_: String,
    pub version: String,
    pub file: PathBuf,
}

impl ComponentInfo {
    pub fn block(&self) -> &str {
        self.type_.split('.').next().unwrap_or_default()
    }
}

/// Where a component is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum ComponentStatus {
    Initialising,
    Ready,
    /// Failed, and `ignoreErrors` let the sidecar go on without it.
    Failed(String),
}

/// One component and, once initialised, its instance.
pub struct Slot {
    pub planned: Planned,
    instance: OnceLock<Instance>,
    status: Mutex<ComponentStatus>,
}

impl Slot {
    pub fn status(&self) -> ComponentStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_status(&self, status: ComponentStatus) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }
}

/// A state store as the API uses it.
pub struct StateHandle<'a> {
    pub store: &'a Arc<dyn StateStore>,
    pub key_prefix: &'a KeyPrefix,
    pub name: &'a str,
}

/// A lock store as the API uses it (the key prefix is the component's `keyPrefix`).
pub struct LockHandle<'a> {
    pub store: &'a Arc<dyn LockStore>,
    pub key_prefix: &'a KeyPrefix,
    pub name: &'a str,
}

/// Why a lookup found no usable component.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// No component of this block is configured at all.
    NoneConfigured,
    /// No component of this name.
    NotFound,
    /// Configured, not (yet) usable.
    NotReady(ComponentStatus),
}

/// Every loaded component.
pub struct Registry {
    slots: Vec<Arc<Slot>>,
    by_name: HashMap<String, Arc<Slot>>,
    failed: Vec<FailedComponent>,
    subscriptions: Vec<tandem_crds::Subscription>,
}

impl Registry {
    /// Builds the registry; `prebuilt` holds instances made while planning (local secret stores).
    pub fn new(plan: Plan, mut prebuilt: HashMap<String, Arc<dyn SecretStore>>) -> Self {
        let mut slots = Vec::new();
        let mut by_name = HashMap::new();
        for planned in plan.components {
            let slot = Arc::new(Slot {
                instance: OnceLock::new(),
                status: Mutex::new(ComponentStatus::Initialising),
                planned,
            });
            if let Some(store) = prebuilt.remove(&slot.planned.info.name) {
                let _ = slot.instance.set(Instance::Secrets(store));
                slot.set_status(ComponentStatus::Ready);
            }
            by_name.insert(slot.planned.info.name.clone(), slot.clone());
            slots.push(slot);
        }
        Registry {
            slots,
            by_name,
            failed: plan.failed,
            subscriptions: plan.subscriptions,
        }
    }

    /// The registry after the components changed: `plan`'s components, each one named in
    /// `unchanged` keeping its live slot (instance, connections) from `self`. Also returns the
    /// slots of `self` that the new registry no longer uses, to close once their requests are done.
    pub fn next(
        &self,
        plan: Plan,
        mut prebuilt: HashMap<String, Arc<dyn SecretStore>>,
        unchanged: &std::collections::HashSet<String>,
    ) -> (Registry, Vec<Arc<Slot>>) {
        for name in unchanged {
            // An unchanged secret store keeps its instance; the one built while planning goes.
            if self.by_name.contains_key(name) {
                prebuilt.remove(name);
            }
        }
        let kept: Vec<Arc<Slot>> = plan
            .components
            .iter()
            .filter(|p| unchanged.contains(&p.info.name))
            .filter_map(|p| self.by_name.get(&p.info.name).cloned())
            .collect();
        let fresh = Plan {
            components: plan
                .components
                .into_iter()
                .filter(|p| !kept.iter().any(|k| k.planned.info.name == p.info.name))
                .collect(),
            ..plan
        };
        let mut next = Registry::new(fresh, prebuilt);
        for slot in kept {
            next.by_name
                .insert(slot.planned.info.name.clone(), Arc::clone(&slot));
            next.slots.push(slot);
        }
        next.slots
            .sort_by(|a, b| a.planned.info.name.cmp(&b.planned.info.name));
        let retired = self
            .slots
            .iter()
            .filter(|old| !next.slots.iter().any(|new| Arc::ptr_eq(old, new)))
            .cloned()
            .collect();
        (next, retired)
    }

    pub fn slots(&self) -> &[Arc<Slot>] {
        &self.slots
    }

    /// Declarative Subscriptions for this app.
    pub fn declared_subscriptions(&self) -> &[tandem_crds::Subscription] {
        &self.subscriptions
    }

    /// Components that failed before initialisation (bad manifests with `ignoreErrors`).
    pub fn failed_at_load(&self) -> &[FailedComponent] {
        &self.failed
    }

    /// True when no component is still initialising (failures with `ignoreErrors` count as done).
    pub fn settled(&self) -> bool {
        self.slots
            .iter()
            .all(|s| s.status() != ComponentStatus::Initialising)
    }

    fn find(&self, block: &str, name: &str) -> Result<(&Slot, &Instance), Lookup> {
        let Some(slot) = self
            .by_name
            .get(name)
            .filter(|s| s.planned.info.block() == block)
        else {
            let any = self.slots.iter().any(|s| s.planned.info.block() == block);
            return Err(if any {
                Lookup::NotFound
            } else {
                Lookup::NoneConfigured
            });
        };
        slot.instance
            .get()
            .map(|i| (slot.as_ref(), i))
            .ok_or_else(|| Lookup::NotReady(slot.status()))
    }

    pub fn state(&self, name: &str) -> Result<StateHandle<'_>, Lookup> {
        match self.find("state", name)? {
            (slot, Instance::State(store)) => Ok(StateHandle {
                store,
                key_prefix: &slot.planned.key_prefix,
                name: &slot.planned.info.name,
            }),
            _ => Err(Lookup::NotFound),
        }
    }

    pub fn secrets(&self, name: &str) -> Result<&Arc<dyn SecretStore>, Lookup> {
        match self.find("secretstores", name)? {
            (_, Instance::Secrets(store)) => Ok(store),
            _ => Err(Lookup::NotFound),
        }
    }

    pub fn pubsub(&self, name: &str) -> Result<(&Slot, &Arc<dyn PubSub>), Lookup> {
        match self.find("pubsub", name)? {
            (slot, Instance::PubSub(broker)) => Ok((slot, broker)),
            _ => Err(Lookup::NotFound),
        }
    }

    pub fn binding(&self, name: &str) -> Result<(&Slot, &Binding), Lookup> {
        match self.find("bindings", name)? {
            (slot, Instance::Binding(binding)) => Ok((slot, binding)),
            _ => Err(Lookup::NotFound),
        }
    }

    /// The actor state store (`actorStateStore: "true"`), once it is ready.
    pub fn actor_state(&self) -> Option<Arc<dyn StateStore>> {
        self.slots
            .iter()
            .filter(|s| s.planned.actor_state_store)
            .find_map(|s| match s.instance.get() {
                Some(Instance::State(store)) => Some(store.clone()),
                _ => None,
            })
    }

    pub fn lock(&self, name: &str) -> Result<LockHandle<'_>, Lookup> {
        match self.find("lock", name)? {
            (slot, Instance::Lock(store)) => Ok(LockHandle {
                store,
                key_prefix: &slot.planned.key_prefix,
                name: &slot.planned.info.name,
            }),
            _ => Err(Lookup::NotFound),
        }
    }

    /// Capabilities shown in `/v1.0/metadata`.
    pub fn capabilities(&self, slot: &Slot) -> Vec<&'static str> {
        let mut caps: Vec<&'static str> = match slot.instance.get() {
            Some(Instance::State(store)) => store.features().iter().map(|f| f.as_str()).collect(),
            _ => Vec::new(),
        };
        if slot.planned.actor_state_store {
            caps.push(Feature::Actor.as_str());
        }
        caps
    }

    /// Initialises every component concurrently. Returns the first fatal failure (a component
    /// without `ignoreErrors` that did not come up within its `initTimeout`).
    pub async fn init_all(&self) -> Result<(), String> {
        self.init_all_counted(None).await
    }

    /// [`Self::init_all`], counting each component that started or failed in `metrics`.
    pub async fn init_all_counted(
        &self,
        metrics: Option<&crate::metrics::components::ComponentMetrics>,
    ) -> Result<(), String> {
        let pending: Vec<Arc<Slot>> = self
            .slots
            .iter()
            .filter(|s| s.instance.get().is_none())
            .cloned()
            .collect();
        let tasks = pending.iter().map(|s| init_slot(s.clone()));
        let results = futures_util::future::join_all(tasks).await;
        for slot in pending.iter().filter_map(|s| metrics.map(|m| (s, m))) {
            let (slot, metrics) = slot;
            let info = &slot.planned.info;
            match slot.status() {
                ComponentStatus::Ready => metrics.initialised(&info.type_, &info.name, true),
                ComponentStatus::Failed(_) => metrics.initialised(&info.type_, &info.name, false),
                ComponentStatus::Initialising => {}
            }
        }
        results
            .into_iter()
            .collect::<Result<Vec<()>, String>>()
            .map(|_| ())
    }

    /// Closes every component with connections (called once at shutdown, after the API has drained).
    pub async fn close(&self) {
        close_slots(&self.slots).await;
    }
}

/// Closes the connections of `slots` (shutdown, or components the operator replaced or removed).
pub async fn close_slots(slots: &[Arc<Slot>]) {
    for slot in slots {
        match slot.instance.get() {
            Some(Instance::State(store)) => store.close().await,
            Some(Instance::PubSub(broker)) => broker.close().await,
            Some(Instance::Binding(binding)) => binding.close().await,
            Some(Instance::Lock(store)) => store.close().await,
            _ => {}
        }
    }
}

async fn init_slot(slot: Arc<Slot>) -> Result<(), String> {
    let info = &slot.planned.info;
    let deadline = tokio::time::Instant::now() + slot.planned.init_timeout;
    let mut backoff = INIT_BACKOFF;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let outcome = tokio::time::timeout_at(deadline, slot.planned.config.init()).await;
        let error = match outcome {
            Ok(Ok(instance)) => {
                let _ = slot.instance.set(instance);
                slot.set_status(ComponentStatus::Ready);
                tracing::info!(component = %info.name, r#type = %info.type_, attempt, "component ready");
                return Ok(());
            }
            Ok(Err(e)) => e,
            Err(_) => "init timed out".to_owned(),
        };
        let delay = backoff.next();
        if tokio::time::Instant::now() + delay >= deadline {
            let message = format!(
                "{}: component {:?} ({}) failed to initialise within {:?} after {attempt} attempts: {error}",
                info.file.display(),
                info.name,
                info.type_,
                slot.planned.init_timeout
            );
            slot.set_status(ComponentStatus::Failed(error));
            if slot.planned.ignore_errors {
                tracing::error!(component = %info.name, %message, "component failed; ignored (ignoreErrors)");
                return Ok(());
            }
            return Err(message);
        }
        tracing::warn!(component = %info.name, attempt, %error, "component init failed; retrying");
        tokio::time::sleep(delay).await;
    }
}
