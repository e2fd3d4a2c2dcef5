//! A reminder's or a timer's callback to the app: `PUT /actors/{type}/{id}/method/{remind|timer}/{name}`
//! with Dapr's JSON body, inside the actor's turn. Each callback is a CLIENT span of its own trace
//! (nothing called the sidecar to start it), named as daprd names an actor call,
//! `CallActor/<type>/<method>`, whose context the app receives in `traceparent`.

use super::calls::{self, AppAnswer};
use super::table::ActorRef;
use crate::blocks::Sidecar;
use crate::blocks::error::BlockError;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};

/// Which callback: Dapr's path segment.
#[derive(Debug, Clone, Copy)]
pub enum Callback {
    Reminder,
    Timer,
}

impl Callback {
    fn segment(self) -> &'static str {
        match self {
            Callback::Reminder => "remind",
            Callback::Timer => "timer",
        }
    }
}

/// Calls the app's `kind` callback `name` of `actor` with `payload`, inside the actor's turn.
pub async fn call_app(
    sc: &Sidecar,
    actor: &ActorRef,
    kind: Callback,
    name: &str,
    payload: Bytes,
) -> Result<AppAnswer, BlockError> {
    let method = format!("{}/{name}", kind.segment());
    let path = format!(
        "/actors/{}/{}/method/{method}",
        actor.actor_type, actor.actor_id
    );
    let cx = crate::traces::spans::start(&Context::new(), SpanKind::Client, || {
        (
            format!("CallActor/{}/{method}", actor.actor_type).into(),
            vec![
                KeyValue::new(
                    "dapr.actor",
                    format!("{}.{}", actor.actor_type, actor.actor_id),
                ),
                KeyValue::new("dapr.invoke_method", method.clone()),
            ],
        )
    });
    let turn = match calls::turn(sc, actor, None).await {
        Ok(turn) => turn,
        Err(e) => {
            crate::traces::spans::finish(&cx, Err(&e.message));
            return Err(e);
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    crate::traces::context::inject_http(&cx, &mut headers);
    let answer = calls::to_app(sc, Method::PUT, &path, headers, payload).await;
    drop(turn);
    match &answer {
        Ok(a) => crate::traces::spans::finish_http(&cx, a.status.as_u16()),
        Err(e) => crate::traces::spans::finish(&cx, Err(&e.message)),
    }
    answer
}
