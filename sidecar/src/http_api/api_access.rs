//! `spec.api` on the HTTP API: a group the Configuration does not allow is not there (404
//! `ERR_NOT_FOUND`, as daprd, which never registers its routes).

use super::Shared;
use crate::blocks::error::{BlockError, Code};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn gate(State(sc): State<Shared>, req: Request, next: Next) -> Response {
    let permitted = match sc.security().api_access(&sc.config()) {
        Ok(None) => true,
        Ok(Some(access)) => access.http_permits(req.uri().path()),
        Err(e) => {
            tracing::warn!(error = %e, "spec.api is invalid; refusing the API");
            false
        }
    };
    if !permitted {
        let message = format!("{} is not available (spec.api)", req.uri().path());
        return BlockError::new(Code::RouteNotFound, message).into_response();
    }
    next.run(req).await
}
