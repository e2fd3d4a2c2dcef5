//! The operator against a real kube-apiserver (tandem-envtest): each test gets its own namespace
//! and runs the controllers in-process, scoped to that namespace, with the test's client.
//! Manifests go in through the real `kubectl apply`.

mod binary;
mod ca;
mod conversion;
mod leader;
mod services;
mod shared_caches;
mod sidecar_api;
mod sidecar_tls;
mod status;
mod steady_state;
mod support;
