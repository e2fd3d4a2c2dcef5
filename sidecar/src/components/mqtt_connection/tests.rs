//! The MQTT metadata, and the connection against a real `mosquitto` (plain and mutual TLS).

use super::client::MqttClient;
use super::*;
use crate::testing::mosquitto_server::{MosquittoServer, TestCerts};
use bytes::Bytes;

fn md(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn defaults_and_url_forms() {
    let s = MqttSettings::from_metadata(&md(&[("url", "tcp://localhost:1883")])).expect("valid");
    assert_eq!((s.host.as_str(), s.port), ("localhost", 1883));
    assert_eq!(s.qos, QoS::AtLeastOnce);
    assert!(!s.retain && !s.clean_session && s.tls.is_none());
    assert_eq!((s.consumer_id, s.max_retries), (None, None));

    let s = MqttSettings::from_metadata(&md(&[
        ("url", "mqtt://user:p%40ss@broker/"),
        ("qos", "2"),
        ("retain", "true"),
        ("cleanSession", "1"),
        ("consumerID", "c1"),
        ("backOffMaxRetries", "3"),
    ]))
    .expect("valid");
    assert_eq!((s.host.as_str(), s.port), ("broker", 1883));
    assert_eq!(s.username.as_deref(), Some("user"));
    assert_eq!(s.password.as_deref(), Some("p@ss"));
    assert_eq!(s.qos, QoS::ExactlyOnce);
    assert!(s.retain && s.clean_session);
    assert_eq!(s.consumer_id.as_deref(), Some("c1"));
    assert_eq!(s.max_retries, Some(3));
    assert!(!format!("{s:?}").contains("p@ss"), "password redacted");

    let s =
        MqttSettings::from_metadata(&md(&[("url", "ssl://[::1]"), ("backOffMaxRetries", "-1")]))
            .expect("valid");
    assert_eq!((s.host.as_str(), s.port), ("::1", 8883));
    assert!(s.tls.is_some());
    assert_eq!(s.max_retries, None);
    let s = MqttSettings::from_metadata(&md(&[("url", "mqtts://h:9000"), ("qos", "0")]))
        .expect("valid");
    assert_eq!((s.port, s.qos), (9000, QoS::AtMostOnce));
}

#[test]
fn bad_metadata_names_the_field() {
    let certs = TestCerts::generate();
    let (cert, key) = (certs.pem("client.crt"), certs.pem("client.key"));
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "url"),
        (&[("url", "localhost:1883")], "url"),
        (&[("url", "http://h:80")], "url"),
        (&[("url", "ws://h:80")], "url"),
        (&[("url", "tcp://")], "url"),
        (&[("url", "tcp://h:0")], "url"),
        (&[("url", "tcp://h:port")], "url"),
        (&[("url", "tcp://h:1883/path")], "url"),
        (&[("url", "tcp://[::1:1883")], "url"),
        (&[("url", "tcp://h"), ("qos", "3")], "qos"),
        (&[("url", "tcp://h"), ("qos", "one")], "qos"),
        (&[("url", "tcp://h"), ("retain", "maybe")], "retain"),
        (&[("url", "tcp://h"), ("cleanSession", "x")], "cleanSession"),
        (
            &[("url", "tcp://h"), ("backOffMaxRetries", "-2")],
            "backOffMaxRetries",
        ),
        (
            &[("url", "tcp://h"), ("backOffMaxRetries", "x")],
            "backOffMaxRetries",
        ),
        (&[("url", "tcp://h"), ("caCert", &cert)], "caCert"),
        (&[("url", "ssl://h"), ("caCert", "not pem")], "caCert"),
        (&[("url", "ssl://h"), ("clientCert", &cert)], "clientKey"),
        (&[("url", "ssl://h"), ("clientKey", &key)], "clientCert"),
        (
            &[
                ("url", "ssl://h"),
                ("clientCert", &cert),
                ("clientKey", "junk"),
            ],
            "clientKey",
        ),
        (
            &[
                ("url", "ssl://h"),
                ("clientCert", "junk"),
                ("clientKey", &key),
            ],
            "clientCert",
        ),
    ];
    for (pairs, field) in cases {
        let err = MqttSettings::from_metadata(&md(pairs))
            .expect_err(&format!("{pairs:?} must be refused"));
        assert_eq!(err.field, *field, "{pairs:?}: {err}");
    }
}

#[test]
fn redelivery_backs_off_and_respects_the_limit() {
    assert_eq!(redelivery_delay(1), Duration::from_millis(200));
    assert_eq!(redelivery_delay(2), Duration::from_millis(400));
    assert_eq!(redelivery_delay(30), Duration::from_secs(10));
    assert!(may_redeliver(None, 1_000));
    assert!(!may_redeliver(Some(0), 0));
    assert!(may_redeliver(Some(2), 1) && !may_redeliver(Some(2), 2));
}

