//! The Redis store against a real `redis-server`: the shared conformance suite, contention,
//! the on-server layout Dapr reads, the component TTL, and metadata validation.

use super::*;
use crate::testing::RedisServer;

fn md(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

async fn store(server: &RedisServer, extra: &[(&str, &str)]) -> RedisStore {
    let addr = server.addr();
    let mut pairs = vec![("redisHost", addr.as_str())];
    pairs.extend_from_slice(extra);
    let cfg = RedisConfig::from_metadata(&md(&pairs)).expect("config");
    RedisStore::connect(&cfg).await.expect("connect")
}

async fn raw(server: &RedisServer) -> ::redis::aio::MultiplexedConnection {
    let client = ::redis::Client::open(format!("redis://{}", server.addr())).expect("client");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

async fn hget(conn: &mut ::redis::aio::MultiplexedConnection, key: &str, field: &str) -> Vec<u8> {
    ::redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(conn)
        .await
        .expect("HGET")
}

#[tokio::test]
async fn conforms() {
    let server = RedisServer::start();
    super::super::conformance::run(
        &store(&server, &[]).await,
        "redis",
        super::super::conformance::EtagOnMissingKey::Proceeds,
    )
    .await;
}

#[tokio::test]
async fn contended_increments_are_exact() {
    let server = RedisServer::start();
    let store: std::sync::Arc<dyn StateStore> = std::sync::Arc::new(store(&server, &[]).await);
    super::super::conformance::contended_increments(store, "counter", 50, 1000).await;
}

#[tokio::test]
async fn layout_is_daprs() {
    let server = RedisServer::start();
    let store = store(&server, &[]).await;
    let set = |value: &'static [u8]| SetRequest {
        key: "app||k".into(),
        value: Bytes::from_static(value),
        etag: None,
        concurrency: Concurrency::LastWrite,
        ttl: None,
    };
    let mut conn = raw(&server).await;
    store.set(set(b"\x00binary\xff")).await.expect("set");
    assert_eq!(hget(&mut conn, "app||k", "data").await, b"\x00binary\xff");
    let first = hget(&mut conn, "app||k", "version").await;
    let first: i64 = String::from_utf8(first)
        .expect("utf8")
        .parse()
        .expect("an integer version");
    store.set(set(br#"{"a":1}"#)).await.expect("set again");
    assert_eq!(hget(&mut conn, "app||k", "data").await, br#"{"a":1}"#);
    let second = String::from_utf8(hget(&mut conn, "app||k", "version").await).expect("utf8");
    assert_eq!(second, (first + 1).to_string(), "each write is one HINCRBY");
    let item = store.get("app||k").await.expect("get").expect("present");
    assert_eq!(item.etag, Some(second));

    // A hash written by Dapr reads back with its version as the ETag.
    let _: () = ::redis::cmd("HSET")
        .arg("app||dapr")
        .arg("data")
        .arg("\"x\"")
        .arg("version")
        .arg("7")
        .query_async(&mut conn)
        .await
        .expect("HSET");
    let item = store.get("app||dapr").await.expect("get").expect("present");
    assert_eq!(
        (item.data.as_ref(), item.etag.as_deref()),
        (&b"\"x\""[..], Some("7"))
    );
}

#[tokio::test]
async fn component_ttl_applies_when_the_request_has_none() {
    let server = RedisServer::start();
    let store = store(&server, &[("ttlInSeconds", "100")]).await;
    let set = |key: &str, ttl| SetRequest {
        key: key.into(),
        value: Bytes::from_static(b"v"),
        etag: None,
        concurrency: Concurrency::LastWrite,
        ttl,
    };
    store.set(set("defaulted", None)).await.expect("set");
    store.set(set("forever", Some(-1))).await.expect("set");
    store.set(set("own", Some(5))).await.expect("set");
    let mut conn = raw(&server).await;
    for (key, low, high) in [("defaulted", 90, 100), ("forever", -1, -1), ("own", 1, 5)] {
        let ttl: i64 = ::redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("TTL");
        assert!((low..=high).contains(&ttl), "{key}: ttl {ttl}");
    }
    let item = store.get("defaulted").await.expect("get").expect("present");
    assert!(
        item.expires_at
            .is_some_and(|at| at > SystemTime::now() + Duration::from_secs(90))
    );
}

#[test]
fn bad_metadata_names_the_field() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "redisHost"),
        (&[("redisHost", "localhost")], "redisHost"),
        (&[("redisHost", "localhost:http")], "redisHost"),
        (&[("redisHost", ":6379")], "redisHost"),
        (&[("redisHost", "h:1"), ("redisDB", "-1")], "redisDB"),
        (&[("redisHost", "h:1"), ("redisDB", "one")], "redisDB"),
        (&[("redisHost", "h:1"), ("enableTLS", "yes")], "enableTLS"),
        (&[("redisHost", "h:1"), ("enableTLS", "true")], "enableTLS"),
        (
            &[("redisHost", "h:1"), ("redisType", "cluster")],
            "redisType",
        ),
        (&[("redisHost", "h:1"), ("failover", "true")], "failover"),
        (
            &[("redisHost", "h:1"), ("ttlInSeconds", "1h")],
            "ttlInSeconds",
        ),
        (
            &[("redisHost", "h:1"), ("dialTimeout", "soon")],
            "dialTimeout",
        ),
        (
            &[("redisHost", "h:1"), ("readTimeout", "soon")],
            "readTimeout",
        ),
        (
            &[("redisHost", "h:1"), ("writeTimeout", "soon")],
            "writeTimeout",
        ),
    ];
    for (pairs, field) in cases {
        let err = RedisConfig::from_metadata(&md(pairs)).expect_err(field);
        assert_eq!(err.field, *field, "{pairs:?}");
    }
}

#[test]
fn good_metadata_is_read() {
    let cfg = RedisConfig::from_metadata(&md(&[
        ("redishost", "[::1]:6380"),
        ("redisPassword", "secret"),
        ("redisDB", "2"),
        ("readTimeout", "2s"),
        ("writeTimeout", "4s"),
        ("poolSize", "20"),
    ]))
    .expect("valid");
    assert_eq!(
        (
            cfg.connection.host.as_str(),
            cfg.connection.port,
            cfg.connection.db
        ),
        ("::1", 6380, 2)
    );
    assert_eq!(cfg.connection.response_timeout, Duration::from_secs(4));
    assert!(!format!("{cfg:?}").contains("secret"));
}

#[tokio::test]
async fn connect_fails_when_nothing_listens() {
    let port = crate::testing::free_port().to_string();
    let host = format!("127.0.0.1:{port}");
    let cfg = RedisConfig::from_metadata(&md(&[("redisHost", &host)])).expect("config");
    assert!(RedisStore::connect(&cfg).await.is_err());
}

#[tokio::test]
async fn plain_string_keys_are_read_then_replaced() {
    let server = RedisServer::start();
    let store = store(&server, &[]).await;
    let mut conn = raw(&server).await;
    let _: () = ::redis::cmd("SET")
        .arg("app||old")
        .arg("v")
        .query_async(&mut conn)
        .await
        .expect("SET");
    let item = store.get("app||old").await.expect("get").expect("present");
    assert_eq!((item.data.as_ref(), item.etag), (&b"v"[..], None));
    let write = SetRequest {
        key: "app||old".into(),
        value: Bytes::from_static(b"w"),
        etag: None,
        concurrency: Concurrency::LastWrite,
        ttl: None,
    };
    store.set(write).await.expect("overwrite");
    assert_eq!(hget(&mut conn, "app||old", "data").await, b"w");
}
