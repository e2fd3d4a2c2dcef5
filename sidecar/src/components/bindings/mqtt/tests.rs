//! The MQTT binding against a real `mosquitto`, checked with a plain rumqttc client.

use super::*;
use crate::testing::MosquittoServer;
use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use std::time::Duration;

fn md(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

async fn binding(server: &MosquittoServer, extra: &[(&str, &str)]) -> MqttBinding {
    let url = server.url();
    let mut pairs = vec![("url", url.as_str()), ("topic", "readings")];
    pairs.extend_from_slice(extra);
    let cfg = MqttBindingConfig::from_metadata(&md(&pairs)).expect("config");
    MqttBinding::connect(&cfg).await.expect("connect")
}

/// A plain client (automatic acks) on its own event loop task; returns once its SUBACK came.
async fn raw_client(
    server: &MosquittoServer,
    subscribe: Option<&str>,
) -> (AsyncClient, mpsc::UnboundedReceiver<Publish>) {
    let id = format!("raw-{:08x}", rand::random::<u32>());
    let (client, mut events) =
        AsyncClient::new(MqttOptions::new(id, "127.0.0.1", server.port()), 16);
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed, ready) = oneshot::channel();
    if let Some(topic) = subscribe {
        client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .expect("raw subscribe");
    }
    tokio::spawn(async move {
        let mut subscribed = Some(subscribed);
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::Publish(p)) => {
                    let _ = tx.send(p);
                }
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(s) = subscribed.take() {
                        let _ = s.send(());
                    }
                }
                _ => {}
            }
        }
    });
    if subscribe.is_some() {
        tokio::time::timeout(Duration::from_secs(5), ready)
            .await
            .expect("SUBACK in time")
            .expect("event loop alive");
    }
    (client, rx)
}

fn request(operation: &str, data: &str, metadata: &[(&str, &str)]) -> InvokeRequest {
    InvokeRequest {
        operation: operation.into(),
        data: Bytes::from(data.to_owned()),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

async fn next_event(rx: &mut mpsc::Receiver<InputEvent>) -> InputEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event in time")
        .expect("channel open")
}

#[tokio::test]
async fn output_create_reaches_a_plain_subscriber() {
    let server = MosquittoServer::start();
    let b = binding(&server, &[]).await;
    let (_raw, mut received) = raw_client(&server, Some("readings")).await;
    let (_raw2, mut other) = raw_client(&server, Some("elsewhere")).await;
    assert_eq!(b.operations(), ["create"]);
    let answer = b
        .invoke(request("create", "\"21.5\"", &[]))
        .await
        .expect("create");
    assert_eq!(answer, InvokeResponse::default());
    let got = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(got.payload, Bytes::from_static(b"\"21.5\""));
    assert!(!got.retain);
    b.invoke(request("create", "x", &[("topic", "elsewhere")]))
        .await
        .expect("create with topic override");
    let got = tokio::time::timeout(Duration::from_secs(5), other.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("elsewhere", &b"x"[..])
    );

    let err = b
        .invoke(request("delete", "", &[]))
        .await
        .expect_err("unsupported");
    assert!(
        matches!(err, BindingError::UnsupportedOperation { .. }),
        "{err}"
    );
    for bad in [&[("topic", "a/#")][..], &[("retain", "perhaps")][..]] {
        let err = b
            .invoke(request("create", "x", bad))
            .await
            .expect_err("bad request");
        assert!(matches!(err, BindingError::BadRequest(_)), "{bad:?}: {err}");
    }
    b.shutdown().await;
}

#[tokio::test]
async fn input_redelivers_on_err_and_acks_on_ok() {
    let server = MosquittoServer::start();
    let b = binding(&server, &[("consumerID", "reader")]).await;
    let mut events = b.read().await.expect("read");
    assert!(b.read().await.is_err(), "read is called once");
    let (raw, _) = raw_client(&server, None).await;
    raw.publish("readings", QoS::AtLeastOnce, false, "42")
        .await
        .expect("raw publish");

    let first = next_event(&mut events).await;
    assert_eq!(first.data, Bytes::from_static(b"42"));
    assert_eq!(
        first.metadata.get("topic").map(String::as_str),
        Some("readings")
    );
    let _ = first.done.send(Err("the app answered 500".into()));
    let second = next_event(&mut events).await;
    assert_eq!(
        second.data,
        Bytes::from_static(b"42"),
        "the same message again"
    );
    let _ = second.done.send(Ok(Bytes::new()));
    if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(1200), events.recv()).await {
        panic!("delivered again after Ok: {:?}", e.data);
    }
    b.shutdown().await;
    // PUBACKed: the session, resumed by the same client id, holds nothing more.
    let again = binding(&server, &[("consumerID", "reader")]).await;
    let mut events = again.read().await.expect("read");
    if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(1200), events.recv()).await {
        panic!("the broker sent an acked message again: {:?}", e.data);
    }
    again.shutdown().await;
}

#[tokio::test]
async fn unanswered_input_event_is_kept_by_the_broker() {
    let server = MosquittoServer::start();
    let b = binding(
        &server,
        &[("consumerID", "slow"), ("backOffMaxRetries", "0")],
    )
    .await;
    let mut events = b.read().await.expect("read");
    let (raw, _) = raw_client(&server, None).await;
    raw.publish("readings", QoS::AtLeastOnce, false, "kept")
        .await
        .expect("raw publish");
    let first = next_event(&mut events).await;
    // No retries allowed: the failure leaves it unacknowledged with the broker.
    let _ = first.done.send(Err("down".into()));
    if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(800), events.recv()).await {
        panic!("backOffMaxRetries 0 redelivered {:?}", e.data);
    }
    b.shutdown().await;
    let again = binding(&server, &[("consumerID", "slow")]).await;
    let mut events = again.read().await.expect("read");
    let event = next_event(&mut events).await;
    assert_eq!(event.data, Bytes::from_static(b"kept"));
    let _ = event.done.send(Ok(Bytes::new()));
    again.shutdown().await;
}

#[test]
fn binding_metadata_names_the_field() {
    let ok = MqttBindingConfig::from_metadata(&md(&[("url", "tcp://h"), ("topic", "t/1")]))
        .expect("valid");
    assert_eq!(ok.topic, "t/1");
    let filter = MqttBindingConfig::from_metadata(&md(&[("url", "tcp://h"), ("topic", "t/+/x/#")]))
        .expect("a topic filter is a valid input topic");
    assert_eq!(filter.topic, "t/+/x/#");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("url", "tcp://h")], "topic"),
        (&[("url", "tcp://h"), ("topic", "t/#/x")], "topic"),
        (&[("topic", "t")], "url"),
        (&[("url", "tcp://h"), ("topic", "t"), ("qos", "5")], "qos"),
    ];
    for (pairs, field) in cases {
        let err = MqttBindingConfig::from_metadata(&md(pairs))
            .expect_err(&format!("{pairs:?} must be refused"));
        assert_eq!(err.field, *field, "{pairs:?}: {err}");
    }
}

#[tokio::test]
async fn the_component_table_builds_both_sides() {
    use crate::components::factory::{self, Instance};
    let server = MosquittoServer::start();
    let url = server.url();
    let metadata = md(&[("url", &url), ("topic", "t")]);
    let config = factory::settings("bindings.mqtt3", &metadata, std::path::Path::new("."))
        .expect("bindings.mqtt3 is in the table");
    match config.init().await {
        Ok(Instance::Binding(b)) => assert!(b.input.is_some() && b.output.is_some()),
        Ok(_) => panic!("bindings.mqtt3 must build a binding"),
        Err(e) => panic!("init: {e}"),
    }
}
