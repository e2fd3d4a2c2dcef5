//! The distributed lock API (alpha1) against real sidecar processes and a real `redis-server`:
//! every status and error over HTTP ([`http`]), the same over gRPC with the `dapr` crate's
//! generated client ([`grpc`]), mutual exclusion of 50 clients over three sidecars sharing one
//! `lock.redis` ([`contention`]), and holds that lapse at their expiry.

#[path = "../common/mod.rs"]
mod common;
mod contention;
mod grpc;
mod http;

use common::{json_of, manifest, write_component};
use serde_json::{Value, json};
use std::path::Path;
use tandem_crds::Component;
use tandem_sidecar::testing::RedisServer;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

pub const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// A `lock.redis` component named `name` on `redis`.
pub fn redis_lock(name: &str, redis: &RedisServer) -> Component {
    Component::test(name, "lock.redis").with_metadata("redisHost", &redis.addr())
}

/// A sidecar for `app_id` with `components`, its data and resources under `dir`.
pub fn sidecar(dir: &Path, app_id: &str, components: &[Component]) -> Sidecar {
    let resources = dir.join("resources");
    for (i, component) in components.iter().enumerate() {
        write_component(&resources, &format!("c{i}.yaml"), &manifest(component));
    }
    SidecarBuilder::new(BIN, app_id, &dir.join("data"))
        .resources(&resources)
        .start()
}

/// One HTTP client for every request of the binary (connections are reused, as an app's are).
pub fn http() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(common::client)
}

/// `POST /v1.0-alpha1/lock/{store}` with `body`.
pub async fn post_lock(s: &Sidecar, store: &str, body: Value) -> reqwest::Response {
    http()
        .post(s.url(&format!("/v1.0-alpha1/lock/{store}")))
        .json(&body)
        .send()
        .await
        .expect("lock request")
}

/// `POST /v1.0-alpha1/unlock/{store}` with `body`.
pub async fn post_unlock(s: &Sidecar, store: &str, body: Value) -> reqwest::Response {
    http()
        .post(s.url(&format!("/v1.0-alpha1/unlock/{store}")))
        .json(&body)
        .send()
        .await
        .expect("unlock request")
}

/// Tries to take `resource` for `owner`; whether it was taken (the answer must be a 200).
pub async fn try_lock(s: &Sidecar, store: &str, resource: &str, owner: &str, secs: i64) -> bool {
    let body = json!({"resourceId": resource, "lockOwner": owner, "expiryInSeconds": secs});
    let r = post_lock(s, store, body).await;
    assert_eq!(r.status().as_u16(), 200, "lock {resource} for {owner}");
    let answer = json_of(r).await;
    answer["success"]
        .as_bool()
        .unwrap_or_else(|| panic!("no success field: {answer}"))
}

/// Unlocks `resource` for `owner`; the status number (the answer must be a 200).
pub async fn unlock(s: &Sidecar, store: &str, resource: &str, owner: &str) -> i64 {
    let r = post_unlock(
        s,
        store,
        json!({"resourceId": resource, "lockOwner": owner}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200, "unlock {resource} for {owner}");
    let answer = json_of(r).await;
    answer["status"]
        .as_i64()
        .unwrap_or_else(|| panic!("no numeric status: {answer}"))
}

/// Asserts an error answer's status and `errorCode`; returns its message.
pub async fn assert_error(r: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(r.status().as_u16(), status, "expected {code}");
    let body = json_of(r).await;
    assert_eq!(body["errorCode"], code, "{body}");
    body["message"].as_str().unwrap_or_default().to_owned()
}

/// `redis-cli` against `redis`, its output trimmed.
pub fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
