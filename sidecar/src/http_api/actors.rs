//! `/v1.0/actors/{type}/{id}/*`: Dapr's actor routes over [`crate::actors`]. Calls that must
//! run on the actor's host (methods, reminder registration, timers) go through
//! [`calls::dispatch`]; the same routes serve calls forwarded from other hosts on the internal
//! port, where a refusal because the shard moved carries the `tandem-actor-moved` header.

use super::Shared;
use super::body::read_error;
use super::path::ApiPath as Path;
use crate::actors::calls::{ActorRequest, MOVED};
use crate::actors::operations::{self, json};
use crate::actors::reminders;
use crate::actors::state::{self as actor_state, ActorStateOperation};
use crate::actors::table::ActorRef;
use crate::blocks::error::{BlockError, Code};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use http::{HeaderValue, StatusCode};
use http_body_util::BodyExt;

/// The actor routes (the public API and the internal port share them).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1.0/actors/{type}/{id}/method/{*method}", any(method))
        .route(
            "/v1.0/actors/{type}/{id}/state",
            post(transaction).put(transaction),
        )
        .route("/v1.0/actors/{type}/{id}/state/{key}", get(state_get))
        .route(
            "/v1.0/actors/{type}/{id}/reminders/{name}",
            post(reminder_create)
                .put(reminder_create)
                .get(reminder_get)
                .delete(reminder_delete),
        )
        .route(
            "/v1.0/actors/{type}/{id}/timers/{name}",
            post(timer_create).put(timer_create).delete(timer_delete),
        )
}

/// An error as a response; a refusal because the shard moved says so in a header, for the
/// forwarding host.
fn respond(result: Result<Response, BlockError>) -> Response {
    match result {
        Ok(r) => r,
        Err(e) if e.code == Code::ActorMoved => {
            let mut r = e.into_response();
            r.headers_mut().insert(MOVED, HeaderValue::from_static("1"));
            r
        }
        Err(e) => e.into_response(),
    }
}

/// Reads the whole request (the body limit applies) so that it can be forwarded or replayed.
async fn buffer(sc: &Shared, req: Request) -> Result<ActorRequest, BlockError> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| read_error(&e, sc.max_body_size()))?
        .to_bytes();
    Ok(ActorRequest {
        method: parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: parts.headers,
        body,
    })
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn method(
    State(sc): State<Shared>,
    Path((actor_type, actor_id, method)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    respond(
        async {
            let actor = ActorRef::new(&actor_type, &actor_id);
            let request = buffer(&sc, req).await?;
            operations::invoke_method(&sc, &actor, &method, request).await
        }
        .await,
    )
}

async fn transaction(
    State(sc): State<Shared>,
    Path((actor_type, actor_id)): Path<(String, String)>,
    req: Request,
) -> Response {
    respond(
        async {
            let request = buffer(&sc, req).await?;
            let ops: Vec<ActorStateOperation> = json(&request.body)?;
            let writes = ops
                .into_iter()
                .map(ActorStateOperation::into_write)
                .collect::<Result<Vec<_>, _>>()?;
            actor_state::transact(&sc, &ActorRef::new(&actor_type, &actor_id), writes).await?;
            Ok(no_content())
        }
        .await,
    )
}

async fn state_get(
    State(sc): State<Shared>,
    Path((actor_type, actor_id, key)): Path<(String, String, String)>,
) -> Response {
    respond(
        async {
            match actor_state::get(&sc, &ActorRef::new(&actor_type, &actor_id), &key).await? {
                Some(item) => Ok((
                    [(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    item.data,
                )
                    .into_response()),
                None => Ok(no_content()),
            }
        }
        .await,
    )
}

async fn reminder_create(
    State(sc): State<Shared>,
    Path((actor_type, actor_id, name)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    respond(
        async {
            let actor = ActorRef::new(&actor_type, &actor_id);
            let request = buffer(&sc, req).await?;
            operations::create_reminder(&sc, &actor, &name, request).await
        }
        .await,
    )
}

async fn reminder_get(
    State(sc): State<Shared>,
    Path((actor_type, actor_id, name)): Path<(String, String, String)>,
) -> Response {
    respond(
        async {
            let record = reminders::get(&sc, &ActorRef::new(&actor_type, &actor_id), &name).await?;
            Ok(axum::Json(record.to_json()).into_response())
        }
        .await,
    )
}

async fn reminder_delete(
    State(sc): State<Shared>,
    Path((actor_type, actor_id, name)): Path<(String, String, String)>,
) -> Response {
    respond(
        async {
            reminders::delete(&sc, &ActorRef::new(&actor_type, &actor_id), &name).await?;
            Ok(no_content())
        }
        .await,
    )
}

async fn timer_create(
    State(sc): State<Shared>,
    Path((actor_type, actor_id, name)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    respond(
        async {
            let actor = ActorRef::new(&actor_type, &actor_id);
            let request = buffer(&sc, req).await?;
            operations::create_timer(&sc, &actor, &name, request).await
        }
        .await,
    )
}

async fn timer_delete(
    State(sc): State<Shared>,
    Path((actor_type, actor_id, name)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    respond(
        async {
            let actor = ActorRef::new(&actor_type, &actor_id);
            let request = buffer(&sc, req).await?;
            operations::delete_timer(&sc, &actor, &name, request).await
        }
        .await,
    )
}
