//! Self-managed TLS for Tandem's webhooks (the injector's `/mutate`, the operator's `/convert`).
//!
//! Data flow: [`ensure`] reads the Secret (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`), creating or
//! rotating it with optimistic concurrency so all replicas converge on one certificate →
//! [`ServingCert`] holds it for rustls and can swap it while serving → [`serve`] runs an axum
//! `Router` over TLS until cancelled → [`refresh`] repeats `ensure` hourly and swaps. The caBundle
//! the API server must trust is the CA; [`ca_bundle`] decides which webhook configurations need it
//! written (the callers do the patching).

pub mod ca_bundle;
pub mod certs;
pub mod secret;
pub mod tls;

pub use certs::{Certificates, Rotation, Sans, generate, needs_rotation, rotation};
pub use secret::ensure;
pub use tls::{ServingCert, refresh, serve, server_config};

/// How often [`refresh`] re-checks the Secret.
pub const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// The DNS names of a Service's certificate: `name`, `name.ns`, `name.ns.svc`,
/// `name.ns.svc.<domain>`.
pub fn service_dns_names(service: &str, namespace: &str, cluster_domain: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.{cluster_domain}"),
    ]
}
