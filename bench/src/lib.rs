//! Helpers for Tandem's benchmark suite (`scripts/bench.sh`, `BENCHMARKS.md`):
//!
//! - [`actors`]: B9, an actor app and the open- and closed-loop drivers; [`sidecar_proc`]
//!   starts release sidecars for it.
//! - [`grpc`]: B11, a gRPC echo app (`AppCallback`) and a gRPC/HTTP load generator.
//! - [`echo`]: a minimal hyper HTTP/1.1 server that echoes the request body; the app behind the
//!   sidecars and the "hello server" baseline.
//! - [`injector`]: B6, the injector's `/mutate` and a constant server over the same TLS stack.
//! - [`cold_start`]: exec a command, time exec → first 2xx on a URL, stop it; repeat.
//! - [`procfs`]: CPU time and memory of processes from `/proc`.
//! - [`oha`]: the numbers the suite needs from `oha --output-format json`.
//! - [`operator`]: B10, the operator against a real kube-apiserver, real vs no-op reconciles.
//! - [`report`]: medians of per-round results, ratios and targets as a Markdown table.
//! - [`ports`], [`stats`]: free loopback ports; median and percentiles.

pub mod actors;
pub mod cold_start;
pub mod echo;
pub mod grpc;
pub mod injector;
pub mod oha;
pub mod operator;
pub mod ports;
pub mod procfs;
pub mod pubsub;
pub mod report;
pub mod sidecar_proc;
pub mod stats;
