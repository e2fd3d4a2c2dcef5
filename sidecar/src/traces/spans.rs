//! Spans the building blocks start under the request's context: the client side of an
//! invocation, a publish (producer) and a delivery (consumer). Each returns the context holding
//! the new span; [`finish`] ends it with a status.

use super::TRACER_NAME;
use opentelemetry::trace::{Link, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use std::borrow::Cow;

/// A span's name and attributes, built only when the span can be exported.
pub type Described = (Cow<'static, str>, Vec<KeyValue>);

/// Starts a span of `kind` under `parent`, named and attributed by `describe`.
pub fn start(parent: &Context, kind: SpanKind, describe: impl FnOnce() -> Described) -> Context {
    start_linked(parent, kind, describe, Vec::new)
}

/// [`start`] with links to spans of other traces. When nothing exports spans, the span is only
/// its ids ([`super::unexported`]) and `describe` and `links` are not called.
pub fn start_linked(
    parent: &Context,
    kind: SpanKind,
    describe: impl FnOnce() -> Described,
    links: impl FnOnce() -> Vec<Link>,
) -> Context {
    if let Some(cx) = super::unexported::child(parent, &kind) {
        return cx;
    }
    let (name, attributes) = describe();
    let tracer = global::tracer(TRACER_NAME);
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .with_links(links())
        .start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// Ends `cx`'s span: `Ok` or an error with its description.
pub fn finish<E: std::fmt::Display>(cx: &Context, outcome: Result<(), E>) {
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    match outcome {
        Ok(()) => span.set_status(Status::Ok),
        Err(e) => span.set_status(Status::error(e.to_string())),
    }
    span.end();
}

/// Ends `cx`'s span with an HTTP status: 5xx (and a failed call) is an error, as daprd maps it.
pub fn finish_http(cx: &Context, status: u16) {
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
    span.set_attribute(KeyValue::new("dapr.status_code", i64::from(status)));
    if status >= 500 {
        span.set_status(Status::error(format!("HTTP {status}")));
    } else {
        span.set_status(Status::Ok);
    }
    span.end();
}

/// The client span of an invocation (`CallLocal/<app>/<method>`, Dapr's name).
pub fn invocation_client(parent: &Context, app_id: &str, method: &str, caller: &str) -> Context {
    start(parent, SpanKind::Client, || {
        (
            format!("CallLocal/{app_id}/{method}").into(),
            vec![
                KeyValue::new("rpc.service", "ServiceInvocation"),
                KeyValue::new("net.peer.name", app_id.to_owned()),
                KeyValue::new("dapr.invoke_method", method.to_owned()),
                KeyValue::new("dapr.caller_app_id", caller.to_owned()),
                KeyValue::new("dapr.callee_app_id", app_id.to_owned()),
            ],
        )
    })
}

/// The producer span of a publish; its id goes into the CloudEvent.
pub fn publish(parent: &Context, pubsub: &str, topic: &str) -> Context {
    start(parent, SpanKind::Producer, || {
        (
            format!("publish/{pubsub}/{topic}").into(),
            vec![
                KeyValue::new("messaging.system", "pubsub"),
                KeyValue::new("messaging.destination.name", topic.to_owned()),
                KeyValue::new("dapr.component", pubsub.to_owned()),
            ],
        )
    })
}

fn delivery_attributes(pubsub: &str, topic: &str, route: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("messaging.system", "pubsub"),
        KeyValue::new("messaging.destination.name", topic.to_owned()),
        KeyValue::new("dapr.component", pubsub.to_owned()),
        KeyValue::new("dapr.route", route.to_owned()),
    ]
}

/// The consumer span of a delivery to the app, a child of the CloudEvent's context.
pub fn delivery(parent: &Context, pubsub: &str, topic: &str, route: &str) -> Context {
    start(parent, SpanKind::Consumer, || {
        (
            format!("pubsub/{topic}").into(),
            delivery_attributes(pubsub, topic, route),
        )
    })
}

/// The consumer span of one entry of a bulk delivery (Dapr's name, `pubsub/<topic>`), a child
/// of the entry's CloudEvent context, counting the entries the request carries and linking to
/// the other entries' spans (`links`).
pub fn bulk_delivery(
    parent: &Context,
    (pubsub, topic, route): (&str, &str, &str),
    batch_size: usize,
    links: impl FnOnce() -> Vec<Link>,
) -> Context {
    let describe = || {
        let mut attributes = delivery_attributes(pubsub, topic, route);
        attributes.push(KeyValue::new(
            "messaging.batch.message_count",
            i64::try_from(batch_size).unwrap_or(i64::MAX),
        ));
        (format!("pubsub/{topic}").into(), attributes)
    };
    start_linked(parent, SpanKind::Consumer, describe, links)
}
