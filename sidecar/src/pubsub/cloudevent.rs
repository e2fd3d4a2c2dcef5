//! The CloudEvent envelope Dapr wraps published messages in, and the rules around it.
//!
//! Pure functions only (the clock and the metadata come in as arguments) so that the publish
//! handler, the bulk publisher and delivery share one definition of Dapr's envelope
//! (`pkg/runtime/pubsub/cloudevents.go`, contrib `pubsub/envelope.go`).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The CE `type` Dapr gives the events it wraps.
pub const EVENT_TYPE: &str = "com.dapr.event.sent";
/// The CloudEvents spec version Dapr writes.
pub const SPEC_VERSION: &str = "1.0";
/// The `source` used when the sidecar, not an app, is the origin (given CEs, raw payloads).
pub const DEFAULT_SOURCE: &str = "Dapr";
/// `datacontenttype` when the publisher sent no content type.
pub const DEFAULT_CONTENT_TYPE: &str = "text/plain";
/// The content type that marks a body as an already-built CloudEvent.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The metadata key asking for an `expiration` (Dapr's name, case-sensitive as in Go).
pub const TTL_KEY: &str = "ttlInSeconds";
/// The metadata key asking to publish / deliver the body without an envelope.
pub const RAW_PAYLOAD_KEY: &str = "rawPayload";

/// What a publish request needs to be turned into a CloudEvent.
pub struct PublishInput<'a> {
    pub pubsub: &'a str,
    pub topic: &'a str,
    /// The publishing app id (the CE `source`).
    pub source_app: &'a str,
    pub body: &'a [u8],
    pub content_type: Option<&'a str>,
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
    /// Request metadata (`metadata.<k>` query params, already decoded, keys as given).
    pub metadata: &'a BTreeMap<String, String>,
    pub now: OffsetDateTime,
}

/// Why no envelope could be built. `InvalidJson` and `InvalidCloudEvent` are the publisher's
/// fault (Dapr: 400 `ERR_PUBSUB_EVENTS_SER`); `InvalidMetadata` is 400
/// `ERR_PUBSUB_REQUEST_METADATA`.
#[derive(Debug, thiserror::Error)]
pub enum CloudEventError {
    /// The content type says JSON but the body does not parse.
    #[error("the body is not valid JSON although the content type is {content_type:?}: {reason}")]
    InvalidJson {
        content_type: String,
        reason: String,
    },
    /// An `application/cloudevents+json` body that is not a JSON object.
    #[error("the body is not a valid CloudEvent: {0}")]
    InvalidCloudEvent(String),
    /// A metadata value that cannot be read (bad ttl, bad boolean).
    #[error("metadata {field} has an invalid value {value:?}: {reason}")]
    InvalidMetadata {
        field: String,
        value: String,
        reason: String,
    },
}

/// The CloudEvent to publish (a JSON object).
///
/// A body sent as `application/cloudevents+json` is used as the event (completed, never wrapped
/// twice); anything else is wrapped, honouring the `cloudevent.*` metadata overrides.
pub fn envelope(input: &PublishInput<'_>) -> Result<Value, CloudEventError> {
    let expires = expiration(input.metadata, input.now)?;
    let content_type = input.content_type.unwrap_or("").trim();
    let mut event = if media_type(content_type) == CLOUDEVENTS_CONTENT_TYPE {
        given_event(input)?
    } else {
        wrapped_event(input, content_type)?
    };
    if let Some(exp) = expires {
        event.insert("expiration".into(), Value::String(rfc3339(exp)?));
    }
    Ok(Value::Object(event))
}

/// Wraps an ordinary body: Dapr's `NewCloudEventsEnvelope` plus the metadata overrides.
fn wrapped_event(
    input: &PublishInput<'_>,
    content_type: &str,
) -> Result<Map<String, Value>, CloudEventError> {
    let overridden = |name: &str| override_value(input.metadata, name);
    let mut ce = Map::new();
    let id = overridden("id").map_or_else(new_uuid_v4, str::to_owned);
    ce.insert("id".into(), id.into());
    ce.insert("specversion".into(), SPEC_VERSION.into());
    let source = overridden("source").unwrap_or(input.source_app);
    ce.insert("source".into(), source.into());
    ce.insert(
        "type".into(),
        overridden("type").unwrap_or(EVENT_TYPE).into(),
    );
    let datacontenttype = if content_type.is_empty() {
        DEFAULT_CONTENT_TYPE
    } else {
        content_type
    };
    ce.insert("datacontenttype".into(), datacontenttype.into());
    ce.insert("topic".into(), input.topic.into());
    ce.insert("pubsubname".into(), input.pubsub.into());
    if let Some(subject) = overridden("subject") {
        ce.insert("subject".into(), subject.into());
    }
    let traceid = overridden("traceid").or(input.traceparent);
    let traceparent = overridden("traceparent").or(input.traceparent);
    let tracestate = overridden("tracestate").or(input.tracestate);
    for (field, value) in [
        ("traceid", traceid),
        ("traceparent", traceparent),
        ("tracestate", tracestate),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            ce.insert(field.into(), value.into());
        }
    }
    ce.insert("time".into(), rfc3339(input.now)?.into());
    let (field, data) = data_field(input.body, content_type)?;
    ce.insert(field.into(), data);
    Ok(ce)
}

