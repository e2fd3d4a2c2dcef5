//! The binding against a real `redis-server`, checked through a second, raw connection.

use super::*;
use crate::components::metadata::Metadata;
use crate::testing::RedisServer;
use std::time::{Duration, Instant};

async fn binding(server: &RedisServer) -> RedisBinding {
    let md = Metadata::new([("redisHost".to_owned(), server.addr())]);
    let connection = RedisConnection::from_metadata(&md).expect("config");
    RedisBinding::connect(&connection).await.expect("connect")
}

async fn raw(server: &RedisServer) -> ::redis::aio::MultiplexedConnection {
    let client = ::redis::Client::open(format!("redis://{}", server.addr())).expect("client");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

async fn ttl(conn: &mut ::redis::aio::MultiplexedConnection, key: &str) -> i64 {
    ::redis::cmd("TTL")
        .arg(key)
        .query_async(conn)
        .await
        .expect("TTL")
}

fn request(op: &str, data: &[u8], metadata: &[(&str, &str)]) -> InvokeRequest {
    InvokeRequest {
        operation: op.to_owned(),
        data: Bytes::copy_from_slice(data),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

async fn get(redis: &RedisBinding, key: &str) -> Option<Bytes> {
    redis
        .invoke(request("get", b"", &[("key", key)]))
        .await
        .expect("get")
        .data
}

#[tokio::test]
async fn create_get_delete_round_trip_bytes() {
    let server = RedisServer::start();
    let redis = binding(&server).await;
    let value = b"\x00\xff \"quoted\" bytes";
    let answer = redis
        .invoke(request("create", value, &[("key", "k")]))
        .await
        .expect("create");
    assert_eq!(answer, InvokeResponse::default());
    assert_eq!(get(&redis, "k").await.as_deref(), Some(&value[..]));
    redis
        .invoke(request("delete", b"", &[("key", "k")]))
        .await
        .expect("delete");
    assert_eq!(
        get(&redis, "k").await,
        None,
        "deleted keys answer with no data"
    );
    assert_eq!(get(&redis, "never-set").await, None);

    // `delete: true` on get reads and removes in one step.
    redis
        .invoke(request("create", b"once", &[("key", "once")]))
        .await
        .expect("create");
    let answer = redis
        .invoke(request("get", b"", &[("key", "once"), ("delete", "true")]))
        .await
        .expect("getdel");
    assert_eq!(answer.data.as_deref(), Some(&b"once"[..]));
    assert_eq!(get(&redis, "once").await, None);
}

#[tokio::test]
async fn ttl_metadata_sets_an_expiry_and_plain_create_clears_it() {
    let server = RedisServer::start();
    let redis = binding(&server).await;
    let mut conn = raw(&server).await;
    redis
        .invoke(request(
            "create",
            b"v",
            &[("key", "t"), ("ttlInSeconds", "100")],
        ))
        .await
        .expect("create with ttl");
    let left = ttl(&mut conn, "t").await;
    assert!((90..=100).contains(&left), "TTL {left}");
    redis
        .invoke(request("create", b"v", &[("key", "t")]))
        .await
        .expect("create without ttl");
    assert_eq!(ttl(&mut conn, "t").await, -1);

    // A Go duration works too, and the key really goes.
    redis
        .invoke(request("create", b"v", &[("key", "short"), ("ttl", "1s")]))
        .await
        .expect("create with a duration");
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(&redis, "short").await.is_some() {
        assert!(Instant::now() < deadline, "the key outlived its TTL");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for bad in ["0", "-5", "soon", "500ms"] {
        let err = redis
            .invoke(request(
                "create",
                b"v",
                &[("key", "t"), ("ttlInSeconds", bad)],
            ))
            .await
            .expect_err(bad);
        assert!(matches!(err, BindingError::BadRequest(_)), "{bad}: {err}");
    }
}

#[tokio::test]
async fn increment_counts_and_can_expire() {
    let server = RedisServer::start();
    let redis = binding(&server).await;
    let mut conn = raw(&server).await;
    for _ in 0..3 {
        redis
            .invoke(request("increment", b"", &[("key", "n")]))
            .await
            .expect("increment");
    }
    assert_eq!(get(&redis, "n").await.as_deref(), Some(&b"3"[..]));
    assert_eq!(ttl(&mut conn, "n").await, -1);
    redis
        .invoke(request(
            "increment",
            b"",
            &[("key", "n"), ("ttlInSeconds", "60")],
        ))
        .await
        .expect("increment with ttl");
    assert_eq!(get(&redis, "n").await.as_deref(), Some(&b"4"[..]));
    assert!(ttl(&mut conn, "n").await > 0);

    redis
        .invoke(request("create", b"abc", &[("key", "text")]))
        .await
        .expect("create");
    let err = redis
        .invoke(request(
            "increment",
            b"",
            &[("key", "text"), ("ttlInSeconds", "60")],
        ))
        .await
        .expect_err("INCR of a non-number");
    assert!(matches!(err, BindingError::Backend { .. }), "{err}");
}

#[tokio::test]
async fn requests_without_a_key_or_with_an_unknown_operation_are_refused() {
    let server = RedisServer::start();
    let redis = binding(&server).await;
    for op in OPERATIONS {
        let err = redis.invoke(request(op, b"v", &[])).await.expect_err(op);
        assert!(matches!(err, BindingError::BadRequest(_)), "{op}: {err}");
    }
    let err = redis
        .invoke(request("list", b"", &[("key", "k")]))
        .await
        .expect_err("list");
    assert!(
        matches!(err, BindingError::UnsupportedOperation { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_component_type_builds_an_output_binding() {
    use crate::components::factory::{self, Instance};
    let server = RedisServer::start();
    let md = Metadata::new([("redisHost".to_owned(), server.addr())]);
    let config =
        factory::settings("bindings.redis", &md, std::path::Path::new(".")).expect("config");
    let Ok(Instance::Binding(binding)) = config.init().await else {
        panic!("bindings.redis did not build a binding");
    };
    assert!(binding.input.is_none());
    let redis = binding.output.expect("output side");
    redis
        .invoke(request("create", b"v", &[("key", "k")]))
        .await
        .expect("create");
    let answer = redis
        .invoke(request("get", b"", &[("key", "k")]))
        .await
        .expect("get");
    assert_eq!(answer.data.as_deref(), Some(&b"v"[..]));
}
