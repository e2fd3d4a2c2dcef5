//! Dapr's virtual actors. The app says which types it hosts (`GET /dapr/config`, [`config`]);
//! [`placement`] decides which host owns which shard of each type, with leases and fences kept in
//! the actor state store itself (no placement service to run, in either mode); [`table`] holds
//! the actors active here and their turns; [`calls`] runs a method here or forwards it to the
//! owner; [`state`], [`reminders`] and [`timers`] are the rest of Dapr's actor API.
//!
//! Safety argument, in short: a host runs a turn for an actor only while it holds the lease of
//! the actor's shard (checked before and after the turn is taken); a lease passes to another host
//! only after its holder released it (after draining the shard's turns and deactivating its
//! actors) or after it expired by a margin the holder itself respects; and every state write and
//! reminder update of a shard carries a condition on the shard's fence, which the next owner
//! moves before it runs anything, so a holder that lost its lease cannot write.

pub mod callback;
pub mod calls;
pub mod config;
pub mod keys;
pub mod metrics;
pub mod operations;
pub mod placement;
pub mod reminders;
pub mod schedule;
pub mod state;
pub mod table;
pub mod timers;

use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};
use crate::components::state::StateStore;
use config::ActorsConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The actor runtime of one sidecar: what it hosts, what is active, and what it owns.
pub struct ActorRuntime {
    /// This host's internal address, as other hosts reach it (`ip:port`).
    address: String,
    hosted: OnceLock<ActorsConfig>,
    table: table::ActiveActors,
    placement: placement::Placement,
    reminders: reminders::ReminderIndex,
    /// True once the app's configuration is known and, when it hosts actors, the first
    /// placement round is done: until then the sidecar does not report ready.
    settled: AtomicBool,
    /// Held by a placement round, and by [`stop`] so that no round runs during the hand-off.
    rounds: tokio::sync::Mutex<()>,
}

impl ActorRuntime {
    /// `settled` from the start when there is no app (nothing to host).
    pub fn new(address: String, settled: bool) -> ActorRuntime {
        ActorRuntime {
            address,
            hosted: OnceLock::new(),
            table: table::ActiveActors::default(),
            placement: placement::Placement::default(),
            reminders: reminders::ReminderIndex::default(),
            settled: AtomicBool::new(settled),
            rounds: tokio::sync::Mutex::new(()),
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The types this app hosts (empty until the app said, or when it hosts none).
    pub fn hosted(&self) -> Option<&ActorsConfig> {
        self.hosted.get()
    }

    pub fn hosts(&self, actor_type: &str) -> bool {
        self.hosted.get().is_some_and(|c| c.hosts(actor_type))
    }

    pub fn table(&self) -> &table::ActiveActors {
        &self.table
    }

    pub fn placement(&self) -> &placement::Placement {
        &self.placement
    }

    pub fn reminders(&self) -> &reminders::ReminderIndex {
        &self.reminders
    }

    pub fn settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    pub(crate) fn mark_settled(&self) {
        self.settled.store(true, Ordering::Release);
    }

    pub(crate) fn set_hosted(&self, config: ActorsConfig) {
        let _ = self.hosted.set(config);
    }
}

/// The actor state store (`actorStateStore: "true"`), or Dapr's error when there is none.
pub fn actor_store(sc: &Sidecar) -> Result<Arc<dyn StateStore>, BlockError> {
    sc.registry().actor_state().ok_or_else(|| {
        BlockError::new(
            Code::ActorRuntimeNotFound,
            "the actor runtime is not configured: no ready state store has actorStateStore: \"true\"",
        )
    })
}

/// Validates a type, id or name from a request.
pub fn check_name(what: &str, name: &str) -> Result<(), BlockError> {
    if keys::valid_name(name) {
        Ok(())
    } else {
        Err(BlockError::new(
            Code::ActorBadRequest,
            format!("invalid {what} {name:?}: empty, or contains '||', '/' or a control character"),
        ))
    }
}

/// Starts the actor runtime's background work: reads the app's actor configuration, then runs
/// placement, the reminder scheduler and idle deactivation for the types it hosts.
pub fn start(sc: Arc<Sidecar>) {
    use tracing::Instrument;
    tokio::spawn(async move { startup::run(sc).await }.instrument(tracing::info_span!("actors")));
}

/// Hands this host's actors off at shutdown (call before the servers stop accepting).
pub async fn stop(sc: &Arc<Sidecar>) {
    startup::stop(sc).await;
}

mod startup;
