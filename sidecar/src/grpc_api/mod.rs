//! The gRPC front end: `dapr.proto.runtime.v1.Dapr` on `--dapr-grpc-port`, the service daprd
//! serves there, over the same building blocks as the HTTP API. Each adapter (one file per block)
//! reads Dapr's protobuf request, calls the block, and writes the protobuf answer; a failing
//! block's [`crate::blocks::error::BlockError`] becomes a status in [`error`]. The generated code
//! (messages, the `Dapr` server trait) is the pinned `dapr` crate's; [`service`] implements it.
//!
//! The services are tonic routes turned into an axum router, so the port is served by the same
//! connection loop as every other port (`crate::server`: h2c, header timeout, graceful drain).
//! Server reflection lists and describes the Dapr API from the descriptor set the `dapr` crate
//! publishes (see `build.rs`).

pub mod actors;
pub mod api_access;
pub mod auth;
pub mod bindings;
pub mod deadline;
pub mod error;
pub mod invoke;
pub mod lock;
pub mod metadata;
pub mod proxy;
pub mod pubsub;
pub mod secrets;
pub mod service;
pub mod state;
pub mod state_query;
pub mod subscribe_stream;

use crate::blocks::Sidecar;
use crate::blocks::error::BlockError;
use axum::middleware::{self, map_response};
use axum::response::Response;
use dapr::dapr::proto::runtime::v1::dapr_server::DaprServer;
use service::DaprApi;
use std::sync::Arc;
use tonic::metadata::MetadataMap;
use tonic::service::Routes;
use tonic::{Code, Status};
use tower_http::catch_panic::CatchPanicLayer;

/// What every adapter gets.
pub type Shared = Arc<Sidecar>;

/// The Dapr API's `FileDescriptorSet`, copied from the `dapr` crate by `build.rs`.
const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dapr_descriptor_set.bin"));

/// The text of a metadata entry, if it is present and text.
pub fn metadata_text(metadata: &MetadataMap, name: &str) -> Option<String> {
    metadata
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// tonic refuses an oversized request with OUT_OF_RANGE; daprd (grpc-go) answers
/// RESOURCE_EXHAUSTED, as the table does for a body over `--max-body-size`, with grpc-go's
/// message, which SDKs show (and the JS SDK's tests compare).
fn message_too_large(limit: u64) -> impl Fn(Response) -> std::future::Ready<Response> + Clone {
    move |mut response: Response| {
        let oversized = Status::from_header_map(response.headers())
            .filter(|s| s.code() == Code::OutOfRange)
            .and_then(|s| decoded_length(s.message()));
        if let Some(found) = oversized {
            let headers = response.headers_mut();
            for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
                headers.remove(name);
            }
            let refused = BlockError::new(
                crate::blocks::error::Code::BodyTooLarge,
                format!("grpc: received message larger than max ({found} vs. {limit})"),
            );
            let _ = Status::from(refused).add_header(headers);
        }
        std::future::ready(response)
    }
}

/// The message length in tonic's "decoded message length too large" refusal.
fn decoded_length(message: &str) -> Option<u64> {
    let rest = message.strip_prefix("Error, decoded message length too large: found ")?;
    rest.split_once(' ')?.0.parse().ok()
}

/// A panic in an adapter becomes an INTERNAL status, never a dropped connection.
fn panic_to_status(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    Status::internal("internal error while handling the request").into_http()
}

/// gRPC server reflection (v1 and v1alpha, as grpc-go registers both) for the Dapr API.
fn reflection(routes: Routes) -> Routes {
    let configure = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(DESCRIPTOR_SET)
    };
    let routes = match configure().build_v1() {
        Ok(v1) => routes.add_service(v1),
        Err(e) => {
            tracing::warn!(error = %e, "gRPC reflection (v1) is off");
            return routes;
        }
    };
    match configure().build_v1alpha() {
        Ok(v1alpha) => routes.add_service(v1alpha),
        Err(e) => {
            tracing::warn!(error = %e, "gRPC reflection (v1alpha) is off");
            routes
        }
    }
}

/// The app-facing gRPC API on `--dapr-grpc-port`. Unknown services and methods answer
/// UNIMPLEMENTED (tonic's router fallback and the generated server).
pub fn router(sc: Shared) -> axum::Router {
    let limit = usize::try_from(sc.max_body_size()).unwrap_or(usize::MAX);
    let dapr = DaprServer::new(DaprApi { sc: sc.clone() })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    reflection(Routes::new(dapr))
        .prepare()
        .into_axum_router()
        // Innermost: a request over the size limit is reported as daprd reports it.
        .layer(map_response(message_too_large(sc.max_body_size())))
        // Calls for another app's services (`dapr-app-id`) are proxied, not served here.
        .layer(middleware::from_fn_with_state(sc.clone(), proxy::by_app_id))
        // The call's deadline bounds everything the services do.
        .layer(middleware::from_fn(deadline::enforce_deadline))
        // Dapr methods the Configuration's spec.api leaves out answer UNIMPLEMENTED.
        .layer(middleware::from_fn_with_state(sc.clone(), api_access::gate))
        // The token before any service decodes a message (and before a deadline is armed).
        .layer(middleware::from_fn_with_state(
            sc.clone(),
            auth::require_token,
        ))
        // Metrics count every answer too (dapr_grpc_io_server_*), proxied calls included.
        .layer(middleware::from_fn_with_state(
            sc.metrics().grpc().clone(),
            crate::metrics::grpc::record_server,
        ))
        // The server span sees every answer, refused ones included.
        .layer(middleware::from_fn(crate::traces::server::grpc_api))
        // Outermost: nothing below may take the connection down.
        .layer(CatchPanicLayer::custom(
            panic_to_status as fn(_) -> Response,
        ))
}

#[cfg(test)]
mod tests {
    use super::decoded_length;

    #[test]
    fn the_length_is_read_from_tonics_refusal() {
        let tonic = "Error, decoded message length too large: found 11534407 bytes, the limit is: 10485760 bytes";
        assert_eq!(decoded_length(tonic), Some(11_534_407));
        assert_eq!(
            decoded_length("Error, decoded message length too large"),
            None
        );
        assert_eq!(decoded_length("something else: found 12 bytes"), None);
    }
}
