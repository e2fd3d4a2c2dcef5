//! The actors active on this host and their turns. One turn at a time per actor (a method call,
//! a timer or a reminder), different actors in parallel; a call carrying the reentrancy id of
//! the turn in progress re-enters it, up to the type's stack depth.

use super::keys::shard_of;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::OwnedMutexGuard;
use tokio::task::AbortHandle;

/// One actor: its type and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorRef {
    pub actor_type: String,
    pub actor_id: String,
}

impl ActorRef {
    pub fn new(actor_type: &str, actor_id: &str) -> ActorRef {
        ActorRef {
            actor_type: actor_type.to_owned(),
            actor_id: actor_id.to_owned(),
        }
    }

    pub fn shard(&self) -> u32 {
        shard_of(&self.actor_type, &self.actor_id)
    }
}

#[derive(Debug)]
struct Holder {
    reentrancy_id: Option<String>,
    depth: u32,
}

/// An active actor.
#[derive(Debug)]
pub struct Slot {
    pub actor: ActorRef,
    turn: Arc<tokio::sync::Mutex<()>>,
    holder: Mutex<Option<Holder>>,
    last_used: Mutex<Instant>,
    timers: Mutex<HashMap<String, AbortHandle>>,
    deactivated: AtomicBool,
}

impl Slot {
    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn idle_since(&self) -> Instant {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_deactivated(&self) -> bool {
        self.deactivated.load(Ordering::Acquire)
    }

    /// Puts a timer's task in place, stopping one of the same name.
    pub fn set_timer(&self, name: &str, task: AbortHandle) {
        let mut timers = self.timers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = timers.insert(name.to_owned(), task) {
            old.abort();
        }
    }

    pub fn remove_timer(&self, name: &str) {
        if let Some(task) = self
            .timers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
        {
            task.abort();
        }
    }

    fn stop_timers(&self) {
        for (_, task) in self
            .timers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            task.abort();
        }
    }
}

/// Why a turn could not start.
#[derive(Debug, PartialEq, Eq)]
pub enum TurnError {
    /// Reentrancy went deeper than the type allows.
    StackDepth(u32),
    /// The actor was deactivated while the call waited; look it up again.
    Deactivated,
}

/// A turn in progress; ends when dropped.
pub struct Turn {
    slot: Arc<Slot>,
    reentrant: bool,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut holder = self.slot.holder.lock().unwrap_or_else(|p| p.into_inner());
        if self.reentrant {
            if let Some(h) = holder.as_mut() {
                h.depth = h.depth.saturating_sub(1);
            }
        } else {
            *holder = None;
        }
        drop(holder);
        self.slot.touch();
    }
}

/// Takes the actor's turn: re-enters when `reentrancy` names the turn in progress (with the
/// type's maximum depth), else waits for the turn to be free.
pub async fn take_turn(
    slot: Arc<Slot>,
    reentrancy: Option<(&str, u32)>,
) -> Result<Turn, TurnError> {
    if let Some((id, max_depth)) = reentrancy {
        let mut holder = slot.holder.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = holder.as_mut()
            && h.reentrancy_id.as_deref() == Some(id)
        {
            if h.depth >= max_depth {
                return Err(TurnError::StackDepth(max_depth));
            }
            h.depth += 1;
            drop(holder);
            return Ok(Turn {
                slot,
                reentrant: true,
                _guard: None,
            });
        }
    }
    let guard = slot.turn.clone().lock_owned().await;
    if slot.is_deactivated() {
        return Err(TurnError::Deactivated);
    }
    *slot.holder.lock().unwrap_or_else(|p| p.into_inner()) = Some(Holder {
        reentrancy_id: reentrancy.map(|(id, _)| id.to_owned()),
        depth: 1,
    });
    slot.touch();
    Ok(Turn {
        slot,
        reentrant: false,
        _guard: Some(guard),
    })
}

/// The active actors of this host.
#[derive(Debug, Default)]
pub struct ActiveActors {
    slots: Mutex<HashMap<ActorRef, Arc<Slot>>>,
}

