//! The connection pool of the HTTP app channel, by `--app-protocol`: HTTP/1.1 keep-alive,
//! HTTP/1.1 over TLS (`https`), or HTTP/2 with prior knowledge (`h2c`), as daprd speaks them.

use axum::body::Body;
use http::Request;
use http::uri::Scheme;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, ResponseFuture, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// Which HTTP the app speaks (`--app-protocol http`, `https` or `h2c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppHttp {
    Http1,
    /// HTTP/1.1 over TLS; the app's certificate is not checked, as daprd does not (`tls.rs`).
    Https,
    /// HTTP/2 with prior knowledge, no TLS.
    H2c,
}

/// The client for the app: plain (HTTP/1.1 or h2c) or TLS. Two variants rather than one TLS-capable
/// connector, so a plain app's hot path has no TLS layer in it.
pub(super) enum AppClient {
    Plain(Client<HttpConnector, Body>),
    Tls(Client<HttpsConnector<HttpConnector>, Body>),
}

impl AppClient {
    pub(super) fn new(protocol: AppHttp) -> Result<AppClient, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .http2_only(protocol == AppHttp::H2c);
        if protocol != AppHttp::Https {
            return Ok(AppClient::Plain(builder.build(connector)));
        }
        connector.enforce_http(false);
        // No ALPN here: the connector offers what it is enabled for (HTTP/1.1).
        let tls =
            super::tls::app_client_config(&[]).map_err(|e| format!("TLS towards the app: {e}"))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(connector);
        Ok(AppClient::Tls(builder.build(connector)))
    }

    pub(super) fn scheme(&self) -> Scheme {
        match self {
            AppClient::Plain(_) => Scheme::HTTP,
            AppClient::Tls(_) => Scheme::HTTPS,
        }
    }

    pub(super) fn request(&self, req: Request<Body>) -> ResponseFuture {
        match self {
            AppClient::Plain(client) => client.request(req),
            AppClient::Tls(client) => client.request(req),
        }
    }
}
