//! Where actor things live in the actor state store, and which shard an actor id belongs to.
//! Pure functions; the layouts are part of Tandem's on-disk contract.
//!
//! - actor state: `appId||type||id||key` (Dapr's layout, so existing data and external readers
//!   keep working);
//! - placement: `tandem||placement||host||<address>` (one record per live host) and
//!   `tandem||placement||lease||<type>||<shard>` (who owns a shard, at which epoch);
//! - the fence of a shard: `tandem||placement||fence||<type>||<shard>`, whose ETag every actor
//!   state write and reminder update of that shard is conditional on;
//! - reminders: `tandem||reminder||<type>||<shard>||<id>||<name>`, one record per reminder, so
//!   the owner of a shard lists exactly its own.

/// Dapr's separator.
pub const SEP: &str = "||";
/// Shards per actor type: the unit of ownership, leasing and hand-off.
pub const SHARDS: u32 = 32;

const PLACEMENT: &str = "tandem||placement||";
const REMINDERS: &str = "tandem||reminder||";

/// FNV-1a, 64 bit: stable across builds and machines (every sidecar must agree).
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash = (hash ^ 0x1f).wrapping_mul(0x0000_0100_0000_01b3);
        }
        for byte in part.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // A final avalanche: FNV's low bits are weak for short inputs.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

pub fn shard_of(actor_type: &str, actor_id: &str) -> u32 {
    (stable_hash(&[actor_type, actor_id]) % u64::from(SHARDS)) as u32
}

/// Rendezvous hashing: the host among `hosts` that owns `(actor_type, shard)`. Adding or
/// removing a host moves only the shards that host wins or held.
pub fn owner_of<'a>(actor_type: &str, shard: u32, hosts: &[&'a str]) -> Option<&'a str> {
    let shard = shard.to_string();
    hosts
        .iter()
        .copied()
        .max_by_key(|host| (stable_hash(&[host, actor_type, &shard]), *host))
}

pub fn state_key(app_id: &str, actor_type: &str, actor_id: &str, key: &str) -> String {
    format!("{app_id}{SEP}{actor_type}{SEP}{actor_id}{SEP}{key}")
}

pub fn host_prefix() -> String {
    format!("{PLACEMENT}host{SEP}")
}

pub fn host_key(address: &str) -> String {
    format!("{PLACEMENT}host{SEP}{address}")
}

pub fn lease_prefix(actor_type: &str) -> String {
    format!("{PLACEMENT}lease{SEP}{actor_type}{SEP}")
}

pub fn lease_key(actor_type: &str, shard: u32) -> String {
    format!("{}{shard:03}", lease_prefix(actor_type))
}

pub fn fence_key(actor_type: &str, shard: u32) -> String {
    format!("{PLACEMENT}fence{SEP}{actor_type}{SEP}{shard:03}")
}

pub fn reminder_shard_prefix(actor_type: &str, shard: u32) -> String {
    format!("{REMINDERS}{actor_type}{SEP}{shard:03}{SEP}")
}

pub fn reminder_actor_prefix(actor_type: &str, actor_id: &str) -> String {
    format!(
        "{}{actor_id}{SEP}",
        reminder_shard_prefix(actor_type, shard_of(actor_type, actor_id))
    )
}

pub fn reminder_key(actor_type: &str, actor_id: &str, name: &str) -> String {
    format!("{}{name}", reminder_actor_prefix(actor_type, actor_id))
}

/// Dapr's rule for actor types, ids and names: not empty, no separator, no path tricks.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(SEP)
        && !name.contains('/')
        && name != "."
        && name != ".."
        && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn layouts_are_daprs_and_tandems() {
        assert_eq!(state_key("app", "Cat", "7", "food"), "app||Cat||7||food");
        assert_eq!(lease_key("Cat", 3), "tandem||placement||lease||Cat||003");
        assert!(lease_key("Cat", 3).starts_with(&lease_prefix("Cat")));
        assert!(
            reminder_key("Cat", "7", "r")
                .starts_with(&reminder_shard_prefix("Cat", shard_of("Cat", "7")))
        );
        assert!(!valid_name("a||b") && !valid_name("") && !valid_name("..") && !valid_name("a/b"));
        assert!(valid_name("my-actor.1"));
    }

    #[test]
    fn ids_spread_over_shards() {
        let mut counts = HashMap::new();
        for i in 0..32_000 {
            *counts
                .entry(shard_of("Counter", &i.to_string()))
                .or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), SHARDS as usize);
        assert!(
            counts.values().all(|c| (700..1300).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn rendezvous_moves_only_what_the_new_host_wins() {
        let before = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"];
        let after = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"];
        let mut moved = 0;
        for shard in 0..SHARDS {
            let (old, new) = (
                owner_of("T", shard, &before).expect("test value"),
                owner_of("T", shard, &after).expect("test value"),
            );
            if old != new {
                assert_eq!(new, "127.0.0.1:4", "a shard moved between old hosts");
                moved += 1;
            }
        }
        assert!((2..=16).contains(&moved), "moved {moved}");
        assert_eq!(owner_of("T", 0, &[]), None);
    }
}
