//! The state query API (alpha1) against real sidecar processes, for each store that answers
//! queries (`state.in-memory`, `state.sqlite`, `state.postgresql` on a PostgreSQL started by the
//! test): the HTTP route ([`http`]) and `QueryStateAlpha1` through the `dapr` crate's generated
//! client ([`grpc`]), the same answers from every store, another app's keys never visible, and
//! `state.redis` refusing queries as daprd does.

#[path = "../common/mod.rs"]
mod common;
mod grpc;
mod http;

use common::{manifest, write_component};
use std::path::Path;
use tandem_crds::Component;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tandem_sidecar::testing::{PostgresServer, RedisServer};

pub const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// One HTTP client for every request of the binary.
pub fn http_client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(common::client)
}

/// A sidecar for `app_id` whose `statestore` is `store`; data and resources under `dir/app_id`.
fn sidecar(dir: &Path, app_id: &str, store: &Component) -> Sidecar {
    let home = dir.join(app_id);
    let resources = home.join("resources");
    write_component(&resources, "store.yaml", &manifest(store));
    SidecarBuilder::new(BIN, app_id, &home.join("data"))
        .resources(&resources)
        .start()
}

/// The HTTP then the gRPC scenario on `people`, with `intruder` (another app on the same
/// store, when the store is shared) writing rows that must stay invisible to it.
async fn scenarios(people: &Sidecar, intruder: Option<&Sidecar>) {
    http::scenario(people, intruder).await;
    grpc::scenario(people).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Component::test("statestore", "state.in-memory");
    let people = sidecar(dir.path(), "people", &store);
    scenarios(&people, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_shared_by_two_apps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("shared.sqlite");
    let store = Component::test("statestore", "state.sqlite")
        .with_metadata("connectionString", &db.to_string_lossy());
    let people = sidecar(dir.path(), "people", &store);
    let intruder = sidecar(dir.path(), "intruder", &store);
    scenarios(&people, Some(&intruder)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_shared_by_two_apps() {
    let pg = PostgresServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Component::test("statestore", "state.postgresql")
        .with_metadata("connectionString", &pg.connection_string());
    let people = sidecar(dir.path(), "people", &store);
    let intruder = sidecar(dir.path(), "intruder", &store);
    scenarios(&people, Some(&intruder)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_does_not_support_queries() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Component::test("statestore", "state.redis").with_metadata("redisHost", &redis.addr());
    let s = sidecar(dir.path(), "people", &store);
    http::not_supported(&s).await;
    grpc::not_supported(&s).await;
}
