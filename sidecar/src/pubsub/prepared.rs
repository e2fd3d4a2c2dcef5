//! What one delivery needs of a broker message: the route, the body the app gets, and the
//! publisher's trace context. The usual case (no routing rule to evaluate, not rawPayload, the
//! message a JSON object) reads only the `expiration`, `traceparent` and `tracestate` members
//! and delivers the message's own bytes: no `serde_json::Value` built and written back per
//! message. Anything else (routing rules, rawPayload, a raw message, JSON the light read does not
//! take, such as a duplicate member) goes the full way through [`event_of`].

use super::cloudevent;
use super::delivery::event_of;
use super::subscriptions::Subscription;
use crate::components::pubsub::Message;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;

/// What to do with a message.
#[derive(Debug, PartialEq)]
pub(super) enum Prepared {
    /// Past its `expiration`: dropped (acked) unseen.
    Expired,
    /// No route matches and there is no default.
    NoRoute,
    Deliver(Event),
}

/// An event ready to deliver.
#[derive(Debug, PartialEq)]
pub(super) struct Event {
    pub path: String,
    pub body: Bytes,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// The members of a CloudEvent delivery reads, borrowed from its bytes (other members skipped).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    expiration: Option<&'a RawValue>,
    #[serde(borrow, default)]
    traceparent: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tracestate: Option<&'a RawValue>,
}

/// A member's string value; `None` when absent or not a string (as `Value::as_str`).
fn string(raw: Option<&RawValue>) -> Option<String> {
    raw.filter(|r| r.get().starts_with('"'))
        .and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

/// The head of a JSON object; `None` for anything else, or JSON the light read refuses.
fn head(data: &[u8]) -> Option<Head<'_>> {
    let first = data.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(data).ok()
}

/// Decides a message's delivery for `sub` at `now`.
pub(super) fn prepare(sub: &Subscription, message: &Message, now: OffsetDateTime) -> Prepared {
    if !sub.raw_payload
        && let Some(route) = sub.routes.fixed()
        && let Some(head) = head(&message.data)
    {
        let expiration = string(head.expiration);
        if cloudevent::expired(expiration.as_deref(), now) {
            return Prepared::Expired;
        }
        let Some(path) = route else {
            return Prepared::NoRoute;
        };
        return Prepared::Deliver(Event {
            path: path.to_owned(),
            body: message.data.clone(),
            traceparent: string(head.traceparent),
            tracestate: string(head.tracestate),
        });
    }
    let event = event_of(sub, message);
    if cloudevent::is_expired(&event, now) {
        return Prepared::Expired;
    }
    let Some(path) = sub.routes.route(&event) else {
        return Prepared::NoRoute;
    };
    let text = |key: &str| event.get(key).and_then(Value::as_str).map(str::to_owned);
    Prepared::Deliver(Event {
        path: path.to_owned(),
        body: Bytes::from(serde_json::to_vec(&event).unwrap_or_default()),
        traceparent: text("traceparent"),
        tracestate: text("tracestate"),
    })
}

#[cfg(test)]
mod tests;
