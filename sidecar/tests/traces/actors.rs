//! An actor call through the HTTP API is one server span with daprd's name for it.

use super::*;
use std::sync::Arc;
use tandem_sidecar::testing::actor_app::{ActorApp, ActorLog};

const ACTORS: &str =
    r#"{"entities":["Counter"],"actorIdleTimeout":"1h","drainOngoingCallTimeout":"5s"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_actor_call_is_traced_with_its_type_and_method() {
    let receiver = Receiver::otlp();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "tracing", &otlp_grpc(&receiver, "1"));
    let app = ActorApp::start("h1", ACTORS, Arc::new(ActorLog::default())).await;
    let sc = sidecar(dir.path(), "counter", &cfg, Some(app.port)).start();
    app.set_sidecar(&sc.url(""));
    sc.wait_ready(WAIT);

    let response = client()
        .post(sc.url("/v1.0/actors/Counter/a/method/echo"))
        .header("traceparent", ROOT)
        .body("hi")
        .send()
        .await
        .expect("actor call");
    assert_eq!(response.status().as_u16(), 200);
    let spans = receiver
        .wait_for(WAIT, |s| !in_trace(s, TRACE).is_empty())
        .await;
    let trace = in_trace(&spans, TRACE);
    let span = find(&trace, "counter", SERVER);
    assert_eq!(str_of(span, "name"), "CallActor/Counter/echo");
    assert_eq!(str_of(span, "parentSpanId"), "b7ad6b7169203331");
    assert_eq!(attr(span, "dapr.actor"), "Counter.a");
    assert_eq!(span["status"], STATUS_OK);
}

/// The CLIENT span of a reminder's or timer's callback named `name`, once it arrived.
async fn callback_span(receiver: &Receiver, name: &str) -> Value {
    let spans = receiver
        .wait_for(WAIT, |s| s.iter().any(|x| str_of(x, "name") == name))
        .await;
    spans
        .into_iter()
        .find(|x| str_of(x, "name") == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reminder_and_timer_callbacks_are_traced() {
    let receiver = Receiver::otlp();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "tracing", &otlp_grpc(&receiver, "1"));
    let app = ActorApp::start("h1", ACTORS, Arc::new(ActorLog::default())).await;
    let sc = sidecar(dir.path(), "counter", &cfg, Some(app.port)).start();
    app.set_sidecar(&sc.url(""));
    sc.wait_ready(WAIT);

    for (kind, body) in [
        ("reminders", r#"{"dueTime":"0s"}"#),
        ("timers", r#"{"dueTime":"0s","callback":"echo"}"#),
    ] {
        let response = client()
            .put(sc.url(&format!("/v1.0/actors/Counter/r/{kind}/once")))
            .body(body)
            .send()
            .await
            .expect("register");
        assert_eq!(response.status().as_u16(), 204, "{kind}");
    }
    for (name, method) in [
        ("CallActor/Counter/remind/once", "remind/once"),
        ("CallActor/Counter/timer/once", "timer/once"),
    ] {
        let span = callback_span(&receiver, name).await;
        assert_eq!(str_of(&span, "service"), "counter");
        assert_eq!(span["kind"], CLIENT, "{name}");
        assert_eq!(attr(&span, "dapr.actor"), "Counter.r");
        assert_eq!(attr(&span, "dapr.invoke_method"), method);
        assert_eq!(span["status"], STATUS_OK, "{name}");
        assert!(
            str_of(&span, "parentSpanId").is_empty(),
            "a trace of its own"
        );
    }
}
