//! Hot reload, one mechanism for every mode: a new component plan replaces the running one while
//! the sidecar serves. Components whose settings did not change keep their live instance; new
//! ones are initialised before anything is swapped (a plan whose components do not initialise
//! is not applied, and the sidecar keeps what works); then the registry is swapped, the workers
//! follow (subscriptions and input readers move to new instances), and the replaced instances
//! are closed after the grace period, so requests already running finish on them.

use crate::blocks::Sidecar;
use crate::components::Plan;
use crate::components::registry::close_slots;
use crate::components::secrets::SecretStore;
use crate::workers::Workers;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

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
        if let Err(error) = next.init_all().await {
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
