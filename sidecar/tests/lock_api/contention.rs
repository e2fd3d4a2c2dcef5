//! Mutual exclusion under contention: 50 clients spread over three sidecars (replicas of one
//! app) sharing one `lock.redis` each take one lock `ROUNDS` times: lock, append
//! (owner, start, end) to a log kept in the test, unlock. No two holds in the log may overlap,
//! nobody may find the critical section occupied, and every acquisition must be counted.

use super::http;
use super::{redis_lock, try_lock, unlock};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_sidecar::testing::RedisServer;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const CLIENTS: usize = 50;
const SIDECARS: usize = 3;
const ROUNDS: usize = 4;

/// One hold of the lock, as its holder saw it.
#[derive(Debug, Clone)]
struct Hold {
    owner: String,
    start: Instant,
    end: Instant,
}

/// What every client shares: the log and an occupancy counter of the critical section.
#[derive(Default)]
struct Shared {
    log: Mutex<Vec<Hold>>,
    inside: AtomicUsize,
    refused: AtomicUsize,
}

/// Replicas of the app `locker`, each with its own data dir, all on `redis`.
fn replicas(root: &std::path::Path, redis: &RedisServer) -> Vec<Sidecar> {
    let resources = root.join("resources");
    super::common::write_component(
        &resources,
        "lock.yaml",
        &super::common::manifest(&redis_lock("redislock", redis)),
    );
    (0..SIDECARS)
        .map(|i| {
            SidecarBuilder::new(super::BIN, "locker", &root.join(format!("replica-{i}")))
                .resources(&resources)
                .start()
        })
        .collect()
}

/// One client: `ROUNDS` holds of the lock through `sidecar`.
async fn client_rounds(sidecar: Arc<Sidecar>, owner: String, shared: Arc<Shared>) {
    for round in 0..ROUNDS {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut pause = Duration::from_millis(5);
        while !try_lock(&sidecar, "redislock", "the-lock", &owner, 30).await {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            assert!(
                Instant::now() < deadline,
                "{owner} starved in round {round}"
            );
            // Exponential backoff with jitter, as a real client retries: the 49 waiting
            // clients must not drown the sidecars in refused tries.
            let jitter = rand::random_range(0.5..1.5);
            tokio::time::sleep(pause.mul_f64(jitter)).await;
            pause = (pause * 2).min(Duration::from_millis(80));
        }
        let start = Instant::now();
        let before = shared.inside.fetch_add(1, Ordering::SeqCst);
        assert_eq!(before, 0, "{owner} entered while someone was inside");
        // The critical section: a little work while holding the lock.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let end = Instant::now();
        shared
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Hold {
                owner: owner.clone(),
                start,
                end,
            });
        shared.inside.fetch_sub(1, Ordering::SeqCst);
        assert_eq!(
            unlock(&sidecar, "redislock", "the-lock", &owner).await,
            0,
            "{owner} held the lock it unlocks"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_clients_on_three_sidecars_never_hold_the_lock_together() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let sidecars: Vec<Arc<Sidecar>> = replicas(dir.path(), &redis)
        .into_iter()
        .map(Arc::new)
        .collect();
    // Warm every connection so the first round measures the lock, not connection set-up.
    for s in &sidecars {
        let r = http()
            .get(s.url("/v1.0/metadata"))
            .send()
            .await
            .expect("metadata");
        assert_eq!(r.status().as_u16(), 200);
    }
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let sidecar = Arc::clone(&sidecars[i % SIDECARS]);
            let owner = format!("client-{i}-{}", "x".repeat(i % 7));
            tokio::spawn(client_rounds(sidecar, owner, Arc::clone(&shared)))
        })
        .collect();
    for task in tasks {
        task.await.expect("a client failed");
    }
    let took = started.elapsed();

    let mut log = shared.log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(log.len(), CLIENTS * ROUNDS, "every acquisition is counted");
    log.sort_by_key(|h| h.start);
    for pair in log.windows(2) {
        assert!(
            pair[1].start >= pair[0].end,
            "{} started inside {}'s hold",
            pair[1].owner,
            pair[0].owner
        );
    }
    for i in 0..CLIENTS {
        let prefix = format!("client-{i}-");
        let mine = log.iter().filter(|h| h.owner.starts_with(&prefix)).count();
        assert_eq!(mine, ROUNDS, "{prefix}");
    }
    let refused = shared.refused.load(Ordering::Relaxed);
    assert!(refused > 0, "50 clients never contended");
    println!(
        "contention: {} acquisitions by {CLIENTS} clients over {SIDECARS} sidecars in {took:?}, \
         {refused} refused tries, no overlap",
        log.len()
    );
}
