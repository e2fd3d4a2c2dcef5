//! Every answer of `/v1.0-alpha1/lock` and `/unlock` over HTTP, in `lock.redis` and
//! `lock.in-memory`: the statuses, daprd's request checks in daprd's order, store failures, and
//! the keys daprd writes to Redis; and a hold abandoned by its owner passing on at its expiry.

use super::common::json_of;
use super::{
    assert_error, http, post_lock, post_unlock, redis_cli, redis_lock, sidecar, try_lock, unlock,
};
use serde_json::json;
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::RedisServer;
use tandem_sidecar::testing::sidecar::Sidecar;

/// Lock, contention, and the three unlock answers a store gives.
async fn statuses(s: &Sidecar, store: &str) {
    assert!(try_lock(s, store, "order-1", "alice", 60).await);
    assert!(
        !try_lock(s, store, "order-1", "bob", 60).await,
        "alice holds it"
    );
    assert!(
        !try_lock(s, store, "order-1", "alice", 60).await,
        "not reentrant"
    );
    assert!(
        try_lock(s, store, "order-2", "bob", 60).await,
        "resources are apart"
    );
    assert_eq!(
        unlock(s, store, "order-1", "bob").await,
        2,
        "LOCK_BELONGS_TO_OTHERS"
    );
    assert_eq!(unlock(s, store, "order-1", "alice").await, 0, "SUCCESS");
    assert_eq!(
        unlock(s, store, "order-1", "alice").await,
        1,
        "LOCK_DOES_NOT_EXIST"
    );
    assert!(try_lock(s, store, "order-1", "bob", 60).await, "free again");
    assert_eq!(unlock(s, store, "order-1", "bob").await, 0);
    assert_eq!(unlock(s, store, "order-2", "bob").await, 0);

    // The answers always carry their field, the status as a number.
    let r = post_lock(
        s,
        store,
        json!({"resourceId": "shape", "lockOwner": "a", "expiryInSeconds": 5}),
    )
    .await;
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(json_of(r).await, json!({"success": true}));
    let r = post_unlock(s, store, json!({"resourceId": "shape", "lockOwner": "a"})).await;
    assert_eq!(json_of(r).await, json!({"status": 0}));
    // daprd reads the body with protojson: the proto field names work too.
    let r = post_lock(
        s,
        store,
        json!({"resource_id": "snake", "lock_owner": "a", "expiry_in_seconds": 5, "extra": 1}),
    )
    .await;
    assert_eq!(json_of(r).await, json!({"success": true}));
    assert_eq!(unlock(s, store, "snake", "a").await, 0);
}

