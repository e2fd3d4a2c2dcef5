//! The sidecar's two channels, one owner each. [`app`] is the only code that builds requests to
//! the sidecar's own app (and the only writer of its `dapr-api-token`); [`peer`] owns calls to
//! other sidecars: resolution, the connection pool, replay of unprocessed calls and the reading
//! of peer errors — where a TLS connector will plug in.

pub mod app;
pub mod header_names;
pub mod hop_by_hop;
pub mod peer;
pub mod permanent_headers;