/// Completes a CE the app built itself: its fields win, except `topic` and `pubsubname`.
fn given_event(input: &PublishInput<'_>) -> Result<Map<String, Value>, CloudEventError> {
    let parsed: Value = serde_json::from_slice(input.body)
        .map_err(|e| CloudEventError::InvalidCloudEvent(format!("not valid JSON: {e}")))?;
    let Value::Object(mut ce) = parsed else {
        return Err(CloudEventError::InvalidCloudEvent(
            "expected a JSON object".into(),
        ));
    };
    ce.insert("topic".into(), input.topic.into());
    ce.insert("pubsubname".into(), input.pubsub.into());
    let now = rfc3339(input.now)?;
    let defaults = [
        ("id", Some(new_uuid_v4())),
        ("specversion", Some(SPEC_VERSION.to_owned())),
        ("source", Some(DEFAULT_SOURCE.to_owned())),
        ("type", Some(EVENT_TYPE.to_owned())),
        ("time", Some(now)),
        ("traceid", input.traceparent.map(str::to_owned)),
        ("traceparent", input.traceparent.map(str::to_owned)),
        ("tracestate", input.tracestate.map(str::to_owned)),
    ];
    for (field, value) in defaults {
        let missing = ce.get(field).is_none_or(|v| v.is_null() || v == "");
        if let Some(value) = value.filter(|v| missing && !v.is_empty()) {
            ce.insert(field.into(), value.into());
        }
    }
    Ok(ce)
}

/// Where the payload goes (`data` or `data_base64`) and its JSON form, by content type.
fn data_field(body: &[u8], content_type: &str) -> Result<(&'static str, Value), CloudEventError> {
    let media = media_type(content_type);
    if is_json_media_type(&media) {
        // Publishing with no data (SDKs do) is an event without a payload, not invalid JSON.
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(("data", Value::Null));
        }
        let value = serde_json::from_slice(body).map_err(|e| CloudEventError::InvalidJson {
            content_type: content_type.to_owned(),
            reason: e.to_string(),
        })?;
        return Ok(("data", value));
    }
    if media.is_empty() || media.starts_with("text/") {
        // Text that is not UTF-8 cannot be a JSON string without loss: carry it as bytes.
        if let Ok(text) = std::str::from_utf8(body) {
            return Ok(("data", Value::String(text.to_owned())));
        }
    }
    Ok(("data_base64", Value::String(STANDARD.encode(body))))
}

/// The media type without parameters, lower-cased (`Application/JSON; charset=utf-8` →
/// `application/json`).
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `application/json` or any structured-syntax `+json` type (`application/vnd.x+json`).
fn is_json_media_type(media: &str) -> bool {
    media == "application/json" || (media.contains('/') && media.ends_with("+json"))
}

