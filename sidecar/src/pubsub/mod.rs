//! Pub/sub's subscriber side, pure parts and the delivery loop: CloudEvents, routing rules,
//! subscriptions, and at-least-once delivery to the app through the app channel, one event per
//! request or in batches (bulk subscribe). Publishing is
//! the [`crate::blocks::pubsub`] block; the running subscriptions are `workers::subscribers`.

pub mod bulk;
pub mod cloudevent;
pub mod delivery;
pub mod routing;
pub mod subscriptions;
