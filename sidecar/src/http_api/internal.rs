//! The internal (sidecar-to-sidecar) port: every request is an invocation of this app, handed to
//! [`crate::blocks::invoke`]'s callee side, except actor calls another host forwarded here
//! (`tandem-actor-forwarded`), which the actor routes run, and gRPC calls proxied by
//! `dapr-app-id` (`tandem-grpc-proxy`), which go to the app as they are. With mTLS the caller
//! headers are first overwritten with the certificate's identity.

use super::Shared;
use crate::actors::calls::FORWARDED;
use crate::blocks::invoke::proxy::PROXIED;
use crate::channels::peer::drain;
use crate::security::PeerIdentity;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

pub async fn serve(State(sc): State<Shared>, actor_routes: Router, mut req: Request) -> Response {
    // Before anything reads them: with mTLS, the caller is who its certificate says.
    if sc.security().mtls() {
        let peer = req.extensions().get::<PeerIdentity>().cloned();
        crate::security::stamp_caller(req.headers_mut(), peer.as_ref());
    }
    // Every call here came over a caller's pooled connection (invocations, forwarded actor calls,
    // proxied gRPC), so each one keeps the connections open past the callers' pools on drain.
    let drain = sc.peers().drain();
    drain.served();
    if req.headers().contains_key(FORWARDED) {
        return match actor_routes.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    if req.headers().contains_key(PROXIED) {
        return match sc.invoke().serve_grpc_proxy(req).await {
            Ok(response) => response,
            Err(e) => tonic::Status::from(e).into_http(),
        };
    }
    if drain.draining() {
        return drain::unprocessed_answer();
    }
    let mut response = match sc.invoke().serve(req).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    // Only this port says "not run": an app's header of that name must not make a caller retry.
    response.headers_mut().remove(drain::UNPROCESSED);
    response
}
