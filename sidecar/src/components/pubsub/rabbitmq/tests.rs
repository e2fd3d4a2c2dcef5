//! The RabbitMQ broker against a real RabbitMQ node (one per test process, names unique per
//! test; the restart test gets a node of its own).

use super::config::DEFAULT_PREFETCH;
use super::*;
use crate::components::metadata::Metadata;
use crate::testing::RabbitServer;
use bytes::Bytes;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use std::time::Instant;

fn md(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn unique(name: &str) -> String {
    format!("{name}-{:08x}", rand::random::<u32>())
}

async fn broker(server: &RabbitServer, extra: &[(&str, &str)]) -> RabbitMqPubSub {
    let url = server.url();
    let mut pairs = vec![
        ("connectionString", url.as_str()),
        ("reconnectWait", "200ms"),
    ];
    pairs.extend_from_slice(extra);
    let cfg = RabbitMqConfig::from_metadata(&md(&pairs)).expect("config");
    RabbitMqPubSub::connect(&cfg).await.expect("connect")
}

fn msg(topic: &str, body: &str) -> Message {
    Message {
        topic: topic.into(),
        data: Bytes::from(body.to_owned()),
        metadata: Default::default(),
    }
}

async fn next(rx: &mut mpsc::Receiver<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a delivery in time")
        .expect("channel open")
}

async fn nothing_more(rx: &mut mpsc::Receiver<Delivery>) {
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(1000), rx.recv()).await {
        panic!("unexpected delivery {:?}", d.message.data);
    }
}

/// Ready (not delivered) messages in `queue`, asked with a passive declare.
async fn ready_in(server: &RabbitServer, queue: &str) -> u32 {
    let conn = Connection::connect(&server.url(), ConnectionProperties::default())
        .await
        .expect("raw connection");
    let channel = conn.create_channel().await.expect("raw channel");
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .expect("the queue exists");
    let _ = conn.close(200, "OK".into()).await;
    queue.message_count()
}

#[tokio::test]
async fn round_trip_and_an_ack_is_final() {
    let server = RabbitServer::shared();
    let durable = [("durable", "true"), ("deletedWhenUnused", "false")];
    let b = broker(server, &durable).await;
    let topic = unique("orders");
    let mut rx = b.subscribe(&topic, "app").await.expect("subscribe");
    b.publish(msg(&topic, "hello")).await.expect("publish");
    let d = next(&mut rx).await;
    assert_eq!(
        (d.message.topic.as_str(), &d.message.data[..]),
        (topic.as_str(), &b"hello"[..])
    );
    d.acker.ack().await;
    nothing_more(&mut rx).await;
    b.close().await;
    assert!(
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("closes in time")
            .is_none(),
        "close ends the subscription"
    );
    // Dapr's layout, and the ack reached the broker: the queue outlives us, empty.
    assert_eq!(ready_in(server, &format!("app-{topic}")).await, 0);
}

#[tokio::test]
async fn nack_requeues_then_ack_is_final() {
    let server = RabbitServer::shared();
    let b = broker(server, &[]).await;
    let topic = unique("t");
    let mut rx = b.subscribe(&topic, "g").await.expect("subscribe");
    b.publish(msg(&topic, "again")).await.expect("publish");
    next(&mut rx).await.acker.nack().await;
    let second = next(&mut rx).await;
    assert_eq!(second.message.data, Bytes::from_static(b"again"));
    second.acker.ack().await;
    nothing_more(&mut rx).await;
    b.close().await;
}

#[tokio::test]
async fn dead_lettering_takes_nacked_messages() {
    let server = RabbitServer::shared();
    let b = broker(server, &[("enableDeadLetter", "true")]).await;
    let topic = unique("t");
    let mut rx = b.subscribe(&topic, "g").await.expect("subscribe");
    b.publish(msg(&topic, "poison")).await.expect("publish");
    next(&mut rx).await.acker.nack().await;
    nothing_more(&mut rx).await;
    // Not requeued: the dead-letter exchange `dlx-g-<topic>` put it in `dlq-g-<topic>`.
    assert_eq!(ready_in(server, &format!("dlq-g-{topic}")).await, 1);
    b.close().await;
}

