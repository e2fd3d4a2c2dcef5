//! Actor calls: find the host of the actor's shard, run the call there inside the actor's turn,
//! or forward it to that host's internal port. A forwarded call that lands on a host that no
//! longer holds the shard is refused with [`Code::ActorMoved`] (never run), and the caller looks
//! again, until [`LOCATE_WAIT`] has passed.

use super::placement::{Location, now_ms};
use super::table::{ActorRef, Turn, TurnError, take_turn};
use super::{actor_store, check_name};
use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Marks a call forwarded from another host: run it here or refuse it, never forward again.
pub const FORWARDED: &str = "tandem-actor-forwarded";
/// On a refusal of a forwarded call: the shard moved, look again.
pub const MOVED: &str = "tandem-actor-moved";
/// How long a call waits for its actor's shard to have a holder (hand-offs, failovers).
pub const LOCATE_WAIT: Duration = Duration::from_secs(10);
const REENTRANCY_ID: &str = "dapr-reentrancy-id";
const ERROR_RESPONSE: &str = "x-daprerrorresponseheader";

/// A client's actor request, buffered so that it can be sent again when the shard moves
/// (actor payloads are small; the body limit still applies).
#[derive(Debug, Clone)]
pub struct ActorRequest {
    pub method: Method,
    /// The request's path and query on the actor API (forwarded as is).
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Where a call goes.
pub enum Route {
    Here,
    Forward(String),
}

fn no_address(actor: &ActorRef) -> BlockError {
    BlockError::new(
        Code::ActorNoAddress,
        format!(
            "did not find address for actor {}/{}: no host holds its shard",
            actor.actor_type, actor.actor_id
        ),
    )
}

/// Finds where the actor runs, waiting (bounded) while its shard changes hands.
pub async fn route(sc: &Sidecar, actor: &ActorRef, forwarded: bool) -> Result<Route, BlockError> {
    check_name("actor type", &actor.actor_type)?;
    check_name("actor id", &actor.actor_id)?;
    let store = actor_store(sc)?;
    let rt = sc.actor_runtime();
    let shard = actor.shard();
    let deadline = Instant::now() + LOCATE_WAIT;
    loop {
        match rt
            .placement()
            .locate(rt.address(), &actor.actor_type, shard, now_ms())
        {
            Location::Here { .. } => return Ok(Route::Here),
            // A forwarded call runs here or is refused at once: the caller looks again.
            Location::There(_) | Location::Unknown if forwarded => {
                return Err(BlockError::new(
                    Code::ActorMoved,
                    "this host does not hold the actor's shard",
                ));
            }
            Location::There(addr) => return Ok(Route::Forward(addr)),
            Location::Unknown => {}
        }
        if Instant::now() >= deadline {
            return Err(no_address(actor));
        }
        // A no-op while this host's own rounds keep the view fresh; a read otherwise (a caller
        // of another app's actors, or a host whose rounds stopped at shutdown).
        if let Err(e) = rt
            .placement()
            .refresh(store.as_ref(), &actor.actor_type, false)
            .await
        {
            tracing::debug!(error = %e, "cannot read placement; trying again");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `here` on this host or forwards `request` to the actor's host, as placement says.
pub async fn dispatch<F, Fut>(
    sc: &Arc<Sidecar>,
    actor: &ActorRef,
    request: ActorRequest,
    here: F,
) -> Result<Response<Body>, BlockError>
where
    F: Fn(ActorRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Response<Body>, BlockError>>,
{
    let forwarded = request.headers.contains_key(FORWARDED);
    let deadline = Instant::now() + LOCATE_WAIT;
    loop {
        match route(sc, actor, forwarded).await? {
            Route::Here => match here(request.clone()).await {
                Err(e) if e.code == Code::ActorMoved && !forwarded && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            },
            Route::Forward(addr) => {
                let mut headers = request.headers.clone();
                headers.insert(
                    HeaderName::from_static(FORWARDED),
                    HeaderValue::from_static("1"),
                );
                // The host's server span is a child of this call's span.
                crate::traces::context::inject_http(
                    &opentelemetry::Context::current(),
                    &mut headers,
                );
                let response = sc
                    .peers()
                    .send_to(
                        &addr,
                        request.method.clone(),
                        &request.path_and_query,
                        headers,
                        request.body.clone(),
                    )
                    .await;
                // Sent again only when the host certainly did not run it: it refused the call
                // because the shard moved, or never took the connection or the request.
                let retry = match &response {
                    Ok(r) => {
                        r.status() == StatusCode::SERVICE_UNAVAILABLE
                            && r.headers().contains_key(MOVED)
                    }
                    Err(crate::channels::peer::PeerError::Send(e)) => {
                        e.is_connect() || crate::channels::peer::errors::unprocessed(e)
                    }
                    Err(_) => false,
                };
                match response {
                    Ok(r) if !retry => return Ok(r),
                    _ if retry && Instant::now() < deadline => {
                        let rt = sc.actor_runtime();
                        if let Ok(store) = actor_store(sc) {
                            let _ = rt
                                .placement()
                                .refresh(store.as_ref(), &actor.actor_type, true)
                                .await;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok(_) => return Err(no_address(actor)),
                    Err(e) => {
                        return Err(BlockError::new(
                            Code::ActorInvokeMethod,
                            format!(
                                "error invoking actor {}/{} on {addr}: {e}",
                                actor.actor_type, actor.actor_id
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// Takes the actor's turn here, activating it; refuses when this host no longer holds the
/// actor's shard (checked after the wait, so a hand-off that started meanwhile wins).
pub async fn turn(
    sc: &Sidecar,
    actor: &ActorRef,
    reentrancy_id: Option<&str>,
) -> Result<Turn, BlockError> {
    let rt = sc.actor_runtime();
    let depth = rt
        .hosted()
        .and_then(|c| c.type_config(&actor.actor_type))
        .and_then(|c| c.reentrancy);
    let reentrancy = depth.zip(reentrancy_id).map(|(max, id)| (id, max));
    let moved = || BlockError::new(Code::ActorMoved, "the actor's shard moved");
    loop {
        if !rt
            .placement()
            .serving(rt.address(), &actor.actor_type, actor.shard())
        {
            return Err(moved());
        }
        let (slot, new) = rt.table().activate(actor);
        if new {
            sc.metrics().actors().activated(&actor.actor_type);
        }
        let pending = super::metrics::PendingCall::new(sc.metrics().actors(), &actor.actor_type);
        let taken = take_turn(slot.clone(), reentrancy).await;
        drop(pending);
        match taken {
            // Checked again after the wait: a hand-off that started meanwhile wins.
            Ok(turn)
                if rt
                    .placement()
                    .serving(rt.address(), &actor.actor_type, actor.shard()) =>
            {
                return Ok(turn);
            }
            Ok(turn) => {
                drop(turn);
                if new {
                    rt.table().discard(&slot);
                }
                return Err(moved());
            }
            Err(TurnError::Deactivated) => continue,
            Err(TurnError::StackDepth(max)) => {
                return Err(BlockError::new(
                    Code::ActorStackDepth,
                    format!("maximum stack depth of {max} exceeded for reentrant actor calls"),
                ));
            }
        }
    }
}

/// What the app answered, read whole inside the turn.
pub struct AppAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Sends one request to the app (`PUT /actors/...` and friends) and reads the answer.
pub async fn to_app(
    sc: &Sidecar,
    method: Method,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<AppAnswer, BlockError> {
    let app = sc.app().ok_or_else(|| {
        BlockError::new(
            Code::ActorInvokeMethod,
            "this sidecar has no app to host actors",
        )
    })?;
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = method;
    *request.uri_mut() = path.parse().map_err(|e| {
        BlockError::new(
            Code::ActorBadRequest,
            format!("invalid actor path {path:?}: {e}"),
        )
    })?;
    *request.headers_mut() = headers;
    request.headers_mut().remove(http::header::CONTENT_LENGTH);
    request.headers_mut().remove(http::header::HOST);
    let response = app.invoke(request).await.map_err(|e| {
        BlockError::new(
            Code::ActorInvokeMethod,
            format!("error invoking the app: {e}"),
        )
    })?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| {
            BlockError::new(
                Code::ActorInvokeMethod,
                format!("error reading the app's answer: {e}"),
            )
        })?
        .to_bytes();
    Ok(AppAnswer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Runs an actor method here: `PUT /actors/{type}/{id}/method/{method}` inside the turn.
pub async fn invoke_here(
    sc: &Sidecar,
    actor: &ActorRef,
    method: &str,
    request: ActorRequest,
) -> Result<Response<Body>, BlockError> {
    let reentrant = sc
        .actor_runtime()
        .hosted()
        .and_then(|c| c.type_config(&actor.actor_type))
        .is_some_and(|c| c.reentrancy.is_some());
    let mut headers = request.headers;
    headers.remove(FORWARDED);
    // The app's parent is this sidecar's span for the call.
    crate::traces::context::inject_http(&opentelemetry::Context::current(), &mut headers);
    let reentrancy_id = match headers.get(REENTRANCY_ID).and_then(|v| v.to_str().ok()) {
        Some(id) => Some(id.to_owned()),
        None if reentrant => Some(uuid::Uuid::new_v4().to_string()),
        None => None,
    };
    if let Some(id) = reentrancy_id.as_deref().filter(|_| reentrant)
        && let Ok(v) = HeaderValue::from_str(id)
    {
        headers.insert(HeaderName::from_static(REENTRANCY_ID), v);
    }
    let query = request.path_and_query.split_once('?').map(|(_, q)| q);
    let path = match query {
        Some(q) => format!(
            "/actors/{}/{}/method/{method}?{q}",
            actor.actor_type, actor.actor_id
        ),
        None => format!(
            "/actors/{}/{}/method/{method}",
            actor.actor_type, actor.actor_id
        ),
    };
    let started = Instant::now();
    let turn = turn(sc, actor, reentrancy_id.as_deref()).await?;
    let answer = to_app(sc, Method::PUT, &path, headers, request.body).await;
    drop(turn);
    sc.metrics()
        .actors()
        .call(&actor.actor_type, started.elapsed());
    let answer = answer?;
    if answer.status.is_success() || answer.headers.contains_key(ERROR_RESPONSE) {
        let mut response = Response::new(Body::from(answer.body));
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        return Ok(response);
    }
    let detail = String::from_utf8_lossy(&answer.body);
    let message = if answer.status == StatusCode::NOT_FOUND {
        format!("actor method not found: {method} ({detail})")
    } else {
        format!(
            "error from actor service: status {} {detail}",
            answer.status.as_u16()
        )
    };
    Err(BlockError::new(Code::ActorInvokeMethod, message))
}

/// Deactivates an actor: waits for its turn, removes it, and tells the app (`DELETE`).
pub async fn deactivate(sc: &Sidecar, slot: &Arc<super::table::Slot>) {
    let rt = sc.actor_runtime();
    let Some(guard) = rt.table().deactivate(slot).await else {
        return;
    };
    let path = format!("/actors/{}/{}", slot.actor.actor_type, slot.actor.actor_id);
    let outcome = to_app(sc, Method::DELETE, &path, HeaderMap::new(), Bytes::new()).await;
    drop(guard);
    let ok = matches!(&outcome, Ok(a) if a.status.is_success());
    sc.metrics()
        .actors()
        .deactivated(&slot.actor.actor_type, ok);
    if !ok {
        tracing::warn!(actor_type = %slot.actor.actor_type, actor_id = %slot.actor.actor_id, "the app did not confirm the deactivation");
    }
}
