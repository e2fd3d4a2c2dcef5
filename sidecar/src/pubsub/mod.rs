//! Pub/sub's subscriber side, pure parts and the delivery loop: CloudEvents, routing rules,
//! subscriptions, and at-least-once delivery to a [`sink::EventSink`] (the app through its
//! channel, or a gRPC streaming subscriber), one event per request or, to the app, in batches
//! (bulk subscribe). Publishing is the [`crate::blocks::pubsub`] block; the running app
//! subscriptions are `workers::subscribers`, streaming ones `grpc_api::subscribe_stream`.

pub mod bulk;
pub mod cloudevent;
pub mod delivery;
mod prepared;
pub mod routing;
pub mod sink;
pub mod streams;
pub mod subscriptions;
