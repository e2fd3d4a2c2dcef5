//! Outbound HTTP(S) clients (the `bindings.http` component, the operator in Kubernetes mode).
//! Tandem's TLS is rustls with ring; it is installed as the process's default provider before a
//! client is built, as reqwest requires.

/// A reqwest client builder, with the process's TLS provider in place.
pub fn builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// Makes ring the process's default rustls provider (once; later calls do nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
