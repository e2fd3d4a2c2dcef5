//! `dapr-app-id` proxying on the gRPC port: a call to any service but the Dapr API itself that
//! names a target app in `dapr-app-id` metadata is not served here but proxied, as it is, to that
//! app ([`crate::blocks::invoke::proxy`]). Calls without it reach the Dapr API (and reflection).

use super::Shared;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tandem_crds::annotations::headers::APP_ID;
use tonic::Status;

/// The Dapr API's own service: never proxied, whatever the metadata says (as in daprd).
const DAPR_SERVICE: &str = "/dapr.proto.runtime.v1.Dapr/";

pub async fn by_app_id(State(sc): State<Shared>, req: Request, next: Next) -> Response {
    let target = req
        .headers()
        .get(APP_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let Some(target) = target.filter(|_| !req.uri().path().starts_with(DAPR_SERVICE)) else {
        return next.run(req).await;
    };
    match sc.invoke().proxy_grpc(&target, req).await {
        Ok(response) => response,
        Err(e) => Status::from(e).into_http(),
    }
}
