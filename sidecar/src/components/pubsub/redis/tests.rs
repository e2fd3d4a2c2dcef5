//! The Redis Streams broker against a real `redis-server`.

use super::entries::{Entry, items, parse_claim, parse_entries, parse_read};
use super::*;
use crate::testing::RedisServer;
use ::redis::aio::MultiplexedConnection;
use bytes::Bytes;
use std::time::Instant;

fn md(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

async fn broker(server: &RedisServer, extra: &[(&str, &str)]) -> RedisPubSub {
    let addr = server.addr();
    let mut pairs = vec![("redisHost", addr.as_str())];
    pairs.extend_from_slice(extra);
    let cfg = RedisPubSubConfig::from_metadata(&md(&pairs)).expect("config");
    RedisPubSub::connect(&cfg).await.expect("connect")
}

async fn raw(server: &RedisServer) -> MultiplexedConnection {
    let client = ::redis::Client::open(format!("redis://{}", server.addr())).expect("client");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

fn msg(topic: &str, body: &str) -> Message {
    Message {
        topic: topic.into(),
        data: Bytes::from(body.to_owned()),
        metadata: Default::default(),
    }
}

async fn next(rx: &mut mpsc::Receiver<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a delivery in time")
        .expect("channel open")
}

async fn pending(conn: &mut MultiplexedConnection, topic: &str, group: &str) -> i64 {
    let v: Value = ::redis::cmd("XPENDING")
        .arg(topic)
        .arg(group)
        .query_async(conn)
        .await
        .expect("XPENDING");
    match items(&v).first() {
        Some(Value::Int(n)) => *n,
        other => panic!("XPENDING reply {other:?}"),
    }
}

/// Polls `pending` until it is `want` (or fails at the deadline).
async fn wait_pending(conn: &mut MultiplexedConnection, topic: &str, group: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = pending(conn, topic, group).await;
        if n == want {
            return;
        }
        assert!(Instant::now() < deadline, "pending is {n}, want {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn delivers_and_ack_clears_pending() {
    let server = RedisServer::start();
    let b = broker(&server, &[]).await;
    let mut raw = raw(&server).await;
    let mut rx = b.subscribe("orders", "app").await.expect("subscribe");
    b.publish(msg("orders", "hello")).await.expect("publish");
    let d = next(&mut rx).await;
    assert_eq!(d.message.data, Bytes::from_static(b"hello"));
    assert_eq!(d.message.topic, "orders");
    assert_eq!(pending(&mut raw, "orders", "app").await, 1);
    d.acker.ack().await;
    wait_pending(&mut raw, "orders", "app", 0).await;
    // Dapr's layout: one field, `data`.
    let v: Value = ::redis::cmd("XRANGE")
        .arg("orders")
        .arg("-")
        .arg("+")
        .query_async(&mut raw)
        .await
        .expect("XRANGE");
    let entries = parse_entries(&v);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].data.as_deref(), Some(&b"hello"[..]));
    b.close().await;
    assert!(
        tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .expect("closes in time")
            .is_none(),
        "close ends the subscription"
    );
}

#[tokio::test]
async fn message_published_before_subscribe_is_delivered() {
    let server = RedisServer::start();
    let b = broker(&server, &[]).await;
    b.publish(msg("early", "first")).await.expect("publish");
    let mut rx = b.subscribe("early", "app").await.expect("subscribe");
    let d = next(&mut rx).await;
    assert_eq!(d.message.data, Bytes::from_static(b"first"));
    d.acker.ack().await;
}

#[tokio::test]
async fn consumer_id_overrides_the_group() {
    let server = RedisServer::start();
    let b = broker(&server, &[("consumerID", "shared")]).await;
    let mut raw = raw(&server).await;
    let mut rx = b.subscribe("t", "app").await.expect("subscribe");
    b.publish(msg("t", "x")).await.expect("publish");
    let d = next(&mut rx).await;
    assert_eq!(pending(&mut raw, "t", "shared").await, 1);
    d.acker.ack().await;
    wait_pending(&mut raw, "t", "shared", 0).await;
}

#[tokio::test]
async fn every_group_gets_every_message() {
    let server = RedisServer::start();
    let b = broker(&server, &[]).await;
    let mut a = b.subscribe("t", "group-a").await.expect("subscribe");
    let mut c = b.subscribe("t", "group-b").await.expect("subscribe");
    for i in 0..3 {
        b.publish(msg("t", &i.to_string())).await.expect("publish");
    }
    for rx in [&mut a, &mut c] {
        let mut got = Vec::new();
        for _ in 0..3 {
            let d = next(rx).await;
            got.push(d.message.data.clone());
            d.acker.ack().await;
        }
        assert_eq!(got, vec!["0", "1", "2"]);
    }
}

#[tokio::test]
async fn one_group_splits_messages_between_subscribers() {
    let server = RedisServer::start();
    let b = broker(&server, &[]).await;
    let mut one = b.subscribe("t", "g").await.expect("subscribe");
    let mut two = b.subscribe("t", "g").await.expect("subscribe");
    let total = 20;
    for i in 0..total {
        b.publish(msg("t", &i.to_string())).await.expect("publish");
        // Let a blocked reader pick it up so both readers get a share.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut seen = std::collections::BTreeSet::new();
    let (mut n_one, mut n_two) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < total && Instant::now() < deadline {
        tokio::select! {
            Some(d) = one.recv() => {
                assert!(seen.insert(d.message.data.clone()), "delivered once");
                n_one += 1;
                d.acker.ack().await;
            }
            Some(d) = two.recv() => {
                assert!(seen.insert(d.message.data.clone()), "delivered once");
                n_two += 1;
                d.acker.ack().await;
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    assert_eq!(seen.len(), total, "every message delivered");
    assert!(n_one > 0 && n_two > 0, "split: {n_one} and {n_two}");
}

#[tokio::test]
async fn nack_is_redelivered_after_processing_timeout() {
    let server = RedisServer::start();
    let b = broker(
        &server,
        &[
            ("processingTimeout", "300ms"),
            ("redeliverInterval", "100ms"),
        ],
    )
    .await;
    let mut raw = raw(&server).await;
    let mut rx = b.subscribe("t", "g").await.expect("subscribe");
    b.publish(msg("t", "again")).await.expect("publish");
    let first = next(&mut rx).await;
    let nacked_at = Instant::now();
    first.acker.nack().await;
    let second = next(&mut rx).await;
    assert!(
        nacked_at.elapsed() >= Duration::from_millis(250),
        "not before processingTimeout: {:?}",
        nacked_at.elapsed()
    );
    assert_eq!(second.message.data, Bytes::from_static(b"again"));
    second.acker.ack().await;
    wait_pending(&mut raw, "t", "g", 0).await;
    // Acked: never delivered again, well past the processing timeout.
    assert!(
        tokio::time::timeout(Duration::from_millis(800), rx.recv())
            .await
            .is_err(),
        "acked means gone"
    );
}

#[tokio::test]
async fn max_len_approx_trims_the_stream() {
    let server = RedisServer::start();
    let mut raw = raw(&server).await;
    let _: Value = ::redis::cmd("CONFIG")
        .arg("SET")
        .arg("stream-node-max-entries")
        .arg("10")
        .query_async(&mut raw)
        .await
        .expect("CONFIG SET");
    let b = broker(&server, &[("maxLenApprox", "20")]).await;
    for i in 0..300 {
        b.publish(msg("trim", &i.to_string()))
            .await
            .expect("publish");
    }
    let len: i64 = ::redis::cmd("XLEN")
        .arg("trim")
        .query_async(&mut raw)
        .await
        .expect("XLEN");
    assert!((20..=40).contains(&len), "XLEN {len}");
}

#[tokio::test]
async fn entry_without_data_is_acked_and_skipped() {
    let server = RedisServer::start();
    let b = broker(&server, &[]).await;
    let mut raw = raw(&server).await;
    let mut rx = b.subscribe("t", "g").await.expect("subscribe");
    let _: Value = ::redis::cmd("XADD")
        .arg("t")
        .arg("*")
        .arg("other")
        .arg("x")
        .query_async(&mut raw)
        .await
        .expect("XADD");
    b.publish(msg("t", "real")).await.expect("publish");
    let d = next(&mut rx).await;
    assert_eq!(d.message.data, Bytes::from_static(b"real"));
    d.acker.ack().await;
    wait_pending(&mut raw, "t", "g", 0).await;
}

#[test]
fn metadata_defaults() {
    let cfg =
        RedisPubSubConfig::from_metadata(&md(&[("redisHost", "localhost:6379")])).expect("config");
    assert_eq!(
        (cfg.connection.host.as_str(), cfg.connection.port),
        ("localhost", 6379)
    );
    assert_eq!(cfg.processing_timeout, Duration::from_secs(15));
    assert_eq!(cfg.redeliver_interval, Some(Duration::from_secs(60)));
    assert_eq!(cfg.consumer_id, None);
    assert_eq!(cfg.max_len_approx, None);
    let cfg = RedisPubSubConfig::from_metadata(&md(&[
        ("redisHost", "h:1"),
        ("redeliverInterval", "0"),
        ("maxLenApprox", "100"),
        ("consumerID", "c"),
        ("queueDepth", "10"),
        ("concurrency", "5"),
        ("redisType", "node"),
        ("redisPassword", "secret"),
    ]))
    .expect("config");
    assert_eq!(cfg.redeliver_interval, None);
    assert_eq!(cfg.max_len_approx, Some(100));
    assert_eq!(cfg.consumer_id.as_deref(), Some("c"));
    assert!(!format!("{cfg:?}").contains("secret"), "password redacted");
}

#[test]
fn bad_metadata_names_the_field() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "redisHost"),
        (&[("redisHost", "nohost")], "redisHost"),
        (&[("redisHost", "h:0")], "redisHost"),
        (&[("redisHost", ":1")], "redisHost"),
        (&[("redisHost", "h:1"), ("redisDB", "x")], "redisDB"),
        (&[("redisHost", "h:1"), ("redisDB", "-1")], "redisDB"),
        (&[("redisHost", "h:1"), ("enableTLS", "true")], "enableTLS"),
        (&[("redisHost", "h:1"), ("enableTLS", "maybe")], "enableTLS"),
        (
            &[("redisHost", "h:1"), ("redisType", "cluster")],
            "redisType",
        ),
        (&[("redisHost", "h:1"), ("failover", "true")], "failover"),
        (
            &[("redisHost", "h:1"), ("processingTimeout", "soon")],
            "processingTimeout",
        ),
        (
            &[("redisHost", "h:1"), ("redeliverInterval", "x")],
            "redeliverInterval",
        ),
        (
            &[("redisHost", "h:1"), ("maxLenApprox", "-5")],
            "maxLenApprox",
        ),
        (
            &[("redisHost", "h:1"), ("maxLenApprox", "lots")],
            "maxLenApprox",
        ),
        (&[("redisHost", "h:1"), ("queueDepth", "x")], "queueDepth"),
        (
            &[("redisHost", "h:1"), ("concurrency", "-1")],
            "concurrency",
        ),
        (&[("redisHost", "h:1"), ("streamTTL", "x")], "streamTTL"),
        (&[("redisHost", "h:1"), ("dialTimeout", "x")], "dialTimeout"),
    ];
    for (pairs, field) in cases {
        let err = RedisPubSubConfig::from_metadata(&md(pairs))
            .expect_err(&format!("{pairs:?} must be refused"));
        assert_eq!(err.field, *field, "{pairs:?}: {err}");
    }
}

#[test]
fn parses_resp_replies() {
    let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    let entry = |id: &str, fields: Vec<Value>| Value::Array(vec![bulk(id), Value::Array(fields)]);
    let read = Value::Array(vec![Value::Array(vec![
        bulk("t"),
        Value::Array(vec![
            entry("1-0", vec![bulk("data"), bulk("a")]),
            entry("2-0", vec![bulk("x"), bulk("y")]),
        ]),
    ])]);
    assert_eq!(
        parse_read(&read),
        vec![
            Entry {
                id: "1-0".into(),
                data: Some(b"a".to_vec())
            },
            Entry {
                id: "2-0".into(),
                data: None
            },
        ]
    );
    assert!(parse_read(&Value::Nil).is_empty());
    let claim = Value::Array(vec![
        bulk("0-0"),
        Value::Array(vec![entry("3-0", vec![bulk("data"), bulk("b")])]),
        Value::Array(vec![]),
    ]);
    assert_eq!(parse_claim(&claim).len(), 1);
}
