//! State over gRPC: save/get/delete with ETags, bulk get and delete, transactions, and state
//! that reads back byte for byte over HTTP (and the reverse) in every store.

use super::common::client;
use super::{BIN, Client, assert_status, connect, everyday_sidecar, resources};
use dapr::dapr::proto::common::v1::{Etag, StateItem, StateOptions};
use dapr::dapr::proto::runtime::v1 as rt;
use tandem_crds::Component;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tandem_sidecar::testing::{PostgresServer, RedisServer};
use tonic::Code;

fn item(key: &str, value: &[u8]) -> StateItem {
    StateItem {
        key: key.into(),
        value: value.to_vec(),
        ..Default::default()
    }
}

async fn save(c: &mut Client, store: &str, items: Vec<StateItem>) -> Result<(), tonic::Status> {
    let req = rt::SaveStateRequest {
        store_name: store.into(),
        states: items,
    };
    c.save_state(req).await.map(|_| ())
}

async fn get(c: &mut Client, store: &str, key: &str) -> rt::GetStateResponse {
    let req = rt::GetStateRequest {
        store_name: store.into(),
        key: key.into(),
        ..Default::default()
    };
    c.get_state(req).await.expect("get state").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_get_delete_with_etags_bulk_and_transactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = everyday_sidecar(dir.path(), "grpc-state");
    let mut c = connect(&s).await;

    save(
        &mut c,
        "statestore",
        vec![item("a", b"one"), item("b", b"\x00\xff")],
    )
    .await
    .expect("save");
    let a = get(&mut c, "statestore", "a").await;
    assert_eq!(a.data, b"one");
    assert!(!a.etag.is_empty(), "the in-memory store has ETags");
    assert!(get(&mut c, "statestore", "missing").await.data.is_empty());

    // The current ETag wins (first-write too), and the write makes a new one.
    let with_etag = |etag: &str, value: &[u8]| StateItem {
        etag: Some(Etag { value: etag.into() }),
        options: Some(StateOptions {
            concurrency: 1,
            consistency: 2,
        }),
        ..item("a", value)
    };
    save(&mut c, "statestore", vec![with_etag(&a.etag, b"two")])
        .await
        .expect("save with the current etag");
    let a2 = get(&mut c, "statestore", "a").await;
    assert_eq!(a2.data, b"two");
    assert_ne!(a2.etag, a.etag);

    // A stale ETag is ABORTED, on save and on delete, as daprd answers; a malformed one is
    // INVALID_ARGUMENT.
    let stale = save(&mut c, "statestore", vec![with_etag(&a.etag, b"three")]).await;
    assert_status(stale, Code::Aborted, "ERR_STATE_SAVE");
    let delete_with = |etag: &str| rt::DeleteStateRequest {
        store_name: "statestore".into(),
        key: "a".into(),
        etag: Some(Etag { value: etag.into() }),
        ..Default::default()
    };
    let deleted = c.delete_state(delete_with(&a.etag)).await;
    assert_status(deleted, Code::Aborted, "ERR_STATE_DELETE");
    let malformed = save(&mut c, "statestore", vec![with_etag("not-an-etag", b"x")]).await;
    assert_status(malformed, Code::InvalidArgument, "ERR_STATE_SAVE");
    assert_eq!(get(&mut c, "statestore", "a").await.data, b"two");

    let bulk = rt::GetBulkStateRequest {
        store_name: "statestore".into(),
        keys: vec!["a".into(), "b".into(), "nope".into()],
        parallelism: 2,
        ..Default::default()
    };
    let items = c
        .get_bulk_state(bulk)
        .await
        .expect("bulk")
        .into_inner()
        .items;
    let got: Vec<(&str, &[u8])> = items
        .iter()
        .map(|i| (i.key.as_str(), &i.data[..]))
        .collect();
    assert_eq!(
        got,
        [
            ("a", &b"two"[..]),
            ("b", &b"\x00\xff"[..]),
            ("nope", &b""[..])
        ]
    );
    assert_eq!(items[0].etag, a2.etag);

    let tx = rt::ExecuteStateTransactionRequest {
        store_name: "statestore".into(),
        operations: vec![
            rt::TransactionalStateOperation {
                operation_type: "upsert".into(),
                request: Some(item("c", b"three")),
            },
            rt::TransactionalStateOperation {
                operation_type: "delete".into(),
                request: Some(item("b", b"")),
            },
        ],
        ..Default::default()
    };
    c.execute_state_transaction(tx).await.expect("transaction");
    assert_eq!(get(&mut c, "statestore", "c").await.data, b"three");
    assert!(get(&mut c, "statestore", "b").await.data.is_empty());

    let delete_bulk = rt::DeleteBulkStateRequest {
        store_name: "statestore".into(),
        states: vec![item("a", b""), item("c", b"")],
    };
    c.delete_bulk_state(delete_bulk).await.expect("delete bulk");
    for key in ["a", "c"] {
        assert!(
            get(&mut c, "statestore", key).await.data.is_empty(),
            "{key}"
        );
    }
    let delete = rt::DeleteStateRequest {
        store_name: "statestore".into(),
        key: "never-there".into(),
        ..Default::default()
    };
    c.delete_state(delete)
        .await
        .expect("deleting a missing key is fine");
}

