//! Components: reading Dapr Component manifests ([`manifest`]), checking them against the
//! catalogue and resolving secret references ([`plan`]), and the live [`registry`] the API looks
//! components up in, filled as each one finishes initialising.

pub mod bindings;
pub mod factory;
pub mod lock;
pub mod manifest;
pub mod metadata;
pub mod mqtt_connection;
pub mod plan;
pub mod postgres_connection;
pub mod pubsub;
pub mod redis_connection;
pub mod registry;
pub mod secrets;
pub mod state;

pub use plan::{Plan, PlanContext};
pub use registry::{ComponentStatus, Registry};