#[tokio::test]
async fn mutual_tls_round_trip_and_untrusted_server_is_refused() {
    let certs = TestCerts::generate();
    let server = MosquittoServer::start_tls(&certs);
    let url = server.url();
    let (ca, cert, key) = (
        certs.pem("ca.crt"),
        certs.pem("client.crt"),
        certs.pem("client.key"),
    );
    let tls = md(&[
        ("url", &url),
        ("caCert", &ca),
        ("clientCert", &cert),
        ("clientKey", &key),
    ]);
    let settings = MqttSettings::from_metadata(&tls).expect("valid");
    let client = MqttClient::connect(&settings, "tls-client", true)
        .await
        .expect("TLS connect");
    let mut inbound = client.subscribe("secure").await.expect("subscribe");
    client
        .publish("secure", &Bytes::from_static(b"sealed"), false)
        .await
        .expect("publish");
    let got = tokio::time::timeout(Duration::from_secs(5), inbound.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(got.payload, Bytes::from_static(b"sealed"));
    got.receipt.ack().await;
    client.close().await;

    // The server's certificate is not signed by this CA: the handshake fails.
    let other = TestCerts::generate();
    let wrong_ca = md(&[
        ("url", &url),
        ("caCert", &other.pem("ca.crt")),
        ("clientCert", &cert),
        ("clientKey", &key),
    ]);
    let settings = MqttSettings::from_metadata(&wrong_ca).expect("valid");
    let err = MqttClient::connect(&settings, "tls-wrong-ca", true)
        .await
        .err()
        .expect("an untrusted server is refused");
    assert!(err.contains("connecting to mqtt broker"), "{err}");
    // Without a client certificate the broker refuses us.
    let no_cert = md(&[("url", &url), ("caCert", &ca)]);
    let settings = MqttSettings::from_metadata(&no_cert).expect("valid");
    assert!(
        MqttClient::connect(&settings, "tls-anonymous", true)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn wildcard_publishes_bad_filters_and_duplicate_subscriptions_are_refused() {
    let server = MosquittoServer::start();
    let settings = MqttSettings::from_metadata(&md(&[("url", &server.url())])).expect("valid");
    let client = MqttClient::connect(&settings, "checks", true)
        .await
        .expect("connect");
    for topic in ["a/+", "a/#", ""] {
        assert!(
            client.publish(topic, &Bytes::new(), false).await.is_err(),
            "{topic:?}"
        );
    }
    for filter in ["a/#/b", "a+", ""] {
        assert!(client.subscribe(filter).await.is_err(), "{filter:?}");
    }
    let _rx = client.subscribe("once").await.expect("subscribe");
    let err = client
        .subscribe("once")
        .await
        .expect_err("a second subscriber");
    assert!(err.contains("already subscribed"), "{err}");
    client.close().await;
    let err = client
        .publish("once", &Bytes::new(), false)
        .await
        .expect_err("closed");
    assert!(err.contains("closed"), "{err}");
}

/// The topic of the next message on `rx`, acked.
async fn next_topic(rx: &mut tokio::sync::mpsc::Receiver<super::client::Inbound>) -> String {
    let inbound = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .expect("a message in time")
        .expect("open");
    inbound.receipt.ack().await;
    assert_eq!(
        inbound.payload,
        inbound.topic.as_bytes(),
        "payload names its topic"
    );
    inbound.topic
}

#[tokio::test]
async fn filter_subscriptions_receive_messages_with_their_concrete_topics() {
    let server = MosquittoServer::start();
    let settings = MqttSettings::from_metadata(&md(&[("url", &server.url())])).expect("valid");
    let client = MqttClient::connect(&settings, "filters", true)
        .await
        .expect("connect");
    let mut one_level = client.subscribe("sensors/+/temp").await.expect("+ filter");
    let mut any_level = client.subscribe("logs/#").await.expect("# filter");
    let mut exact = client.subscribe("sensors/hall/temp").await.expect("exact");
    for topic in [
        "sensors/kitchen/temp",
        "sensors/hall/temp",
        "logs/a/b/c",
        "logs",
        "sensors/x/y/temp",
    ] {
        client
            .publish(topic, &Bytes::from(topic.to_owned()), false)
            .await
            .expect("publish");
    }
    assert_eq!(next_topic(&mut one_level).await, "sensors/kitchen/temp");
    assert_eq!(next_topic(&mut exact).await, "sensors/hall/temp");
    assert_eq!(next_topic(&mut any_level).await, "logs/a/b/c");
    assert_eq!(next_topic(&mut any_level).await, "logs");
    // "sensors/x/y/temp" matches no filter: nothing more for the + subscription.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), one_level.recv())
            .await
            .is_err()
    );
    client.close().await;
}
