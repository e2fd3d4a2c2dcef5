//! The placement records kept in the actor state store, and the pure decisions over them.

use super::super::keys::{SHARDS, owner_of};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How often a host writes its heartbeat and reviews its leases.
pub const TICK_MS: u64 = 500;
/// A host whose heartbeat is older than this is gone.
pub const HOST_TIMEOUT_MS: u64 = 3_000;
/// How long a lease lasts without renewal.
pub const LEASE_MS: u64 = 5_000;
/// Renew when less than this is left.
pub const RENEW_BELOW_MS: u64 = 3_500;
/// Clock margin: a holder stops using its lease this long before it ends, and nobody takes
/// an expired lease before this long after it ended.
pub const MARGIN_MS: u64 = 1_000;

/// One live host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostRecord {
    pub address: String,
    pub app_id: String,
    pub types: Vec<String>,
    pub heartbeat_ms: u64,
}

/// Who owns a shard, from which epoch, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRecord {
    pub owner: Option<String>,
    pub epoch: u64,
    pub until_ms: u64,
}

impl LeaseRecord {
    /// Whether `address` may use this lease at `now` (the holder's side of the margin).
    pub fn usable_by(&self, address: &str, now: u64) -> bool {
        self.owner.as_deref() == Some(address) && now + MARGIN_MS < self.until_ms
    }

    /// Whether another host may take it at `now`: released, or expired by the margin.
    pub fn takeable(&self, now: u64) -> bool {
        self.owner.is_none() || self.until_ms + MARGIN_MS < now
    }
}

/// A lease as read, with its ETag for compare-and-set.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenLease {
    pub record: LeaseRecord,
    pub etag: Option<String>,
}

/// What a host does with one shard of a type it hosts, this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Take it: the shard is this host's by the ring and free (or never leased).
    Acquire { shard: u32, epoch: u64 },
    /// Keep it: extend the lease.
    Renew { shard: u32 },
    /// Hand it off: another host should own it.
    Release { shard: u32 },
}

/// The live hosts of `actor_type` among `hosts` at `now`.
pub fn live_hosts<'a>(hosts: &'a [HostRecord], actor_type: &str, now: u64) -> Vec<&'a str> {
    hosts
        .iter()
        .filter(|h| h.heartbeat_ms + HOST_TIMEOUT_MS >= now)
        .filter(|h| h.types.iter().any(|t| t == actor_type))
        .map(|h| h.address.as_str())
        .collect()
}