/// A `cloudevent.<name>` metadata override; Dapr matches these keys case-insensitively.
fn override_value<'m>(metadata: &'m BTreeMap<String, String>, name: &str) -> Option<&'m str> {
    metadata
        .iter()
        .find(|(key, _)| {
            key.len() == "cloudevent.".len() + name.len()
                && key
                    .get(..11)
                    .is_some_and(|p| p.eq_ignore_ascii_case("cloudevent."))
                && key.get(11..).is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

/// `metadata.ttlInSeconds` → the RFC 3339 `expiration` to put in the envelope (None when
/// absent); bad values are errors naming the field.
///
/// As in Dapr's `TryGetTTL`: an empty value counts as absent, the value must be a positive
/// integer. The result must also be representable in RFC 3339 (year ≤ 9999).
pub fn expiration(
    metadata: &BTreeMap<String, String>,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, CloudEventError> {
    let Some(raw) = metadata.get(TTL_KEY).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = |reason: &str| CloudEventError::InvalidMetadata {
        field: TTL_KEY.into(),
        value: raw.clone(),
        reason: reason.into(),
    };
    let seconds: i64 = raw.parse().map_err(|_| bad("must be a valid integer"))?;
    if seconds <= 0 {
        return Err(bad("must be higher than zero"));
    }
    let expires = now
        .checked_add(Duration::seconds(seconds))
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| bad("is too large"))?;
    Ok(Some(expires))
}

/// Whether an event's `expiration` has passed (events without one never expire).
///
/// An `expiration` that is not RFC 3339 is ignored, as Dapr does (it only logs).
pub fn is_expired(event: &Value, now: OffsetDateTime) -> bool {
    expired(event.get("expiration").and_then(Value::as_str), now)
}

/// Whether an `expiration` (absent, or not RFC 3339: never) has passed.
pub fn expired(expiration: Option<&str>, now: OffsetDateTime) -> bool {
    expiration
        .and_then(parse_rfc3339)
        .is_some_and(|expires| expires < now)
}

/// The CE delivered for a rawPayload subscription: datacontenttype application/octet-stream,
/// source "Dapr", type com.dapr.event.sent, payload in data_base64, plus
/// id/specversion/topic/pubsubname/time.
///
/// The broker message carried no envelope, so the sidecar invents one; the app still gets the
/// exact bytes back through `data_base64`.
pub fn raw_payload_event(data: &[u8], pubsub: &str, topic: &str, now: OffsetDateTime) -> Value {
    let mut ce = Map::new();
    ce.insert("id".into(), new_uuid_v4().into());
    ce.insert("specversion".into(), SPEC_VERSION.into());
    ce.insert("source".into(), DEFAULT_SOURCE.into());
    ce.insert("type".into(), EVENT_TYPE.into());
    ce.insert("datacontenttype".into(), "application/octet-stream".into());
    ce.insert("topic".into(), topic.into());
    ce.insert("pubsubname".into(), pubsub.into());
    // Only fails past year 9999; a delivery is better without `time` than not at all.
    if let Ok(time) = rfc3339(now) {
        ce.insert("time".into(), time.into());
    }
    ce.insert("data_base64".into(), STANDARD.encode(data).into());
    Value::Object(ce)
}

/// Reads a boolean metadata value as Dapr does, tolerating the double-JSON-quoted form the
/// @dapr/dapr SDK sends (`"\"true\""`), Go ParseBool forms (true/1/t/T/TRUE/True,
/// false/0/...). Absent → Ok(false). Bad → error naming the key and value.
///
/// An empty value counts as absent, as in Dapr's `IsRawPayload`.
pub fn metadata_flag(
    metadata: &BTreeMap<String, String>,
    key: &str,
) -> Result<bool, CloudEventError> {
    let Some(raw) = metadata.get(key) else {
        return Ok(false);
    };
    let mut value = raw.as_str();
    while let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        value = inner;
    }
    match value {
        "" => Ok(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(CloudEventError::InvalidMetadata {
            field: key.to_owned(),
            value: raw.clone(),
            reason: "must be a valid boolean".into(),
        }),
    }
}

/// Whether the publish (or subscription) asks for the body as is rather than a CloudEvent:
/// `metadata_flag(metadata, "rawPayload")`.
pub fn is_raw_payload(metadata: &BTreeMap<String, String>) -> Result<bool, CloudEventError> {
    metadata_flag(metadata, RAW_PAYLOAD_KEY)
}

/// RFC 3339 in UTC with whole seconds, the shape Go's `time.RFC3339` writes.
fn rfc3339(t: OffsetDateTime) -> Result<String, CloudEventError> {
    let utc = t.to_offset(UtcOffset::UTC);
    let whole = utc.replace_nanosecond(0).unwrap_or(utc);
    whole
        .format(&Rfc3339)
        .map_err(|e| CloudEventError::InvalidCloudEvent(format!("cannot format time: {e}")))
}

/// A random UUID v4 (`xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx`, N in 8..b) for CE ids: the `uuid`
/// crate sets the bits and writes the text from the thread's `rand` generator (its `new_v4`
/// asks the OS for each id; a `format!` per byte cost 12 000 instructions a publish, callgrind).
fn new_uuid_v4() -> String {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut text).to_owned()
}

/// Parses RFC 3339 (`2024-01-02T03:04:05.678Z`, `...+02:00`). The `time` crate's parser sits
/// behind a feature this crate does not enable, and only this one shape is needed.
fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let seps = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if b.len() < 20 || seps.iter().any(|&(i, c)| b.get(i) != Some(&c)) {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let year = i32::try_from(digits(0, 4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(5, 2)?).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(digits(8, 2)?).ok()?).ok()?;
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut rest = s.get(19..)?;
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        for (i, c) in fraction.bytes().take(9).take(len).enumerate() {
            nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = fraction.get(len..)?;
    }
    let offset = match rest {
        "Z" | "z" => UtcOffset::UTC,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let (hours, minutes) = (digits(s.len() - 5, 2)?, digits(s.len() - 2, 2)?);
            let hours = i8::try_from(hours).ok()?;
            let minutes = i8::try_from(minutes).ok()?;
            UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?
        }
    };
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

#[cfg(test)]
mod tests;
