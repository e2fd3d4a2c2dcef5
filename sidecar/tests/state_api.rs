//! The state API over HTTP against real sidecar processes, for every store. The same scenario
//! runs per store; Redis and PostgreSQL servers are started by the tests themselves.

mod common;

use common::{client, json_of, manifest, write_component};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

fn start(dir: &std::path::Path, store_yaml: &str) -> Sidecar {
    let resources = dir.join("resources");
    write_component(&resources, "store.yaml", store_yaml);
    SidecarBuilder::new(BIN, "stateapp", dir)
        .resources(&resources)
        .start()
}

async fn save(s: &Sidecar, body: Value) -> reqwest::Response {
    client()
        .post(s.url("/v1.0/state/statestore"))
        .json(&body)
        .send()
        .await
        .expect("save")
}

async fn etag(s: &Sidecar, key: &str) -> String {
    let r = client()
        .get(s.url(&format!("/v1.0/state/statestore/{key}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200, "{key} should exist");
    r.headers()["etag"].to_str().expect("etag text").to_owned()
}

async fn assert_error(r: reqwest::Response, status: u16, code: &str) {
    assert_eq!(r.status().as_u16(), status);
    let body = json_of(r).await;
    assert_eq!(body["errorCode"], code, "{body}");
}

/// Every route, every status code of the reference's tables.
async fn scenario(s: &Sidecar) {
    let c = client();
    let url = |p: &str| s.url(p);
    // Save and get.
    let r = save(
        s,
        json!([{"key": "a", "value": {"n": 1}}, {"key": "b", "value": "text"}]),
    )
    .await;
    assert_eq!(r.status().as_u16(), 204);
    let r = c
        .get(url("/v1.0/state/statestore/a"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().contains_key("etag"));
    assert_eq!(json_of(r).await, json!({"n": 1}));
    let r = c
        .get(url("/v1.0/state/statestore/missing"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 204);
    assert!(r.bytes().await.expect("body").is_empty());
    assert_eq!(save(s, json!([])).await.status().as_u16(), 204);

    // ETags: stale 409, malformed 400, current 204; first-write on an existing key 409.
    let first = etag(s, "a").await;
    assert_eq!(
        save(s, json!([{"key": "a", "value": 2, "etag": first}]))
            .await
            .status()
            .as_u16(),
        204
    );
    assert_error(
        save(s, json!([{"key": "a", "value": 3, "etag": first}])).await,
        409,
        "ERR_STATE_SAVE",
    )
    .await;
    assert_error(
        save(s, json!([{"key": "a", "value": 3, "etag": "x!"}])).await,
        400,
        "ERR_STATE_SAVE",
    )
    .await;
    let fw = json!([{"key": "a", "value": 4, "options": {"concurrency": "first-write"}}]);
    assert_error(save(s, fw).await, 409, "ERR_STATE_SAVE").await;

    // Delete: stale If-Match 409, bad 400, current 204, missing key 204.
    let r = c
        .delete(url("/v1.0/state/statestore/a"))
        .header("if-match", first.as_str())
        .send()
        .await
        .expect("delete");
    assert_error(r, 409, "ERR_STATE_DELETE").await;
    let r = c
        .delete(url("/v1.0/state/statestore/a"))
        .header("if-match", "")
        .send()
        .await
        .expect("delete");
    assert_error(r, 400, "ERR_STATE_DELETE").await;
    let current = etag(s, "a").await;
    let r = c
        .delete(url("/v1.0/state/statestore/a"))
        .header("if-match", current.as_str())
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
    let r = c
        .delete(url("/v1.0/state/statestore/a"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);

    // Bulk get, order kept, missing keys without data.
    let r = c
        .post(url("/v1.0/state/statestore/bulk"))
        .json(&json!({"keys": ["b", "a"], "parallelism": 2}))
        .send()
        .await
        .expect("bulk");
    assert_eq!(r.status().as_u16(), 200);
    let items = json_of(r).await;
    assert_eq!(items[0]["key"], "b");
    assert_eq!(items[0]["data"], "text");
    assert!(items[0]["etag"].is_string());
    assert_eq!(items[1], json!({"key": "a"}));
    let r = c
        .put(url("/v1.0/state/statestore/bulk"))
        .json(&json!({"keys": []}))
        .send()
        .await
        .expect("bulk");
    assert_eq!(json_of(r).await, json!([]));

    // Transactions: all or nothing; an etag conflict is 500 ERR_STATE_TRANSACTION in Dapr.
    let tx = |ops: Value| {
        c.post(url("/v1.0/state/statestore/transaction"))
            .json(&json!({"operations": ops}))
            .send()
    };
    let r = tx(json!([{"operation": "upsert", "request": {"key": "t1", "value": 1}}, {"operation": "delete", "request": {"key": "b"}}])).await.expect("tx");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        c.get(url("/v1.0/state/statestore/b"))
            .send()
            .await
            .expect("get")
            .status()
            .as_u16(),
        204
    );
    let r = tx(json!([{"operation": "upsert", "request": {"key": "t2", "value": 1}}, {"operation": "upsert", "request": {"key": "t1", "value": 9, "etag": "1"}}])).await.expect("tx");
    assert_error(r, 500, "ERR_STATE_TRANSACTION").await;
    assert_eq!(
        c.get(url("/v1.0/state/statestore/t2"))
            .send()
            .await
            .expect("get")
            .status()
            .as_u16(),
        204,
        "aborted tx wrote t2"
    );
    let r = tx(json!([{"operation": "merge", "request": {"key": "t1"}}]))
        .await
        .expect("tx");
    assert_error(r, 400, "ERR_NOT_SUPPORTED_STATE_OPERATION").await;

    // Bad keys and stores.
    assert_error(
        save(s, json!([{"key": "a||b", "value": 1}])).await,
        400,
        "ERR_MALFORMED_REQUEST",
    )
    .await;
    assert_error(
        save(s, json!([{"value": 1}])).await,
        400,
        "ERR_MALFORMED_REQUEST",
    )
    .await;
    let r = c
        .get(url("/v1.0/state/nostore/k"))
        .send()
        .await
        .expect("get");
    assert_error(r, 400, "ERR_STATE_STORE_NOT_FOUND").await;

    // TTL: per item and as a query parameter; the expiry is reported; then the key is gone.
    let r = save(
        s,
        json!([{"key": "ttl", "value": 1, "metadata": {"ttlInSeconds": "1"}}]),
    )
    .await;
    assert_eq!(r.status().as_u16(), 204);
    let r = c
        .post(url("/v1.0/state/statestore?metadata.ttlInSeconds=1"))
        .json(&json!([{"key": "ttl2", "value": 1}]))
        .send()
        .await
        .expect("save");
    assert_eq!(r.status().as_u16(), 204);
    let r = c
        .get(url("/v1.0/state/statestore/ttl"))
        .send()
        .await
        .expect("get");
    assert!(
        r.headers().contains_key("metadata.ttlexpiretime"),
        "{:?}",
        r.headers()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    for key in ["ttl", "ttl2"] {
        while c
            .get(url(&format!("/v1.0/state/statestore/{key}")))
            .send()
            .await
            .expect("get")
            .status()
            .as_u16()
            != 204
        {
            assert!(Instant::now() < deadline, "{key} never expired");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// 50 clients doing read-modify-write with ETags until 1 000 increments succeed.
async fn contention(s: &Sidecar) {
    let c = client();
    assert_eq!(
        save(s, json!([{"key": "counter", "value": 0}]))
            .await
            .status()
            .as_u16(),
        204
    );
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let conflicts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (c, done, conflicts, get, post) = (
            c.clone(),
            done.clone(),
            conflicts.clone(),
            s.url("/v1.0/state/statestore/counter"),
            s.url("/v1.0/state/statestore"),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                // Claim a slot first, so exactly 1 000 increments succeed in total.
                let claimed = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if claimed >= 1000 {
                    return;
                }
                loop {
                    let r = c.get(&get).send().await.expect("get");
                    let tag = r.headers()["etag"].to_str().expect("etag").to_owned();
                    let n: u64 = r.json().await.expect("number");
                    let r = c
                        .post(&post)
                        .json(&json!([{"key": "counter", "value": n + 1, "etag": tag}]))
                        .send()
                        .await
                        .expect("save");
                    match r.status().as_u16() {
                        204 => break,
                        409 => {
                            conflicts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        other => panic!(
                            "unexpected status {other} under contention: {}",
                            r.text().await.unwrap_or_default()
                        ),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let r = c
        .get(s.url("/v1.0/state/statestore/counter"))
        .send()
        .await
        .expect("get");
    assert_eq!(json_of(r).await, json!(1000));
    println!(
        "contention: 1000 increments, {} conflicts (409)",
        conflicts.load(std::sync::atomic::Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(
        dir.path(),
        &manifest(&Component::test("statestore", "state.in-memory")),
    );
    scenario(&s).await;
    contention(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_persists_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite");
    let yaml = manifest(
        &Component::test("statestore", "state.sqlite")
            .with_metadata("connectionString", &db.to_string_lossy()),
    );
    let s = start(dir.path(), &yaml);
    scenario(&s).await;
    contention(&s).await;
    drop(s);
    let s = SidecarBuilder::new(BIN, "stateapp", dir.path())
        .resources(&dir.path().join("resources"))
        .start();
    let r = client()
        .get(s.url("/v1.0/state/statestore/counter"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        json_of(r).await,
        json!(1000),
        "state must survive a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_default_statestore_needs_no_resources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SidecarBuilder::new(BIN, "defaults", dir.path()).start();
    let r = save(&s, json!([{"key": "k", "value": [1, 2]}])).await;
    assert_eq!(r.status().as_u16(), 204);
    let r = client()
        .get(s.url("/v1.0/state/statestore/k"))
        .send()
        .await
        .expect("get");
    assert_eq!(json_of(r).await, json!([1, 2]));
    assert!(dir.path().join("state.sqlite").exists());
    let md = json_of(
        client()
            .get(s.url("/v1.0/metadata"))
            .send()
            .await
            .expect("metadata"),
    )
    .await;
    assert_eq!(md["components"][0]["name"], "statestore");
    assert_eq!(
        md["components"][0]["capabilities"],
        json!(["ETAG", "TRANSACTIONAL", "TTL", "ACTOR"]),
        "the embedded store is the actor state store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_shares_daprs_layout() {
    let redis = tandem_sidecar::testing::RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = manifest(
        &Component::test("statestore", "state.redis")
            .with_metadata("redisHost", &redis.addr())
            .with_metadata("actorStateStore", "true"),
    );
    let s = start(dir.path(), &yaml);
    scenario(&s).await;
    contention(&s).await;
    // The key is `appid||key`, a hash with Dapr's `data` and `version` fields.
    let hget = |field: &str| {
        let out = std::process::Command::new("redis-cli")
            .args([
                "-p",
                &redis.port().to_string(),
                "HGET",
                "stateapp||counter",
                field,
            ])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(hget("data"), "1000");
    assert_eq!(hget("version"), etag(&s, "counter").await);
    let md = json_of(
        client()
            .get(s.url("/v1.0/metadata"))
            .send()
            .await
            .expect("metadata"),
    )
    .await;
    assert_eq!(
        md["components"][0]["capabilities"],
        json!(["ETAG", "TRANSACTIONAL", "TTL", "ACTOR"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store() {
    let pg = tandem_sidecar::testing::PostgresServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = manifest(
        &Component::test("statestore", "state.postgresql")
            .with_metadata("connectionString", &pg.connection_string()),
    );
    let s = start(dir.path(), &yaml);
    scenario(&s).await;
    contention(&s).await;
}