/// This round's steps for `me` on `actor_type`, given the live hosts, the leases as read and the
/// shards this host knows it holds. A lease the store says is `me`'s but this host does not know
/// it holds (an earlier run on the same address, or a round that failed halfway) is taken
/// again with the next epoch, which fences whatever held it before.
pub fn plan(
    me: &str,
    actor_type: &str,
    live: &[&str],
    leases: &BTreeMap<u32, SeenLease>,
    held_here: &std::collections::BTreeSet<u32>,
    now: u64,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for shard in 0..SHARDS {
        let mine_by_ring = owner_of(actor_type, shard, live) == Some(me);
        let lease = leases.get(&shard);
        let held = held_here.contains(&shard)
            && lease.is_some_and(|l| l.record.owner.as_deref() == Some(me));
        let stale_mine = !held && lease.is_some_and(|l| l.record.owner.as_deref() == Some(me));
        match (mine_by_ring, held) {
            (true, true) => {
                if lease.is_some_and(|l| l.record.until_ms < now + RENEW_BELOW_MS) {
                    steps.push(Step::Renew { shard });
                }
            }
            (true, false) => match lease {
                None => steps.push(Step::Acquire { shard, epoch: 1 }),
                Some(l) if stale_mine || l.record.takeable(now) => steps.push(Step::Acquire {
                    shard,
                    epoch: l.record.epoch + 1,
                }),
                Some(_) => {} // its holder hands it off when it sees the ring
            },
            (false, true) => steps.push(Step::Release { shard }),
            // Not ours by the ring, and a lease with our name we do not know: free it.
            (false, false) if stale_mine => steps.push(Step::Acquire {
                shard,
                epoch: lease.map_or(1, |l| l.record.epoch + 1),
            }),
            (false, false) => {}
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn lease(owner: Option<&str>, epoch: u64, until_ms: u64) -> SeenLease {
        SeenLease {
            record: LeaseRecord {
                owner: owner.map(str::to_owned),
                epoch,
                until_ms,
            },
            etag: Some("1".into()),
        }
    }

    #[test]
    fn a_lone_host_takes_every_shard_then_renews_only_what_runs_low() {
        let none = BTreeSet::new();
        let steps = plan("a", "T", &["a"], &BTreeMap::new(), &none, 10_000);
        assert_eq!(steps.len(), SHARDS as usize);
        assert!(
            steps
                .iter()
                .all(|s| matches!(s, Step::Acquire { epoch: 1, .. }))
        );
        let leases: BTreeMap<u32, SeenLease> = (0..SHARDS)
            .map(|s| (s, lease(Some("a"), 1, if s == 0 { 11_000 } else { 20_000 })))
            .collect();
        let all: BTreeSet<u32> = (0..SHARDS).collect();
        assert_eq!(
            plan("a", "T", &["a"], &leases, &all, 10_000),
            vec![Step::Renew { shard: 0 }]
        );
        // The same address after a restart (it knows of no shard): every lease again, next epoch.
        let again = plan("a", "T", &["a"], &leases, &none, 10_000);
        assert_eq!(again.len(), SHARDS as usize);
        assert!(
            again
                .iter()
                .all(|s| matches!(s, Step::Acquire { epoch: 2, .. }))
        );
    }

    #[test]
    fn a_new_host_waits_for_the_release_or_the_expiry_plus_margin() {
        let now = 100_000;
        let held: BTreeMap<u32, SeenLease> = (0..SHARDS)
            .map(|s| (s, lease(Some("a"), 4, now + 4_000)))
            .collect();
        // b is live: a releases what b wins; b acquires nothing while a holds it.
        let (all, none): (BTreeSet<u32>, BTreeSet<u32>) = ((0..SHARDS).collect(), BTreeSet::new());
        let a = plan("a", "T", &["a", "b"], &held, &all, now);
        let b = plan("b", "T", &["a", "b"], &held, &none, now);
        assert!(a.iter().all(|s| matches!(s, Step::Release { .. })));
        assert!(!a.is_empty() && b.is_empty());
        // Released: b takes it with the next epoch.
        let Step::Release { shard } = a[0] else {
            unreachable!()
        };
        let mut released = held.clone();
        released.insert(shard, lease(None, 4, 0));
        assert!(
            plan("b", "T", &["a", "b"], &released, &none, now)
                .contains(&Step::Acquire { shard, epoch: 5 })
        );
        // a died: its lease expired, but b waits out the margin too.
        let expired: BTreeMap<u32, SeenLease> = (0..SHARDS)
            .map(|s| (s, lease(Some("a"), 4, now - 500)))
            .collect();
        assert!(plan("b", "T", &["b"], &expired, &none, now).is_empty());
        let later = plan("b", "T", &["b"], &expired, &none, now + MARGIN_MS);
        assert_eq!(later.len(), SHARDS as usize);
    }

    #[test]
    fn usable_and_takeable_leave_a_gap_between_them() {
        let l = lease(Some("a"), 1, 10_000).record;
        assert!(l.usable_by("a", 8_999) && !l.usable_by("a", 9_000) && !l.usable_by("b", 0));
        assert!(!l.takeable(11_000) && l.takeable(11_001));
    }

    #[test]
    fn live_hosts_are_fresh_and_host_the_type() {
        let hosts = vec![
            HostRecord {
                address: "a".into(),
                app_id: "x".into(),
                types: vec!["T".into()],
                heartbeat_ms: 10_000,
            },
            HostRecord {
                address: "b".into(),
                app_id: "x".into(),
                types: vec!["U".into()],
                heartbeat_ms: 10_000,
            },
            HostRecord {
                address: "c".into(),
                app_id: "x".into(),
                types: vec!["T".into()],
                heartbeat_ms: 1_000,
            },
        ];
        assert_eq!(live_hosts(&hosts, "T", 12_000), vec!["a"]);
    }
}
