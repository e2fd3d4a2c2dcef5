//! The internal (sidecar-to-sidecar) port: every request is an invocation of this app, handed to
//! [`crate::blocks::invoke`]'s callee side.

use super::Shared;
use crate::blocks::error::BlockError;
use axum::extract::{Request, State};
use axum::response::Response;

pub async fn serve(State(sc): State<Shared>, req: Request) -> Result<Response, BlockError> {
    sc.invoke().serve(req).await
}