/// daprd's request checks: 400 `ERR_MALFORMED_REQUEST` for a missing resource or owner or an
/// expiry ≤ 0, 400 `ERR_LOCK_STORE_NOT_FOUND`, 500 for a resource id daprd cannot key.
async fn request_errors(s: &Sidecar, store: &str) {
    let full = json!({"resourceId": "r", "lockOwner": "o", "expiryInSeconds": 10});
    let without = |field: &str| {
        let mut body = full.clone();
        body[field] = json!("");
        body
    };
    for (body, says) in [
        (without("resourceId"), "ResourceId is empty"),
        (without("lockOwner"), "LockOwner is empty"),
        (
            json!({"resourceId": "r", "lockOwner": "o"}),
            "ExpiryInSeconds",
        ),
        (
            json!({"resourceId": "r", "lockOwner": "o", "expiryInSeconds": -1}),
            "ExpiryInSeconds",
        ),
    ] {
        let message = assert_error(
            post_lock(s, store, body).await,
            400,
            "ERR_MALFORMED_REQUEST",
        )
        .await;
        assert!(message.contains(says), "{message}");
    }
    for body in [json!({"lockOwner": "o"}), json!({"resourceId": "r"})] {
        assert_error(
            post_unlock(s, store, body).await,
            400,
            "ERR_MALFORMED_REQUEST",
        )
        .await;
    }
    let r = http()
        .post(s.url(&format!("/v1.0-alpha1/lock/{store}")))
        .body("{not json")
        .send()
        .await
        .expect("lock");
    assert_error(r, 400, "ERR_MALFORMED_REQUEST").await;
    let r = http()
        .post(s.url(&format!("/v1.0-alpha1/unlock/{store}")))
        .send()
        .await
        .expect("unlock");
    assert_error(r, 400, "ERR_MALFORMED_REQUEST").await;

    let message = assert_error(
        post_lock(s, "nope", full.clone()).await,
        400,
        "ERR_LOCK_STORE_NOT_FOUND",
    )
    .await;
    assert_eq!(message, "lock store nope not found");
    let r = post_unlock(s, "nope", json!({"resourceId": "r", "lockOwner": "o"})).await;
    assert_error(r, 400, "ERR_LOCK_STORE_NOT_FOUND").await;

    let bad = json!({"resourceId": "a||b", "lockOwner": "o", "expiryInSeconds": 10});
    assert_error(post_lock(s, store, bad).await, 500, "ERR_TRY_LOCK").await;
    let bad = json!({"resourceId": "a||b", "lockOwner": "o"});
    assert_error(post_unlock(s, store, bad).await, 500, "ERR_UNLOCK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_and_request_error_in_both_stores() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sidecar(
        dir.path(),
        "lockapp",
        &[
            redis_lock("redislock", &redis),
            Component::test("memlock", "lock.in-memory"),
            redis_lock("sharedlock", &redis).with_metadata("keyPrefix", "none"),
        ],
    );
    for store in ["redislock", "memlock"] {
        statuses(&s, store).await;
        request_errors(&s, store).await;
    }

    // Dapr's keys: `lock||<app id>||<resource>` by default, `lock||<resource>` with
    // `keyPrefix: none`; the value is the owner, with Redis's expiry.
    assert!(try_lock(&s, "redislock", "order-9", "carol", 60).await);
    assert_eq!(
        redis_cli(&redis, &["GET", "lock||lockapp||order-9"]),
        "carol"
    );
    let ttl: i64 = redis_cli(&redis, &["PTTL", "lock||lockapp||order-9"])
        .parse()
        .expect("a PTTL");
    assert!((1..=60_000).contains(&ttl), "{ttl}");
    assert!(
        try_lock(&s, "sharedlock", "order-9", "dave", 60).await,
        "another key"
    );
    assert_eq!(redis_cli(&redis, &["GET", "lock||order-9"]), "dave");

    // A key that holds something other than a lock: unlock answers INTERNAL_ERROR (3) and
    // leaves it alone.
    redis_cli(&redis, &["HSET", "lock||lockapp||odd", "f", "v"]);
    assert_eq!(unlock(&s, "redislock", "odd", "carol").await, 3);
    assert_eq!(redis_cli(&redis, &["TYPE", "lock||lockapp||odd"]), "hash");

    // daprd serves the lock routes on POST only: PUT is no lock call.
    let r = http()
        .put(s.url("/v1.0-alpha1/lock/redislock"))
        .json(&json!({"resourceId": "r", "lockOwner": "o", "expiryInSeconds": 5}))
        .send()
        .await
        .expect("put");
    assert_ne!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_lock_store_the_api_is_not_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sidecar(
        dir.path(),
        "nolocks",
        &[Component::test("statestore", "state.in-memory")],
    );
    let full = json!({"resourceId": "r", "lockOwner": "o", "expiryInSeconds": 10});
    let message = assert_error(
        post_lock(&s, "statestore", full).await,
        500,
        "ERR_LOCK_STORE_NOT_CONFIGURED",
    )
    .await;
    assert_eq!(message, "lock store is not configured");
    let r = post_unlock(&s, "any", json!({"resourceId": "r", "lockOwner": "o"})).await;
    assert_error(r, 500, "ERR_LOCK_STORE_NOT_CONFIGURED").await;
    // daprd checks the expiry first.
    let r = post_lock(&s, "any", json!({"resourceId": "r", "lockOwner": "o"})).await;
    assert_error(r, 400, "ERR_MALFORMED_REQUEST").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_answer_is_err_try_lock_and_err_unlock() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sidecar(dir.path(), "lockdown", &[redis_lock("redislock", &redis)]);
    assert!(try_lock(&s, "redislock", "r", "o", 60).await);
    redis.kill();
    let full = json!({"resourceId": "r", "lockOwner": "o", "expiryInSeconds": 10});
    let message = assert_error(post_lock(&s, "redislock", full).await, 500, "ERR_TRY_LOCK").await;
    assert!(
        message.starts_with("failed to try acquiring lock: "),
        "{message}"
    );
    let r = post_unlock(
        &s,
        "redislock",
        json!({"resourceId": "r", "lockOwner": "o"}),
    )
    .await;
    let message = assert_error(r, 500, "ERR_UNLOCK").await;
    assert!(message.starts_with("failed to release lock: "), "{message}");
}

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
