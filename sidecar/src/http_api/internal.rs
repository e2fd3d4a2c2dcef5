//! The internal (sidecar-to-sidecar) port: every request is an invocation of this app, handed to
//! [`crate::blocks::invoke`]'s callee side, except actor calls another host forwarded here
//! (`tandem-actor-forwarded`), which the actor routes run.

use super::Shared;
use crate::actors::calls::FORWARDED;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

pub async fn serve(State(sc): State<Shared>, actor_routes: Router, req: Request) -> Response {
    if req.headers().contains_key(FORWARDED) {
        return match actor_routes.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    match sc.invoke().serve(req).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}
