use super::*;
use crate::pubsub::subscriptions::SubscriptionJson;
use serde_json::json;

fn subscription(json: Value) -> Subscription {
    let json: SubscriptionJson = serde_json::from_value(json).expect("subscription json");
    Subscription::try_from(json).expect("valid subscription")
}

fn plain() -> Subscription {
    subscription(json!({"pubsubname": "p", "topic": "t", "route": "/in"}))
}

fn message(data: &str) -> Message {
    Message {
        topic: "t".into(),
        data: Bytes::from(data.to_owned()),
        metadata: Default::default(),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a time")
}

fn deliver(prepared: Prepared) -> Event {
    match prepared {
        Prepared::Deliver(event) => event,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

/// The app gets what the full path (parse, then write back) would give it, in meaning.
fn same_json(a: &Bytes, b: &Bytes) -> bool {
    serde_json::from_slice::<Value>(a).ok() == serde_json::from_slice::<Value>(b).ok()
}

#[test]
fn a_plain_cloudevent_goes_out_as_published_with_its_trace_context() {
    let data = r#"{"data":{"seq":1},"id":"1","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"k=v","expiration":"2099-01-01T00:00:00Z"}"#;
    let event = deliver(prepare(&plain(), &message(data), now()));
    assert_eq!(event.path, "/in");
    assert_eq!(event.body, Bytes::from(data), "the message's own bytes");
    assert_eq!(
        event.traceparent.as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    assert_eq!(event.tracestate.as_deref(), Some("k=v"));
}

#[test]
fn the_light_read_decides_as_the_full_event_would() {
    // (message, expected outcome: "expired", "deliver" or "raw" (a raw-payload event))
    let cases = [
        (
            r#"{"expiration":"2000-01-01T00:00:00Z","data":1}"#,
            "expired",
        ),
        (
            r#"{"expiration":"2099-01-01T00:00:00Z","data":1}"#,
            "deliver",
        ),
        (
            r#"{"expiration":12,"traceparent":null,"data":1}"#,
            "deliver",
        ),
        (r#"{"expiration":"not a time"}"#, "deliver"),
        (r#"  {"data":"a \"quoted\" \u00e9 string"}  "#, "deliver"),
        // Duplicate members: the light read refuses, the full path takes the last one.
        (
            r#"{"expiration":"2099-01-01T00:00:00Z","expiration":"2000-01-01T00:00:00Z"}"#,
            "expired",
        ),
        (r#""just a string""#, "raw"),
        (r#"[1,2]"#, "raw"),
        ("not json at all", "raw"),
        (r#"{"unterminated":"#, "raw"),
    ];
    for (data, want) in cases {
        let got = prepare(&plain(), &message(data), now());
        match (want, got) {
            ("expired", Prepared::Expired) => {}
            ("deliver", Prepared::Deliver(event)) => {
                assert!(same_json(&event.body, &Bytes::from(data)), "{data}")
            }
            ("raw", Prepared::Deliver(event)) => {
                let body: Value = serde_json::from_slice(&event.body).expect("json");
                assert!(body["data_base64"].is_string(), "{data}: {body}");
            }
            (want, got) => panic!("{data}: wanted {want}, got {got:?}"),
        }
    }
}

#[test]
fn raw_payload_subscriptions_wrap_the_bytes() {
    let sub = subscription(json!({"pubsubname": "p", "topic": "t", "route": "/in",
        "metadata": {"rawPayload": "true"}}));
    let event = deliver(prepare(&sub, &message(r#"{"a":1}"#), now()));
    let body: Value = serde_json::from_slice(&event.body).expect("json");
    assert_eq!(body["data_base64"], "eyJhIjoxfQ==");
    assert_eq!(body["topic"], "t");
}

#[test]
fn routing_rules_see_the_event_and_no_route_means_none() {
    let sub = subscription(json!({"pubsubname": "p", "topic": "t", "routes": {
        "rules": [{"match": "event.data.kind == \"big\"", "path": "/big"}],
        "default": "/other"}}));
    let big = deliver(prepare(&sub, &message(r#"{"data":{"kind":"big"}}"#), now()));
    assert_eq!(big.path, "/big");
    let small = deliver(prepare(
        &sub,
        &message(r#"{"data":{"kind":"small"}}"#),
        now(),
    ));
    assert_eq!(small.path, "/other");
    let only_rule = subscription(json!({"pubsubname": "p", "topic": "t", "routes": {
        "rules": [{"match": "event.data.kind == \"big\"", "path": "/big"}]}}));
    assert_eq!(
        prepare(&only_rule, &message(r#"{"data":{"kind":"small"}}"#), now()),
        Prepared::NoRoute
    );
    // A first rule without a match always matches: no event needed to route.
    let catch_all = subscription(json!({"pubsubname": "p", "topic": "t", "routes": {
        "rules": [{"match": "", "path": "/all"}, {"match": "event.x == 1", "path": "/x"}]}}));
    assert_eq!(catch_all.routes.fixed(), Some(Some("/all")));
    assert_eq!(sub.routes.fixed(), None);
    let data = r#"{"x":1}"#;
    let all = deliver(prepare(&catch_all, &message(data), now()));
    assert_eq!((all.path.as_str(), all.body), ("/all", Bytes::from(data)));
}
