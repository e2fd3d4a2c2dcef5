//! Tandem's sidecar: Dapr's HTTP and gRPC APIs for the app next to it.
//!
//! Data flow: `cli` parses and validates flags; `components` turns manifests into a plan and then
//! a live registry; `lifecycle` binds the ports, builds the [`blocks::Sidecar`] handle and serves.
//! The building blocks are transport-neutral methods on that handle; `http_api` is the HTTP
//! front end (extract → call a block → respond), `grpc_api` the gRPC one (the same, over Dapr's
//! protobuf messages), and errors have one table,
//! [`blocks::error::Code`]. The blocks reach the app only through `channels::app` and other
//! sidecars only through `channels::peer`. Background work (`workers`: subscriptions, input
//! bindings) starts from the handle; `reload` swaps components while the sidecar runs.
//!
//! Where to look, per building block:
//! - state: `blocks::state` (rules), `http_api::state` (Dapr's JSON), `grpc_api::state` (Dapr's
//!   protobuf), `components::state` (stores)
//! - pub/sub: `blocks::pubsub` (publish), `pubsub` (CloudEvents, routing, delivery),
//!   `workers::subscribers` (running subscriptions), `components::pubsub` (brokers)
//! - bindings: `blocks::bindings` (output), `workers::input_bindings` (input),
//!   `components::bindings`
//! - secrets: `blocks::secrets`, `components::secrets`
//! - invocation: `blocks::invoke` (both sides), `channels::peer` (other sidecars), `resolve`
//! - metadata and health: `blocks::metadata`, `blocks::health`
//! - actors: `actors` (placement, turns, state, reminders, timers), `http_api::actors`
//! - tracing: `traces` (settings, export, server spans, propagation)
//! - identity, mTLS between sidecars, access control: `security`

pub(crate) mod actors;
pub(crate) mod blocks;
pub(crate) mod channels;
pub(crate) mod child;
pub mod cli;
pub(crate) mod components;
pub(crate) mod config;
pub(crate) mod control_plane;
pub(crate) mod grpc_api;
pub(crate) mod http_api;
pub mod http_client;
pub(crate) mod kubernetes;
pub(crate) mod lifecycle;
pub(crate) mod metrics;
pub mod pubsub;
pub(crate) mod reload;
pub(crate) mod resiliency;
pub mod resolve;
pub mod security;
pub(crate) mod server;
pub(crate) mod swap;
pub(crate) mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub(crate) mod traces;
pub(crate) mod workers;

pub use lifecycle::run;
