//! Placement without a placement service: hosts write heartbeats into the actor state store,
//! compute the same rendezvous ring over the live ones, and take, renew and release per-shard
//! leases there with compare-and-set ([`records::plan`] decides, this module does). A host that
//! takes a shard first moves the shard's fence, so a previous holder's writes fail.
//! Standalone sidecars sharing `--data-dir` share the embedded SQLite store and so place actors
//! among themselves; in Kubernetes the replicas of an app share their actor state store.

pub mod records;
mod store_io;

use store_io::{encode, move_fence, write_lease};
pub use store_io::{read_leases, scan_all};

use super::keys::{self, SHARDS};
use crate::components::state::{Concurrency, SetRequest, StateStore, StoreError, StoreResult};
use records::{HostRecord, LeaseRecord, SeenLease, Step};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A shard this host holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Owned {
    pub epoch: u64,
    /// The fence's ETag after this host moved it: every write of the shard is conditional on it.
    pub fence_etag: String,
    pub lease: SeenLease,
    /// Being handed off: no new turns start.
    pub draining: bool,
}

/// Where an actor runs now.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    Here {
        epoch: u64,
        fence_etag: String,
    },
    There(String),
    /// Nobody holds the shard right now (a hand-off or a failover in progress).
    Unknown,
}

/// The leases of one type as last read (at the time given, in ms), by shard.
type SeenLeases = (u64, BTreeMap<u32, SeenLease>);

/// This host's view: the shards it holds, and the leases it last read per type.
#[derive(Debug, Default)]
pub struct Placement {
    owned: Mutex<HashMap<(String, u32), Owned>>,
    seen: Mutex<HashMap<String, SeenLeases>>,
}

impl Placement {
    fn owned(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), Owned>> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where `(actor_type, shard)` runs, from this host's point of view at `now`.
    pub fn locate(&self, me: &str, actor_type: &str, shard: u32, now: u64) -> Location {
        if let Some(o) = self.owned().get(&(actor_type.to_owned(), shard)) {
            return match !o.draining && o.lease.record.usable_by(me, now) {
                true => Location::Here {
                    epoch: o.epoch,
                    fence_etag: o.fence_etag.clone(),
                },
                false => Location::Unknown,
            };
        }
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get(actor_type).and_then(|(_, l)| l.get(&shard)) {
            Some(l) => match &l.record.owner {
                Some(owner) if owner != me && l.record.until_ms > now => {
                    Location::There(owner.clone())
                }
                _ => Location::Unknown,
            },
            None => Location::Unknown,
        }
    }

    /// Whether a new turn may start here: held, not being handed off, lease usable.
    pub fn serving(&self, me: &str, actor_type: &str, shard: u32) -> bool {
        matches!(
            self.locate(me, actor_type, shard, now_ms()),
            Location::Here { .. }
        )
    }

    /// The fence to write under, while this host may still use the shard.
    pub fn fence(&self, me: &str, actor_type: &str, shard: u32) -> Option<(String, String)> {
        let owned = self.owned();
        let o = owned.get(&(actor_type.to_owned(), shard))?;
        o.lease
            .record
            .usable_by(me, now_ms())
            .then(|| (keys::fence_key(actor_type, shard), o.fence_etag.clone()))
    }

    /// Re-reads the leases of a type this host does not hold, when the last read is older
    /// than a tick (callers of remote actors).
    pub async fn refresh(
        &self,
        store: &dyn StateStore,
        actor_type: &str,
        force: bool,
    ) -> StoreResult<()> {
        let fresh = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(actor_type)
            .is_some_and(|(at, _)| now_ms() < at + records::TICK_MS / 2);
        if fresh && !force {
            return Ok(());
        }
        let leases = read_leases(store, actor_type).await?;
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(actor_type.to_owned(), (now_ms(), leases));
        Ok(())
    }

    /// Shards of `actor_type` this host holds and is not handing off.
    pub fn held(&self, actor_type: &str) -> Vec<u32> {
        self.owned()
            .iter()
            .filter(|((t, _), o)| t == actor_type && !o.draining)
            .map(|((_, s), _)| *s)
            .collect()
    }

    pub fn held_count(&self) -> usize {
        self.owned().len()
    }

    /// Starts a hand-off; `None` when the shard is not held or is already being handed off.
    pub fn mark_draining(&self, actor_type: &str, shard: u32) -> Option<Owned> {
        let mut owned = self.owned();
        let o = owned.get_mut(&(actor_type.to_owned(), shard))?;
        if o.draining {
            return None;
        }
        o.draining = true;
        Some(o.clone())
    }

    fn forget(&self, actor_type: &str, shard: u32) -> Option<Owned> {
        self.owned().remove(&(actor_type.to_owned(), shard))
    }
}

/// What one round did, for the caller to act on.
#[derive(Debug, Default)]
pub struct RoundOutcome {
    pub acquired: Vec<u32>,
    /// Shards to hand off: the caller drains them, then calls [`release`].
    pub to_release: Vec<u32>,
    /// Shards this host lost without handing them off (a renewal found another holder).
    pub lost: Vec<u32>,
}

/// Writes this host's heartbeat.
pub async fn heartbeat(store: &dyn StateStore, me: &HostRecord) -> StoreResult<()> {
    store
        .set(SetRequest {
            key: keys::host_key(&me.address),
            value: encode(me),
            etag: None,
            concurrency: Concurrency::LastWrite,
            ttl: Some(i64::try_from(records::HOST_TIMEOUT_MS / 1000 * 4).unwrap_or(12)),
        })
        .await
}

