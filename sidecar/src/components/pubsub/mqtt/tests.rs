//! The MQTT broker against a real `mosquitto`.

use super::*;
use crate::components::metadata::Metadata;
use crate::testing::MosquittoServer;
use bytes::Bytes;
use std::time::{Duration, Instant};

fn md(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

async fn broker(server: &MosquittoServer, extra: &[(&str, &str)]) -> MqttPubSub {
    let url = server.url();
    let mut pairs = vec![("url", url.as_str())];
    pairs.extend_from_slice(extra);
    let settings = MqttSettings::from_metadata(&md(&pairs)).expect("config");
    MqttPubSub::connect(&settings).await.expect("connect")
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

/// Nothing more arrives for a while (the time a redelivery would have taken, several times).
async fn nothing_more(rx: &mut mpsc::Receiver<Delivery>) {
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(1200), rx.recv()).await {
        panic!("unexpected delivery {:?}", d.message.data);
    }
}

#[tokio::test]
async fn round_trip_and_an_ack_is_final() {
    let server = MosquittoServer::start();
    let b = broker(&server, &[]).await;
    let mut rx = b.subscribe("orders", "app").await.expect("subscribe");
    b.publish(msg("orders", "hello")).await.expect("publish");
    let d = next(&mut rx).await;
    assert_eq!(d.message.data, Bytes::from_static(b"hello"));
    assert_eq!(d.message.topic, "orders");
    assert_eq!(
        d.message.metadata.get("retained").map(String::as_str),
        Some("false")
    );
    d.acker.ack().await;
    nothing_more(&mut rx).await;
    b.close().await;
    assert!(
        tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .expect("closes in time")
            .is_none(),
        "close ends the subscription"
    );
    // The broker got the PUBACK: the group's session, resumed, has nothing left.
    let again = broker(&server, &[]).await;
    let mut rx = again.subscribe("orders", "app").await.expect("subscribe");
    nothing_more(&mut rx).await;
    again.close().await;
}

#[tokio::test]
async fn nack_is_redelivered_in_process_then_acked() {
    let server = MosquittoServer::start();
    let b = broker(&server, &[]).await;
    let mut rx = b.subscribe("t", "g").await.expect("subscribe");
    b.publish(msg("t", "again")).await.expect("publish");
    let first = next(&mut rx).await;
    let nacked_at = Instant::now();
    first.acker.nack().await;
    let second = next(&mut rx).await;
    assert!(
        nacked_at.elapsed() >= Duration::from_millis(150),
        "after a back-off"
    );
    assert_eq!(second.message.data, Bytes::from_static(b"again"));
    second.acker.nack().await;
    let third = next(&mut rx).await;
    third.acker.ack().await;
    nothing_more(&mut rx).await;
    b.close().await;
}

#[tokio::test]
async fn back_off_max_retries_bounds_redelivery() {
    let server = MosquittoServer::start();
    let b = broker(&server, &[("backOffMaxRetries", "1")]).await;
    let mut rx = b.subscribe("t", "g").await.expect("subscribe");
    b.publish(msg("t", "poison")).await.expect("publish");
    next(&mut rx).await.acker.nack().await;
    next(&mut rx).await.acker.nack().await;
    nothing_more(&mut rx).await;
    b.close().await;
}

#[tokio::test]
async fn unacked_message_survives_the_consumer_going_away() {
    let server = MosquittoServer::start();
    let group = [("consumerID", "keeper")];
    let first = broker(&server, &group).await;
    let mut rx = first.subscribe("jobs", "app").await.expect("subscribe");
    first.publish(msg("jobs", "1")).await.expect("publish");
    let unsettled = next(&mut rx).await;
    assert_eq!(unsettled.message.data, Bytes::from_static(b"1"));
    first.close().await; // goes away without acking
    drop(unsettled);
    let publisher = broker(&server, &[]).await;
    publisher
        .publish(msg("jobs", "2"))
        .await
        .expect("publish while away");

    let second = broker(&server, &group).await;
    let mut rx = second.subscribe("jobs", "app").await.expect("subscribe");
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = next(&mut rx).await;
        got.push(d.message.data.clone());
        d.acker.ack().await;
    }
    got.sort();
    assert_eq!(
        got,
        vec!["1", "2"],
        "the unacked message and the one sent meanwhile"
    );
    second.close().await;
    publisher.close().await;
}

#[tokio::test]
async fn every_group_gets_every_message() {
    let server = MosquittoServer::start();
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
    b.close().await;
}

#[tokio::test]
async fn retained_messages_reach_later_subscribers() {
    let server = MosquittoServer::start();
    let b = broker(&server, &[("retain", "true"), ("cleanSession", "true")]).await;
    b.publish(msg("status", "up")).await.expect("publish");
    let mut rx = b.subscribe("status", "late").await.expect("subscribe");
    let d = next(&mut rx).await;
    assert_eq!(d.message.data, Bytes::from_static(b"up"));
    assert_eq!(
        d.message.metadata.get("retained").map(String::as_str),
        Some("true")
    );
    d.acker.ack().await;
    b.close().await;
}

#[tokio::test]
async fn broker_restart_mid_stream_reconnects() {
    let mut server = MosquittoServer::start();
    let b = broker(&server, &[]).await;
    let mut rx = b.subscribe("t", "g").await.expect("subscribe");
    b.publish(msg("t", "before")).await.expect("publish");
    next(&mut rx).await.acker.ack().await;

    server.restart(); // no state kept: both connections must reconnect, the subscriber re-subscribe
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "no message made it after the restart"
        );
        n += 1;
        // A publish may fail while the connection is down, or land before the re-subscribe.
        if b.publish(msg("t", &format!("after-{n}"))).await.is_err() {
            continue;
        }
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            assert!(d.message.data.starts_with(b"after-"));
            d.acker.ack().await;
            break;
        }
    }
    b.publish(msg("t", "steady"))
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

#[tokio::test]
async fn init_fails_while_the_broker_is_down() {
    let mut server = MosquittoServer::start();
    server.stop();
    let settings = MqttSettings::from_metadata(&md(&[("url", &server.url())])).expect("config");
    let err = MqttPubSub::connect(&settings)
        .await
        .expect_err("broker down");
    assert!(
        err.contains("connecting to mqtt broker at 127.0.0.1"),
        "{err}"
    );
}
