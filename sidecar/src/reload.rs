//! Hot reload, one mechanism for every mode: a new component plan replaces the running one while
//! the sidecar serves. Components whose settings did not change keep their live instance; new
//! ones are initialised before anything is swapped (a plan whose components do not initialise
//! is not applied, and the sidecar keeps what works); then the registry is swapped, the workers
//! follow (subscriptions and input readers move to new instances), and the replaced instances
//! are closed after the grace period, so requests already running finish on them. Kubernetes
//! mode applies what the operator streams (`kubernetes::follow`); standalone mode follows its
//! `--resources-path` folders ([`follow_resources`]).

use crate::blocks::Sidecar;
use crate::components::manifest;
use crate::components::plan::plan_resources;
use crate::components::registry::close_slots;
use crate::components::secrets::SecretStore;
use crate::components::{Plan, PlanContext};
use crate::workers::Workers;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tandem_crds::Component;

/// Why a plan was not applied.
#[derive(Debug, thiserror::Error)]
#[error("changed components did not initialise: {0}")]
pub struct ReloadError(String);

/// What a reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub kept: usize,
    pub retired: usize,
}

/// Applies component plans to a running sidecar.
pub struct Reloader {
    sidecar: Arc<Sidecar>,
    workers: Arc<Workers>,
    /// How long replaced instances stay open for the requests that use them.
    grace: Duration,
}

impl Reloader {
    pub fn new(sidecar: Arc<Sidecar>, workers: Arc<Workers>, grace: Duration) -> Reloader {
        Reloader {
            sidecar,
            workers,
            grace,
        }
    }

    pub fn sidecar(&self) -> &Arc<Sidecar> {
        &self.sidecar
    }

    /// Puts `plan` in place; the components named in `keep` keep their live instance.
    pub async fn apply(
        &self,
        plan: Plan,
        prebuilt: HashMap<String, Arc<dyn SecretStore>>,
        keep: &HashSet<String>,
    ) -> Result<Applied, ReloadError> {
        let (next, retired) = self.sidecar.registry().next(plan, prebuilt, keep);
        let next = Arc::new(next);
        if let Err(error) = next
            .init_all_counted(Some(self.sidecar.metrics().components()))
            .await
        {
            let unused: Vec<_> = next
                .slots()
                .iter()
                .filter(|slot| !keep.contains(&slot.planned.info.name))
                .cloned()
                .collect();
            close_slots(&unused).await;
            return Err(ReloadError(error));
        }
        self.sidecar.replace_registry(next);
        self.workers.sync().await;
        let applied = Applied {
            kept: keep.len(),
            retired: retired.len(),
        };
        let grace = self.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            close_slots(&retired).await;
        });
        Ok(applied)
    }
}

/// The names of Components whose settings are the same in `old` and `new` (metadata such as
/// resourceVersion aside): those keep their live instance.
pub fn unchanged(old: &[Component], new: &[Component]) -> HashSet<String> {
    new.iter()
        .filter(|n| {
            old.iter().any(|o| {
                o.name() == n.name() && o.spec == n.spec && o.auth == n.auth && o.scopes == n.scopes
            })
        })
        .map(|n| n.name().to_owned())
        .collect()
}

/// What the resources path held when it was last applied.
#[derive(PartialEq)]
struct Loaded {
    components: Vec<Component>,
    subscriptions: Vec<tandem_crds::Subscription>,
}

impl Loaded {
    fn of(resources: &manifest::Resources) -> Loaded {
        Loaded {
            components: resources
                .components
                .iter()
                .map(|m| m.component.clone())
                .collect(),
            subscriptions: resources
                .subscriptions
                .iter()
                .map(|m| m.subscription.clone())
                .collect(),
        }
    }
}

/// Standalone mode: follows the `--resources-path` folders, checking every `interval`, and
/// applies what changed as the operator's changes are applied in Kubernetes mode. A folder that
/// does not read, or a set that does not plan, leaves the running components as they are.
pub async fn follow_resources(reloader: Reloader, ctx: PlanContext, interval: Duration) {
    let read = || manifest::read_all(&ctx.resources_paths);
    let mut loaded = match read() {
        Ok(resources) => Loaded::of(&resources),
        Err(error) => {
            tracing::warn!(%error, "resources path unreadable; not following it");
            return;
        }
    };
    let stop = reloader.sidecar.shutdown().clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let resources = match read() {
            Ok(resources) => resources,
            Err(error) => {
                tracing::warn!(%error, "resources path unreadable; keeping the current components");
                continue;
            }
        };
        let now = Loaded::of(&resources);
        if now == loaded {
            continue;
        }
        let keep = unchanged(&loaded.components, &now.components);
        let (plan, prebuilt) = match plan_resources(&ctx, resources) {
            Ok(planned) => planned,
            Err(error) => {
                tracing::error!(%error, "changed resources not applied; keeping the current ones");
                loaded = now;
                continue;
            }
        };
        match reloader.apply(plan, prebuilt, &keep).await {
            Ok(applied) => tracing::info!(
                kept = applied.kept,
                retired = applied.retired,
                "changed resources applied"
            ),
            Err(error) => tracing::error!(%error, "keeping the current components"),
        }
        loaded = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_means_same_settings_not_same_metadata() {
        let a = Component::test("a", "state.in-memory");
        let mut a_touched = a.clone();
        a_touched.metadata.resource_version = Some("42".into());
        let b = Component::test("b", "state.in-memory");
        let b_changed = b.clone().with_metadata("ttl", "30");
        let c = Component::test("c", "pubsub.in-memory");
        let kept = unchanged(&[a, b], &[a_touched, b_changed, c]);
        assert_eq!(kept, HashSet::from(["a".to_owned()]));
    }
}
