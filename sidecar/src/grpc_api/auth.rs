//! The `DAPR_API_TOKEN` gate of the gRPC port. daprd checks the `dapr-api-token` metadata in an
//! interceptor that every service on its API server shares (reflection included; it serves no
//! gRPC health service there), so nothing on this port is exempt. The rule is the one token rule
//! (`blocks::api_token`), refusals in daprd's words from the error table,
//! and the metadata is removed so it never travels further (an invoked app never sees it).

use super::Shared;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tandem_crds::annotations::headers::API_TOKEN;
use tonic::Status;

pub async fn require_token(State(sc): State<Shared>, mut req: Request, next: Next) -> Response {
    let presented = req.headers().get(API_TOKEN).map(|v| v.as_bytes());
    if let Err(refusal) = sc.check_api_token(presented) {
        return Status::from(refusal.error()).into_http();
    }
    req.headers_mut().remove(API_TOKEN);
    next.run(req).await
}
