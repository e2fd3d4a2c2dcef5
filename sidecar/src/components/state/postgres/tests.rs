//! The PostgreSQL store against a real server: the shared conformance suite, contention, value
//! encoding in Dapr's columns, and the sweep of expired rows.

use super::*;
use crate::components::metadata::Metadata;
use crate::testing::PostgresServer;

async fn store(server: &PostgresServer, extra: &[(&str, &str)]) -> PostgresStore {
    let mut fields = vec![("connectionString".to_owned(), server.connection_string())];
    fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let cfg = PostgresConfig::from_metadata(&Metadata::new(fields)).expect("config");
    PostgresStore::connect(&cfg).await.expect("connect")
}

fn set(key: &str, value: &[u8], ttl: Option<i64>) -> SetRequest {
    SetRequest {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(value),
        etag: None,
        concurrency: Concurrency::LastWrite,
        ttl,
    }
}

/// `(value::text, isbinary)` straight from the table.
async fn raw_row(store: &PostgresStore, key: &str) -> Option<(String, bool)> {
    let client = store.pool.get().await.expect("client");
    let row = client
        .query_opt(
            "SELECT value::text, isbinary FROM state WHERE key = $1",
            &[&key],
        )
        .await
        .expect("select");
    row.map(|r| (r.get(0), r.get(1)))
}

#[tokio::test]
async fn conforms() {
    let server = PostgresServer::start();
    let store = store(&server, &[]).await;
    super::super::conformance::run(
        &store,
        "postgres",
        super::super::conformance::EtagOnMissingKey::Conflicts,
    )
    .await;
    store.close().await;
}

#[tokio::test]
async fn contended_increments_are_exact() {
    let server = PostgresServer::start();
    let store: std::sync::Arc<dyn StateStore> = std::sync::Arc::new(store(&server, &[]).await);
    super::super::conformance::contended_increments(store, "counter", 50, 1000).await;
}

#[tokio::test]
async fn values_round_trip_in_daprs_columns() {
    let server = PostgresServer::start();
    let store = store(&server, &[]).await;
    // Not JSON (invalid UTF-8, NUL bytes), and JSON that jsonb refuses: base64, byte for byte.
    let binary: &[&[u8]] = &[
        b"\x00\xff\xfe raw \x01",
        b"plain text",
        br#""nul \u0000""#,
        b"",
    ];
    for (i, value) in binary.iter().enumerate() {
        let key = format!("bin{i}");
        store.set(set(&key, value, None)).await.expect("set");
        let item = store.get(&key).await.expect("get").expect("present");
        assert_eq!(item.data.as_ref(), *value, "{key}");
        let (text, isbinary) = raw_row(&store, &key).await.expect("row");
        assert!(isbinary, "{key}");
        assert_eq!(text, format!("\"{}\"", BASE64.encode(value)));
    }
    // JSON is stored as jsonb, so PostgreSQL's normalisation applies; it reads back compact.
    let json = br#"{ "b" : [1, 2], "a": "x y" }"#;
    store.set(set("json", json, None)).await.expect("set");
    let (text, isbinary) = raw_row(&store, "json").await.expect("row");
    assert!(!isbinary);
    assert_eq!(text, r#"{"a": "x y", "b": [1, 2]}"#);
    let item = store.get("json").await.expect("get").expect("present");
    assert_eq!(item.data.as_ref(), br#"{"a":"x y","b":[1,2]}"#);
}

#[tokio::test]
async fn transactions_check_against_the_state_before_them() {
    let server = PostgresServer::start();
    let store = store(&server, &[]).await;
    store.set(set("k", b"1", None)).await.expect("set");
    let etag = store.get("k").await.expect("get").expect("present").etag;
    // Both operations carry the etag k had before the transaction, as in the other stores.
    let ops = vec![
        TxOperation::Upsert(SetRequest {
            etag: etag.clone(),
            ..set("k", b"2", None)
        }),
        TxOperation::Upsert(SetRequest {
            etag,
            ..set("k", b"3", None)
        }),
        TxOperation::Upsert(SetRequest {
            concurrency: Concurrency::FirstWrite,
            ..set("n", b"4", None)
        }),
    ];
    store.transact(ops).await.expect("tx");
    assert_eq!(
        store.get("k").await.expect("get").expect("k").data.as_ref(),
        b"3"
    );
    assert_eq!(
        store.get("n").await.expect("get").expect("n").data.as_ref(),
        b"4"
    );
}

#[tokio::test]
async fn expired_rows_are_swept() {
    let server = PostgresServer::start();
    let store = store(&server, &[("cleanupInterval", "200ms")]).await;
    store.set(set("gone", b"1", Some(1))).await.expect("set");
    store.set(set("kept", b"1", None)).await.expect("set");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while raw_row(&store, "gone").await.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "expired row never swept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(raw_row(&store, "kept").await.is_some());
}