impl ActiveActors {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ActorRef, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The actor's slot, activated (in the table) if it was not; `true` when it is new.
    pub fn activate(&self, actor: &ActorRef) -> (Arc<Slot>, bool) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get(actor) {
            return (slot.clone(), false);
        }
        let slot = Arc::new(Slot {
            actor: actor.clone(),
            turn: Arc::default(),
            holder: Mutex::default(),
            last_used: Mutex::new(Instant::now()),
            timers: Mutex::default(),
            deactivated: AtomicBool::new(false),
        });
        slots.insert(actor.clone(), slot.clone());
        (slot, true)
    }

    pub fn get(&self, actor: &ActorRef) -> Option<Arc<Slot>> {
        self.lock().get(actor).cloned()
    }

    pub fn is_active(&self, actor: &ActorRef) -> bool {
        self.lock().contains_key(actor)
    }

    /// Slots matching `pick`, for deactivation.
    pub fn select(&self, pick: impl Fn(&Slot) -> bool) -> Vec<Arc<Slot>> {
        self.lock().values().filter(|s| pick(s)).cloned().collect()
    }

    /// Takes the actor's turn for good: waits for the turn in progress, then removes the actor
    /// from the table and stops its timers. Returns the turn, held while the app deactivates it;
    /// `None` when another deactivation got there first.
    pub async fn deactivate(&self, slot: &Arc<Slot>) -> Option<OwnedMutexGuard<()>> {
        let guard = slot.turn.clone().lock_owned().await;
        if slot.deactivated.swap(true, Ordering::AcqRel) {
            return None;
        }
        slot.stop_timers();
        let mut slots = self.lock();
        if slots.get(&slot.actor).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(&slot.actor);
        }
        Some(guard)
    }

    /// Drops an actor that was activated for a turn that could not run (its shard moved),
    /// without a deactivation call: the app never saw it.
    pub fn discard(&self, slot: &Arc<Slot>) {
        slot.deactivated.store(true, Ordering::Release);
        slot.stop_timers();
        let mut slots = self.lock();
        if slots.get(&slot.actor).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(&slot.actor);
        }
    }

    /// Active actors per type.
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for actor in self.lock().keys() {
            *counts.entry(actor.actor_type.clone()).or_insert(0) += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_turn_at_a_time_and_reentrancy_by_id() {
        let table = ActiveActors::default();
        let actor = ActorRef::new("T", "1");
        let (slot, new) = table.activate(&actor);
        assert!(new);
        let first = take_turn(slot.clone(), Some(("r1", 2)))
            .await
            .expect("test value");
        // Another call waits.
        let waiting = tokio::spawn(take_turn(slot.clone(), Some(("r2", 2))));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiting.is_finished());
        // The same reentrancy id re-enters, up to the depth.
        let nested = take_turn(slot.clone(), Some(("r1", 2)))
            .await
            .expect("test value");
        assert_eq!(
            take_turn(slot.clone(), Some(("r1", 2))).await.err(),
            Some(TurnError::StackDepth(2))
        );
        drop(nested);
        drop(first);
        let second = waiting.await.expect("test value").expect("test value");
        drop(second);
    }

    #[tokio::test]
    async fn deactivation_waits_for_the_turn_and_refuses_later_calls() {
        let table = ActiveActors::default();
        let actor = ActorRef::new("T", "1");
        let (slot, _) = table.activate(&actor);
        let turn = take_turn(slot.clone(), None).await.expect("test value");
        let deactivating = {
            let slot = slot.clone();
            let table = Arc::new(table);
            let t = table.clone();
            (
                tokio::spawn(async move { assert!(t.deactivate(&slot).await.is_some()) }),
                table,
            )
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!deactivating.0.is_finished());
        drop(turn);
        deactivating.0.await.expect("test value");
        assert!(!deactivating.1.is_active(&actor));
        assert_eq!(
            take_turn(slot, None).await.err(),
            Some(TurnError::Deactivated)
        );
    }
}