#[tokio::test]
async fn unacked_message_goes_to_the_groups_next_consumer() {
    let server = RabbitServer::shared();
    let topic = unique("jobs");
    let first = broker(server, &[]).await;
    let mut rx1 = first.subscribe(&topic, "workers").await.expect("subscribe");
    first.publish(msg(&topic, "1")).await.expect("publish");
    let unsettled = next(&mut rx1).await;
    let second = broker(server, &[]).await;
    let mut rx2 = second
        .subscribe(&topic, "workers")
        .await
        .expect("subscribe");
    first.close().await; // goes away without acking
    drop(unsettled);
    let d = next(&mut rx2).await;
    assert_eq!(d.message.data, Bytes::from_static(b"1"));
    d.acker.ack().await;
    second.close().await;
}

#[tokio::test]
async fn a_durable_queue_keeps_messages_for_the_next_consumer() {
    let server = RabbitServer::shared();
    let durable = [
        ("durable", "true"),
        ("deletedWhenUnused", "false"),
        ("deliveryMode", "2"),
    ];
    let topic = unique("jobs");
    let first = broker(server, &durable).await;
    let mut rx = first.subscribe(&topic, "keeper").await.expect("subscribe");
    first.publish(msg(&topic, "1")).await.expect("publish");
    let unsettled = next(&mut rx).await;
    first.close().await;
    drop(unsettled);
    let publisher = broker(server, &durable).await;
    publisher
        .publish(msg(&topic, "2"))
        .await
        .expect("publish while away");
    let second = broker(server, &durable).await;
    let mut rx = second.subscribe(&topic, "keeper").await.expect("subscribe");
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = next(&mut rx).await;
        got.push(d.message.data.clone());
        d.acker.ack().await;
    }
    got.sort();
    assert_eq!(got, vec!["1", "2"]);
    second.close().await;
    publisher.close().await;
}

#[tokio::test]
async fn every_group_gets_every_message() {
    let server = RabbitServer::shared();
    let b = broker(server, &[]).await;
    let topic = unique("t");
    let mut a = b.subscribe(&topic, "group-a").await.expect("subscribe");
    let mut c = b.subscribe(&topic, "group-b").await.expect("subscribe");
    for i in 0..3 {
        b.publish(msg(&topic, &i.to_string()))
            .await
            .expect("publish");
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
    b.close().await;
}

#[tokio::test]
async fn broker_restart_mid_stream_reconnects() {
    let server = RabbitServer::start();
    let b = broker(&server, &[]).await;
    let topic = unique("t");
    let mut rx = b.subscribe(&topic, "g").await.expect("subscribe");
    b.publish(msg(&topic, "before")).await.expect("publish");
    next(&mut rx).await.acker.ack().await;

    server.restart_app(); // every connection closed, the non-durable queue gone
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "no message made it after the restart"
        );
        n += 1;
        // A publish may fail before the reconnect, or land before the queue is declared again.
        if b.publish(msg(&topic, &format!("after-{n}"))).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            assert!(d.message.data.starts_with(b"after-"));
            d.acker.ack().await;
            break;
        }
    }
    b.publish(msg(&topic, "steady"))
        .await
        .expect("publish once reconnected");
    loop {
        let d = next(&mut rx).await;
        d.acker.ack().await;
        if d.message.data == Bytes::from_static(b"steady") {
            break;
        }
    }
    b.close().await;
}

