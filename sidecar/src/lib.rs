//! Tandem's sidecar: Dapr's HTTP API for the app next to it.
//!
//! Data flow: `cli` parses and validates flags; `components` turns manifests into a plan and then
//! a live registry; `lifecycle` binds the ports and serves the `api` routers. App requests to
//! `/v1.0/invoke` go through `invoke::caller` → (h2c) → the peer's `invoke::callee` → its
//! `app_channel`; peers are found by `resolve`. Errors become HTTP in one place, `error`.

pub mod api;
pub mod app_channel;
pub mod child;
pub mod cli;
pub mod components;
pub mod control_plane;
pub mod error;
pub mod http_client;
pub mod input_bindings;
pub mod invoke;
pub mod kubernetes;
pub mod lifecycle;
pub mod live_workers;
pub mod metrics;
pub mod pubsub;
pub(crate) mod resiliency;
pub mod resolve;
pub mod runtime;
pub mod server;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use lifecycle::run;
