//! Spans the building blocks start under the request's context: the client side of an
//! invocation, a publish (producer) and a delivery (consumer). Each returns the context holding
//! the new span; [`finish`] ends it with a status.

use super::TRACER_NAME;
use opentelemetry::trace::{Link, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};

/// Starts a span of `kind` named `name` under `parent`.
pub fn start(
    parent: &Context,
    name: impl Into<std::borrow::Cow<'static, str>>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
) -> Context {
    start_linked(parent, name, kind, attributes, Vec::new())
}

/// [`start`] with links to spans of other traces.
pub fn start_linked(
    parent: &Context,
    name: impl Into<std::borrow::Cow<'static, str>>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    links: Vec<Link>,
) -> Context {
    let tracer = global::tracer(TRACER_NAME);
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .with_links(links)
        .start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// Ends `cx`'s span: `Ok` or an error with its description.
pub fn finish<E: std::fmt::Display>(cx: &Context, outcome: Result<(), E>) {
    let span = cx.span();
    match outcome {
        Ok(()) => span.set_status(Status::Ok),
        Err(e) => span.set_status(Status::error(e.to_string())),
    }
    span.end();
}

/// Ends `cx`'s span with an HTTP status: 5xx (and a failed call) is an error, as daprd maps it.
pub fn finish_http(cx: &Context, status: u16) {
    let span = cx.span();
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
    start(
        parent,
        format!("CallLocal/{app_id}/{method}"),
        SpanKind::Client,
        vec![
            KeyValue::new("rpc.service", "ServiceInvocation"),
            KeyValue::new("net.peer.name", app_id.to_owned()),
            KeyValue::new("dapr.invoke_method", method.to_owned()),
            KeyValue::new("dapr.caller_app_id", caller.to_owned()),
            KeyValue::new("dapr.callee_app_id", app_id.to_owned()),
        ],
    )
}

/// The producer span of a publish; its id goes into the CloudEvent.
pub fn publish(parent: &Context, pubsub: &str, topic: &str) -> Context {
    start(
        parent,
        format!("publish/{pubsub}/{topic}"),
        SpanKind::Producer,
        vec![
            KeyValue::new("messaging.system", "pubsub"),
            KeyValue::new("messaging.destination.name", topic.to_owned()),
            KeyValue::new("dapr.component", pubsub.to_owned()),
        ],
    )
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
    let attributes = delivery_attributes(pubsub, topic, route);
    start(
        parent,
        format!("pubsub/{topic}"),
        SpanKind::Consumer,
        attributes,
    )
}

/// The consumer span of one entry of a bulk delivery (Dapr's name, `pubsub/<topic>`), a child
/// of the entry's CloudEvent context, counting the entries the request carries and linking to
/// the other entries' spans in `links`.
pub fn bulk_delivery(
    parent: &Context,
    (pubsub, topic, route): (&str, &str, &str),
    batch_size: usize,
    links: Vec<Link>,
) -> Context {
    let mut attributes = delivery_attributes(pubsub, topic, route);
    attributes.push(KeyValue::new(
        "messaging.batch.message_count",
        i64::try_from(batch_size).unwrap_or(i64::MAX),
    ));
    let name = format!("pubsub/{topic}");
    start_linked(parent, name, SpanKind::Consumer, attributes, links)
}
