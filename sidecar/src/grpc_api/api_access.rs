//! `spec.api` on the gRPC API: a method of a group the Configuration does not allow answers
//! UNIMPLEMENTED, as daprd's interceptor does.

use super::Shared;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tonic::Status;

pub async fn gate(State(sc): State<Shared>, req: Request, next: Next) -> Response {
    let permitted = match sc.security().api_access(&sc.config()) {
        Ok(None) => true,
        Ok(Some(access)) => access.grpc_permits(req.uri().path()),
        Err(e) => {
            tracing::warn!(error = %e, "spec.api is invalid; refusing the API");
            false
        }
    };
    if !permitted {
        return Status::unimplemented("requested endpoint is not available").into_http();
    }
    next.run(req).await
}