/// Every host record in the store.
pub async fn hosts(store: &dyn StateStore) -> StoreResult<Vec<HostRecord>> {
    Ok(scan_all(store, &keys::host_prefix())
        .await?
        .into_iter()
        .filter_map(|(_, item)| serde_json::from_slice(&item.data).ok())
        .collect())
}

/// One placement round for one hosted type.
pub async fn round(
    placement: &Placement,
    store: &dyn StateStore,
    me: &str,
    actor_type: &str,
    hosts: &[HostRecord],
) -> StoreResult<RoundOutcome> {
    let now = now_ms();
    let leases = read_leases(store, actor_type).await?;
    let live = records::live_hosts(hosts, actor_type, now);
    let mut outcome = RoundOutcome::default();
    // A lease this host believes it holds but the store says otherwise is lost at once.
    for shard in 0..SHARDS {
        let believed = placement
            .owned()
            .get(&(actor_type.to_owned(), shard))
            .cloned();
        if let Some(o) = believed {
            let still = leases.get(&shard).is_some_and(|l| {
                l.record.owner.as_deref() == Some(me) && l.record.epoch == o.epoch
            });
            if !still {
                placement.forget(actor_type, shard);
                outcome.lost.push(shard);
            }
        }
    }
    let held_here: std::collections::BTreeSet<u32> = placement
        .owned()
        .keys()
        .filter(|(t, _)| t == actor_type)
        .map(|(_, s)| *s)
        .collect();
    for step in records::plan(me, actor_type, &live, &leases, &held_here, now) {
        match step {
            Step::Acquire { shard, epoch } => {
                let record = LeaseRecord {
                    owner: Some(me.to_owned()),
                    epoch,
                    until_ms: now + records::LEASE_MS,
                };
                let etag = leases.get(&shard).and_then(|l| l.etag.clone());
                match write_lease(store, actor_type, shard, &record, etag).await {
                    Ok(()) => {}
                    Err(StoreError::EtagMismatch(_)) => continue, // another host was faster
                    Err(e) => return Err(e),
                }
                let fence_etag = move_fence(store, actor_type, shard, epoch).await?;
                let lease = read_leases_one(store, actor_type, shard).await?;
                if let Some(lease) = lease.filter(|l| l.record == record) {
                    placement.owned().insert(
                        (actor_type.to_owned(), shard),
                        Owned {
                            epoch,
                            fence_etag,
                            lease,
                            draining: false,
                        },
                    );
                    outcome.acquired.push(shard);
                }
            }
            Step::Renew { shard } => {
                renew(placement, store, actor_type, shard, now, &mut outcome).await?
            }
            Step::Release { shard } => {
                // Keep the lease alive while the hand-off drains.
                renew(placement, store, actor_type, shard, now, &mut outcome).await?;
                if placement.mark_draining(actor_type, shard).is_some() {
                    outcome.to_release.push(shard);
                }
            }
        }
    }
    placement
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(actor_type.to_owned(), (now, leases));
    Ok(outcome)
}

async fn read_leases_one(
    store: &dyn StateStore,
    actor_type: &str,
    shard: u32,
) -> StoreResult<Option<SeenLease>> {
    Ok(store
        .get(&keys::lease_key(actor_type, shard))
        .await?
        .and_then(|item| {
            Some(SeenLease {
                record: serde_json::from_slice(&item.data).ok()?,
                etag: item.etag,
            })
        }))
}

async fn renew(
    placement: &Placement,
    store: &dyn StateStore,
    actor_type: &str,
    shard: u32,
    now: u64,
    outcome: &mut RoundOutcome,
) -> StoreResult<()> {
    let Some(owned) = placement
        .owned()
        .get(&(actor_type.to_owned(), shard))
        .cloned()
    else {
        return Ok(());
    };
    if owned.lease.record.until_ms >= now + records::RENEW_BELOW_MS {
        return Ok(());
    }
    let record = LeaseRecord {
        until_ms: now + records::LEASE_MS,
        ..owned.lease.record.clone()
    };
    match write_lease(store, actor_type, shard, &record, owned.lease.etag.clone()).await {
        Ok(()) => {
            let fresh = read_leases_one(store, actor_type, shard).await?;
            let mut all = placement.owned();
            match (fresh, all.get_mut(&(actor_type.to_owned(), shard))) {
                (Some(l), Some(o)) if l.record == record => o.lease = l,
                _ => {
                    all.remove(&(actor_type.to_owned(), shard));
                    outcome.lost.push(shard);
                }
            }
            Ok(())
        }
        Err(StoreError::EtagMismatch(_)) => {
            placement.forget(actor_type, shard);
            outcome.lost.push(shard);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Ends a hand-off: the shard is drained, so its lease is released for the next owner.
pub async fn release(
    placement: &Placement,
    store: &dyn StateStore,
    actor_type: &str,
    shard: u32,
) -> StoreResult<()> {
    let Some(owned) = placement.forget(actor_type, shard) else {
        return Ok(());
    };
    let record = LeaseRecord {
        owner: None,
        epoch: owned.epoch,
        until_ms: 0,
    };
    // Re-read: the lease was renewed while draining.
    let current = read_leases_one(store, actor_type, shard).await?;
    match current {
        Some(l)
            if l.record.owner.as_deref() == owned.lease.record.owner.as_deref()
                && l.record.epoch == owned.epoch =>
        {
            match write_lease(store, actor_type, shard, &record, l.etag).await {
                Ok(()) | Err(StoreError::EtagMismatch(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        _ => Ok(()),
    }
}

/// Waits one tick (or less when stopped).
pub async fn tick(stop: &tokio_util::sync::CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(Duration::from_millis(records::TICK_MS)) => true,
    }
}