#[test]
fn metadata_defaults_and_hostname_form() {
    let cfg =
        RabbitMqConfig::from_metadata(&md(&[("connectionString", "amqp://u:secret@h:5673/v")]))
            .expect("valid");
    assert!(!cfg.durable && cfg.delete_when_unused && !cfg.auto_ack && !cfg.dead_letter);
    assert_eq!((cfg.delivery_mode, cfg.prefetch_count), (None, 0));
    assert_eq!(cfg.reconnect_wait, Duration::from_secs(3));
    assert_eq!(cfg.exchange_kind, ExchangeKind::Fanout);
    assert!(cfg.requeue_on_nack(), "Tandem requeues by default");
    assert_eq!(cfg.target(), "rabbitmq at h:5673");
    assert!(
        !format!("{cfg:?}").contains("secret"),
        "credentials redacted"
    );

    let cfg = RabbitMqConfig::from_metadata(&md(&[
        ("hostname", "rabbit:5672"),
        ("username", "me"),
        ("password", "p@ss:word"),
        ("enableDeadLetter", "true"),
        ("reconnectWaitSeconds", "7"),
        ("exchangeKind", "topic"),
        ("maxLen", "10"),
        ("maxLenBytes", "0"),
        ("ttlInSeconds", "60"),
        ("publisherConfirm", "false"),
        ("concurrencyMode", "single"),
    ]))
    .expect("valid");
    assert_eq!(cfg.uri, "amqp://me:p%40ss%3Aword@rabbit:5672");
    assert!(
        !cfg.requeue_on_nack(),
        "dead-lettering takes nacked messages"
    );
    assert_eq!(cfg.reconnect_wait, Duration::from_secs(7));
    assert_eq!((cfg.max_len, cfg.max_len_bytes), (Some(10), None));
    assert_eq!(cfg.ttl, Some(Duration::from_secs(60)));
}

#[test]
fn bad_metadata_names_the_field() {
    let c = ("connectionString", "amqp://h");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "hostname"),
        (&[("connectionString", "not a uri")], "connectionString"),
        (&[("connectionString", "amqps://h")], "connectionString"),
        (&[("hostname", "h"), ("protocol", "amqps")], "protocol"),
        (&[("hostname", "h"), ("protocol", "http")], "protocol"),
        (&[c, ("durable", "maybe")], "durable"),
        (&[c, ("deliveryMode", "3")], "deliveryMode"),
        (&[c, ("prefetchCount", "-1")], "prefetchCount"),
        (&[c, ("prefetchCount", "70000")], "prefetchCount"),
        (&[c, ("reconnectWait", "soon")], "reconnectWait"),
        (&[c, ("exchangeKind", "x-delayed")], "exchangeKind"),
        (&[c, ("maxLen", "-1")], "maxLen"),
        (&[c, ("ttlInSeconds", "x")], "ttlInSeconds"),
        (&[c, ("caCert", "pem")], "caCert"),
        (&[c, ("saslExternal", "true")], "saslExternal"),
        (&[c, ("concurrencyMode", "many")], "concurrencyMode"),
        (&[c, ("publisherConfirm", "x")], "publisherConfirm"),
    ];
    for (pairs, field) in cases {
        let err = RabbitMqConfig::from_metadata(&md(pairs))
            .expect_err(&format!("{pairs:?} must be refused"));
        assert_eq!(err.field, *field, "{pairs:?}: {err}");
    }
}

#[test]
fn the_prefetch_window_is_never_unlimited() {
    let c = ("connectionString", "amqp://h");
    let window = |extra: &[(&str, &str)]| {
        let mut pairs = vec![c];
        pairs.extend_from_slice(extra);
        RabbitMqConfig::from_metadata(&md(&pairs))
            .expect("valid")
            .prefetch()
    };
    assert_eq!(window(&[]), DEFAULT_PREFETCH);
    assert_eq!(window(&[("prefetchCount", "0")]), DEFAULT_PREFETCH);
    assert_eq!(window(&[("prefetchCount", "5")]), 5);
    assert!(usize::from(DEFAULT_PREFETCH) > super::super::DELIVERY_BUFFER);
}
