//! The actor calls that must run on the actor's host — method invocation, reminder
//! registration, timers — as both front ends make them. A call is an [`ActorRequest`] in the
//! shape of Dapr's HTTP actor API (the HTTP front end passes the client's request through; the
//! gRPC front end builds one from its message), because a call whose actor lives elsewhere is
//! forwarded as it is to that host's internal port, where the HTTP routes run it.

use super::calls::{self, ActorRequest};
use super::reminders::{self, CreateReminder};
use super::table::ActorRef;
use super::timers::{self, CreateTimer};
use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};
use crate::blocks::invoke::method::normalize_method;
use axum::body::Body;
use http::{Response, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The body of a request as JSON; an empty body is the type's default.
pub fn json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, BlockError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(BlockError::malformed)
}

fn no_content() -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// Invokes an actor method wherever the actor lives; the app's answer comes back as it is.
pub async fn invoke_method(
    sc: &Arc<Sidecar>,
    actor: &ActorRef,
    method: &str,
    request: ActorRequest,
) -> Result<Response<Body>, BlockError> {
    let method = normalize_method(method)
        .map_err(|e| BlockError::new(Code::ActorBadRequest, format!("invalid method: {e}")))?;
    calls::dispatch(sc, actor, request, |r| {
        let (sc, actor, method) = (sc.clone(), actor.clone(), method.clone());
        async move { calls::invoke_here(&sc, &actor, &method, r).await }
    })
    .await
}

/// Registers a reminder (body: [`CreateReminder`]) on the host of the actor's shard. Only an
/// app that hosts the actor type may register its reminders (Dapr's rule).
pub async fn create_reminder(
    sc: &Arc<Sidecar>,
    actor: &ActorRef,
    name: &str,
    request: ActorRequest,
) -> Result<Response<Body>, BlockError> {
    json::<CreateReminder>(&request.body)?;
    if !request.headers.contains_key(calls::FORWARDED)
        && !sc.actor_runtime().hosts(&actor.actor_type)
    {
        return Err(BlockError::new(
            Code::ActorReminderNonHosted,
            format!(
                "reminders can only be created for actor types hosted by this app; {} is not",
                actor.actor_type
            ),
        ));
    }
    calls::dispatch(sc, actor, request, |r| {
        let (sc, actor, name) = (sc.clone(), actor.clone(), name.to_owned());
        async move {
            let body: CreateReminder = json(&r.body)?;
            reminders::create_here(&sc, &actor, &name, body).await?;
            Ok(no_content())
        }
    })
    .await
}

/// Starts a timer (body: [`CreateTimer`]) on the actor's host.
pub async fn create_timer(
    sc: &Arc<Sidecar>,
    actor: &ActorRef,
    name: &str,
    request: ActorRequest,
) -> Result<Response<Body>, BlockError> {
    json::<CreateTimer>(&request.body)?;
    calls::dispatch(sc, actor, request, |r| {
        let (sc, actor, name) = (sc.clone(), actor.clone(), name.to_owned());
        async move {
            let body: CreateTimer = json(&r.body)?;
            timers::create_here(&sc, &actor, &name, body)?;
            Ok(no_content())
        }
    })
    .await
}

/// Stops a timer on the actor's host.
pub async fn delete_timer(
    sc: &Arc<Sidecar>,
    actor: &ActorRef,
    name: &str,
    request: ActorRequest,
) -> Result<Response<Body>, BlockError> {
    calls::dispatch(sc, actor, request, |_| {
        let (sc, actor, name) = (sc.clone(), actor.clone(), name.to_owned());
        async move {
            timers::delete_here(&sc, &actor, &name)?;
            Ok(no_content())
        }
    })
    .await
}