/// Bytes written over one transport, read over both; `json` is compact with sorted keys, which
/// every store (PostgreSQL's jsonb included) gives back as written.
async fn byte_identical(s: &Sidecar, c: &mut Client, store: &str) {
    let http = client();
    let binary: &[u8] = b"\x00\xffnot json \"at all\"\n";
    let json = br#"{"a":1,"b":[true,null],"c":"x y"}"#;
    save(
        c,
        store,
        vec![item("from-grpc", binary), item("json-from-grpc", json)],
    )
    .await
    .unwrap_or_else(|e| panic!("{store}: save: {e:?}"));
    for (key, written) in [("from-grpc", binary), ("json-from-grpc", &json[..])] {
        let r = http
            .get(s.url(&format!("/v1.0/state/{store}/{key}")))
            .send()
            .await
            .expect("get");
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = r.bytes().await.expect("body");
        assert_eq!(
            &body[..],
            written,
            "{store}/{key}: HTTP reads what gRPC wrote"
        );
        let over_grpc = get(c, store, key).await;
        assert_eq!(
            Some(over_grpc.etag),
            etag,
            "{store}/{key}: one ETag on both transports"
        );
    }
    let body = format!(
        r#"[{{"key":"from-http","value":{}}}]"#,
        String::from_utf8_lossy(json)
    );
    let saved = http
        .post(s.url(&format!("/v1.0/state/{store}")))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("save over HTTP");
    assert_eq!(saved.status().as_u16(), 204, "{store}");
    let over_grpc = get(c, store, "from-http").await;
    assert_eq!(over_grpc.data, json, "{store}: gRPC reads what HTTP wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_reads_back_byte_identical_across_transports_in_every_store() {
    let redis = RedisServer::start();
    let postgres = PostgresServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = dir.path().join("state.db");
    let stores = [
        Component::test("memory", "state.in-memory"),
        Component::test("sqlite", "state.sqlite")
            .with_metadata("connectionString", &sqlite.to_string_lossy()),
        Component::test("redis", "state.redis").with_metadata("redisHost", &redis.addr()),
        Component::test("postgres", "state.postgresql")
            .with_metadata("connectionString", &postgres.connection_string()),
    ];
    let res = resources(dir.path(), &stores);
    let s = SidecarBuilder::new(BIN, "grpc-bytes", &dir.path().join("data"))
        .resources(&res)
        .start();
    let mut c = connect(&s).await;
    for store in ["memory", "sqlite", "redis", "postgres"] {
        byte_identical(&s, &mut c, store).await;
    }
}
