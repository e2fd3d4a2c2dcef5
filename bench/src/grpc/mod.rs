//! B11, the gRPC benchmark (`grpc-bench`): an echo app speaking `AppCallback` ([`app`]), the
//! calls a run repeats ([`calls`]: proxied `OnInvoke`, `InvokeService`, `GetState`, and their
//! HTTP equivalents) and the open- and closed-loop drivers ([`load`]). `scripts/bench.sh --only
//! B11` starts the app, nginx (`grpc_pass`) and the sidecars, and runs the paths in rounds.

pub mod app;
pub mod calls;
pub mod load;
