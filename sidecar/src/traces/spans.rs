//! Spans the building blocks start under the request's context: the client side of an
//! invocation, a publish (producer) and a delivery (consumer). Each returns the context holding
//! the new span; [`finish`] ends it with a status.

use super::TRACER_NAME;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};

/// Starts a span of `kind` named `name` under `parent`.
pub fn start(
    parent: &Context,
    name: impl Into<std::borrow::Cow<'static, str>>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
) -> Context {
    let tracer = global::tracer(TRACER_NAME);
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
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

/// The consumer span of a delivery to the app, a child of the CloudEvent's context.
pub fn delivery(parent: &Context, pubsub: &str, topic: &str, route: &str) -> Context {
    start(
        parent,
        format!("pubsub/{topic}"),
        SpanKind::Consumer,
        vec![
            KeyValue::new("messaging.system", "pubsub"),
            KeyValue::new("messaging.destination.name", topic.to_owned()),
            KeyValue::new("dapr.component", pubsub.to_owned()),
            KeyValue::new("dapr.route", route.to_owned()),
        ],
    )
}
