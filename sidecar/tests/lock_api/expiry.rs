//! A hold lapses at its expiry: an owner that takes a lock for 1 s and never unlocks does not
//! block the next owner for longer, in `lock.redis` and in `lock.in-memory`.

use super::{redis_lock, sidecar, try_lock, unlock};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::RedisServer;
use tandem_sidecar::testing::sidecar::Sidecar;

/// `alice` takes `resource` for 1 s and walks away; `bob` polls until it is his.
async fn abandoned_hold_expires(s: &Sidecar, store: &str) {
    let taken = Instant::now();
    assert!(try_lock(s, store, "job", "alice", 1).await);
    assert!(
        !try_lock(s, store, "job", "bob", 60).await,
        "alice holds it"
    );
    let deadline = taken + Duration::from_secs(5);
    while !try_lock(s, store, "job", "bob", 60).await {
        assert!(
            Instant::now() < deadline,
            "{store}: alice's hold never lapsed"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let waited = taken.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "{store}: bob got it after {waited:?}, before alice's second was up"
    );
    assert_eq!(unlock(s, store, "job", "alice").await, 2, "alice lost it");
    assert_eq!(unlock(s, store, "job", "bob").await, 0);
    println!("{store}: the abandoned 1 s hold went to the next owner after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_hold_goes_to_the_next_owner_after_its_expiry() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sidecar(
        dir.path(),
        "expiring",
        &[
            redis_lock("redislock", &redis),
            Component::test("memlock", "lock.in-memory"),
        ],
    );
    for store in ["redislock", "memlock"] {
        abandoned_hold_expires(&s, store).await;
    }
}
