//! Service invocation: the caller side (resolve the target, rewrite headers, forward over h2c to
//! the callee's internal port) and the callee side (check the request is for this app, forward to
//! the app). Bodies stream through; nothing is buffered whole.

pub mod callee;
pub mod caller;
pub mod headers;
pub mod method;
pub mod peer_error;
pub mod target;
pub mod trace;

use axum::body::Body;
use axum::response::Response;
use hyper::body::Incoming;

/// A response from the app or a peer, streamed back as it arrives, minus hop-by-hop headers.
pub fn stream_back(response: http::Response<Incoming>) -> Response {
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}
