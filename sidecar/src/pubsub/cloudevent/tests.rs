use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::*;

/// 2024-05-06T07:08:09Z, the whole second.
const NOW_SECS: i64 = 1_714_979_289;
/// 2024-05-06T07:08:09.5Z: a fraction, which the envelope's `time` drops.
fn now() -> OffsetDateTime {
    at(NOW_SECS, 500_000_000)
}

fn at(secs: i64, nanos: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(secs) * 1_000_000_000 + nanos)
        .expect("valid time")
}
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn publish(
    body: &[u8],
    content_type: Option<&str>,
    metadata: &BTreeMap<String, String>,
) -> Result<Value, CloudEventError> {
    envelope(&PublishInput {
        pubsub: "pubsub",
        topic: "orders/new",
        source_app: "checkout",
        body,
        content_type,
        traceparent: None,
        tracestate: None,
        metadata,
        now: now(),
    })
}

fn is_uuid_v4(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lens == [8, 4, 4, 4, 12]
        && id
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

#[test]
fn data_follows_the_content_type() {
    // (body, content type, expected `data`; None = the body in `data_base64`)
    #[rustfmt::skip]
    let cases: Vec<(&[u8], Option<&str>, Option<Value>)> = vec![
        (br#"{"a":1}"#, Some("application/json"), Some(json!({"a": 1}))),
        (br#"[1,"x"]"#, Some("application/json; charset=utf-8"), Some(json!([1, "x"]))),
        (b"42", Some("Application/JSON"), Some(json!(42))),
        (br#"{"v":true}"#, Some("application/vnd.x+json"), Some(json!({"v": true}))),
        (b"hello", Some("text/plain"), Some(json!("hello"))),
        (b"<p>hi</p>", Some("text/html; charset=utf-8"), Some(json!("<p>hi</p>"))),
        (br#"{"a":1}"#, None, Some(json!(r#"{"a":1}"#))),
        (b"plain", Some(""), Some(json!("plain"))),
        (b"\x00\xff\x10", Some("application/octet-stream"), None),
        (b"\x89PNG", Some("image/png"), None),
        (b"\xff\xfe", Some("text/plain"), None),
    ];
    for (body, ct, data) in cases {
        let ce = publish(body, ct, &BTreeMap::new()).expect("envelope");
        let datacontenttype = ct.filter(|c| !c.is_empty()).unwrap_or("text/plain");
        assert_eq!(ce["datacontenttype"], datacontenttype, "{ct:?}");
        match data {
            Some(data) => {
                assert_eq!(ce["data"], data, "{ct:?}");
                assert!(ce.get("data_base64").is_none(), "{ct:?}");
            }
            None => {
                assert!(ce.get("data").is_none(), "{ct:?}");
                let encoded = ce["data_base64"].as_str().expect("string");
                assert_eq!(STANDARD.decode(encoded).expect("base64"), body, "{ct:?}");
            }
        }
    }
}

#[test]
fn wrapped_envelope_has_daprs_fields() {
    let ce = publish(b"x", Some("text/plain"), &BTreeMap::new()).expect("envelope");
    assert!(is_uuid_v4(ce["id"].as_str().expect("id")), "{}", ce["id"]);
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["source"], "checkout");
    assert_eq!(ce["type"], "com.dapr.event.sent");
    assert_eq!(ce["topic"], "orders/new");
    assert_eq!(ce["pubsubname"], "pubsub");
    assert_eq!(ce["time"], "2024-05-06T07:08:09Z");
    for absent in [
        "subject",
        "traceid",
        "traceparent",
        "tracestate",
        "expiration",
    ] {
        assert!(ce.get(absent).is_none(), "{absent} should be absent");
    }
}

#[test]
fn an_empty_json_body_is_an_event_without_data() {
    let ce =
        publish(b"", Some("application/json"), &BTreeMap::new()).expect("empty body publishes");
    assert_eq!(ce["data"], Value::Null);
}

#[test]
fn bad_bodies_are_errors() {
    const CE: &str = "application/cloudevents+json";
    #[rustfmt::skip]
    let cases: Vec<(&[u8], &str, &str)> = vec![
        (b"{not json", "application/json", "not valid JSON"),
        (b"nope", "application/problem+json", "not valid JSON"),
        (b"[1,2]", CE, "not a valid CloudEvent"),
        (b"\"str\"", CE, "not a valid CloudEvent"),
        (b"{broken", "application/cloudevents+json; charset=utf-8", "not a valid CloudEvent"),
    ];
    for (body, ct, message) in cases {
        let err = publish(body, Some(ct), &BTreeMap::new()).expect_err(ct);
        assert!(err.to_string().contains(message), "{ct}: {err}");
        let expected_variant = if ct.starts_with(CE) {
            matches!(err, CloudEventError::InvalidCloudEvent(_))
        } else {
            matches!(err, CloudEventError::InvalidJson { .. })
        };
        assert!(expected_variant, "{ct}: {err:?}");
    }
}

#[test]
fn given_cloudevent_is_kept_completed_and_not_wrapped() {
    let body = br#"{"id":"my-id","type":"my.type","data":{"n":1},"topic":"other","pubsubname":"x","custom":"kept"}"#;
    for ct in [
        "application/cloudevents+json",
        "application/cloudevents+json; charset=utf-8",
    ] {
        let input = PublishInput {
            pubsub: "pubsub",
            topic: "orders",
            source_app: "checkout",
            body,
            content_type: Some(ct),
            traceparent: Some(TRACEPARENT),
            tracestate: Some("k=v"),
            metadata: &meta(&[("cloudevent.id", "ignored"), ("ttlInSeconds", "60")]),
            now: now(),
        };
        let ce = envelope(&input).expect("envelope");
        assert_eq!(ce["id"], "my-id");
        assert_eq!(ce["type"], "my.type");
        assert_eq!(ce["data"], json!({"n": 1}), "not double-wrapped");
        assert_eq!(ce["custom"], "kept");
        assert_eq!(ce["topic"], "orders");
        assert_eq!(ce["pubsubname"], "pubsub");
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["source"], "Dapr");
        assert_eq!(ce["time"], "2024-05-06T07:08:09Z");
        assert_eq!(ce["traceid"], TRACEPARENT);
        assert_eq!(ce["traceparent"], TRACEPARENT);
        assert_eq!(ce["tracestate"], "k=v");
        assert_eq!(ce["expiration"], "2024-05-06T07:09:09Z");
        assert!(ce.get("datacontenttype").is_none());
    }
}

#[test]
fn given_cloudevent_fields_win_and_missing_ones_are_filled() {
    let body = br#"{"source":"app","specversion":"1.0","time":"2020-01-01T00:00:00Z","traceparent":"mine"}"#;
    let ce =
        publish(body, Some("application/cloudevents+json"), &BTreeMap::new()).expect("envelope");
    assert!(is_uuid_v4(ce["id"].as_str().expect("id")));
    assert_eq!(ce["type"], "com.dapr.event.sent");
    assert_eq!(ce["source"], "app");
    assert_eq!(ce["time"], "2020-01-01T00:00:00Z");
    assert_eq!(ce["traceparent"], "mine");
    assert!(
        ce.get("traceid").is_none(),
        "no traceparent given in the input"
    );
}

#[test]
fn metadata_overrides_are_case_insensitive() {
    let cases = [
        ("cloudevent.id", "id", "custom-id"),
        ("CloudEvent.ID", "id", "custom-id"),
        ("cloudevent.source", "source", "billing"),
        ("CLOUDEVENT.TYPE", "type", "order.created"),
        ("cloudevent.subject", "subject", "order-7"),
        ("cloudEvent.Subject", "subject", "order-7"),
        ("cloudevent.traceid", "traceid", "tid"),
        ("cloudevent.traceparent", "traceparent", "tp"),
        ("cloudevent.tracestate", "tracestate", "ts=1"),
    ];
    for (key, field, value) in cases {
        let ce = publish(b"x", None, &meta(&[(key, value)])).expect("envelope");
        assert_eq!(ce[field], value, "{key}");
    }
    let ce = publish(
        b"x",
        None,
        &meta(&[("xcloudevent.id", "no"), ("cloudevent.idx", "no")]),
    )
    .expect("envelope");
    assert!(is_uuid_v4(ce["id"].as_str().expect("id")));
}

#[test]
fn traceparent_becomes_traceid_and_traceparent() {
    let metadata = BTreeMap::new();
    let input = PublishInput {
        pubsub: "pubsub",
        topic: "t",
        source_app: "a",
        body: b"{}",
        content_type: Some("application/json"),
        traceparent: Some(TRACEPARENT),
        tracestate: Some("congo=t61rcWkgMzE"),
        metadata: &metadata,
        now: now(),
    };
    let ce = envelope(&input).expect("envelope");
    assert_eq!(ce["traceid"], TRACEPARENT);
    assert_eq!(ce["traceparent"], TRACEPARENT);
    assert_eq!(ce["tracestate"], "congo=t61rcWkgMzE");
}

#[test]
fn ttl_sets_expiration() {
    // (ttlInSeconds, expected expiration in seconds from now)
    let cases = [
        (None, None),
        (Some(""), None),
        (Some("60"), Some(60)),
        (Some("86400"), Some(86_400)),
    ];
    for (ttl, seconds) in cases {
        let metadata = ttl.map_or_else(BTreeMap::new, |v| meta(&[("ttlInSeconds", v)]));
        let expected = seconds.map(|s| now() + Duration::seconds(s));
        assert_eq!(
            expiration(&metadata, now()).expect("ttl"),
            expected,
            "{ttl:?}"
        );
    }
    let ce = publish(b"x", None, &meta(&[("ttlInSeconds", "60")])).expect("envelope");
    assert_eq!(ce["expiration"], "2024-05-06T07:09:09Z");
}

#[test]
fn bad_ttl_is_an_error_naming_the_field() {
    for bad in ["abc", "1.5", "-5", "0", " 60", "99999999999999"] {
        let metadata = meta(&[("ttlInSeconds", bad)]);
        let err = expiration(&metadata, now()).expect_err(bad);
        assert!(
            matches!(&err, CloudEventError::InvalidMetadata { field, value, .. } if field == "ttlInSeconds" && value == bad),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains("ttlInSeconds"), "{err}");
        assert!(publish(b"x", None, &metadata).is_err(), "{bad}");
    }
}

#[test]
fn expiry_is_checked_against_now() {
    let cases = [
        (json!({"expiration": "2024-05-06T07:08:10Z"}), false),
        (json!({"expiration": "2024-05-06T07:08:09Z"}), true),
        (json!({"expiration": "2024-05-06T07:08:09.5Z"}), false),
        (json!({"expiration": "2024-05-06T07:08:09.499999Z"}), true),
        (json!({"expiration": "2024-05-06T09:08:09+02:00"}), true),
        (json!({"expiration": "2024-05-06T05:08:10-02:00"}), false),
        (json!({"expiration": "2023-01-01T00:00:00Z"}), true),
        (json!({"expiration": "2030-01-01t00:00:00z"}), false),
        (json!({"expiration": "not a time"}), false),
        (json!({"expiration": 12}), false),
        (json!({"data": "no expiration"}), false),
        (json!("not an object"), false),
    ];
    for (event, expired) in cases {
        assert_eq!(is_expired(&event, now()), expired, "{event}");
    }
    let ce = publish(b"x", None, &meta(&[("ttlInSeconds", "5")])).expect("envelope");
    assert!(!is_expired(&ce, now()));
    assert!(!is_expired(&ce, now() + Duration::seconds(4)));
    assert!(is_expired(&ce, now() + Duration::seconds(6)));
}

#[test]
fn raw_payload_event_shape() {
    let payload = b"\x00raw\xffbytes";
    let ce = raw_payload_event(payload, "pubsub", "topic-a", now());
    assert!(is_uuid_v4(ce["id"].as_str().expect("id")));
    let expected = [
        ("specversion", "1.0"),
        ("source", "Dapr"),
        ("type", "com.dapr.event.sent"),
        ("datacontenttype", "application/octet-stream"),
        ("topic", "topic-a"),
        ("pubsubname", "pubsub"),
        ("time", "2024-05-06T07:08:09Z"),
    ];
    for (field, value) in expected {
        assert_eq!(ce[field], value, "{field}");
    }
    assert!(ce.get("data").is_none());
    let decoded = STANDARD
        .decode(ce["data_base64"].as_str().expect("string"))
        .expect("base64");
    assert_eq!(decoded, payload);
}

#[test]
fn metadata_flag_reads_go_booleans() {
    let cases = [
        (None, Some(false)),
        (Some(""), Some(false)),
        (Some("true"), Some(true)),
        (Some("True"), Some(true)),
        (Some("TRUE"), Some(true)),
        (Some("t"), Some(true)),
        (Some("1"), Some(true)),
        (Some("\"true\""), Some(true)),
        (Some("\"false\""), Some(false)),
        (Some("false"), Some(false)),
        (Some("F"), Some(false)),
        (Some("0"), Some(false)),
        (Some("yes"), None),
        (Some("tRUE"), None),
        (Some("\"yes\""), None),
        (Some(" true"), None),
    ];
    for (value, expected) in cases {
        let metadata = value.map_or_else(BTreeMap::new, |v| meta(&[("rawPayload", v)]));
        match (metadata_flag(&metadata, "rawPayload"), expected) {
            (Ok(got), Some(want)) => assert_eq!(got, want, "{value:?}"),
            (Err(err), None) => {
                assert!(err.to_string().contains("rawPayload"), "{err}");
                let named = matches!(&err, CloudEventError::InvalidMetadata { field, value: v, .. }
                    if field == "rawPayload" && Some(v.as_str()) == value);
                assert!(named, "{err:?}");
            }
            (got, want) => panic!("{value:?}: got {got:?}, want {want:?}"),
        }
        assert_eq!(
            is_raw_payload(&metadata).ok(),
            expected,
            "is_raw_payload {value:?}"
        );
    }
    // The key is looked up as given, like Dapr's Go map lookup.
    assert!(!metadata_flag(&meta(&[("rawpayload", "true")]), "rawPayload").expect("flag"));
}

#[test]
fn ids_are_unique_uuid_v4() {
    let ids: HashSet<String> = (0..500).map(|_| new_uuid_v4()).collect();
    assert_eq!(ids.len(), 500);
    for id in &ids {
        assert!(is_uuid_v4(id), "{id}");
    }
}

#[test]
fn rfc3339_parser_rejects_malformed_times() {
    for bad in [
        "2024-05-06",
        "2024-05-06T07:08:09",
        "2024-13-06T07:08:09Z",
        "2024-02-30T07:08:09Z",
        "2024-05-06T24:00:00Z",
        "2024-05-06T07:08:09.Z",
        "2024-05-06T07:08:09+0200",
        "2024-05-06T07:08:09++2:00",
        "2024/05/06T07:08:09Z",
        "+024-05-06T07:08:09Z",
    ] {
        assert!(parse_rfc3339(bad).is_none(), "{bad}");
    }
    assert_eq!(
        parse_rfc3339("2024-05-06T07:08:09.123456789123Z"),
        Some(at(NOW_SECS, 123_456_789))
    );
    assert_eq!(
        parse_rfc3339("2024-05-06 09:38:09+02:30"),
        Some(at(NOW_SECS, 0))
    );
}
