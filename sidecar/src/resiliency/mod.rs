//! Resiliency: how the sidecar waits before trying something again. Today that is one type,
//! [`Backoff`], shared by every reconnect and retry loop (the app channel's readiness probe,
//! component init, pub/sub and input-binding deliveries, the operator stream, the Redis and MQTT
//! readers). Dapr's Resiliency policies (retry, timeout and circuit breaker per target) are meant
//! to grow here on top of it.

mod backoff;

pub use backoff::Backoff;
