//! The peer channel's transports: plain TCP, or with mTLS one client per expected peer
//! identity. A connection is verified once, at its handshake, against the identity its client
//! expects, and the pool of that client holds only such connections: a call for app `b` can never
//! reuse a connection that was verified as app `c` at the same address.
//!
//! Each transport speaks two wires ([`Wire`]): HTTP/1.1 keep-alive for invocations (one pooled
//! connection per call in flight: no HPACK, flow control or connection task per stream, which
//! cost about 100 µs p50 per chain in BENCHMARKS.md's measurement) and h2 for proxied gRPC,
//! which needs trailers and full-duplex streams. The internal port serves both on one port.

use crate::security::identity::Workload;
use crate::security::spiffe::SpiffeId;
use crate::security::tls::{Expect, client_config};
use axum::body::Body;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which HTTP version a call to a peer goes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Invocations and actor calls.
    Http1,
    /// Proxied gRPC: trailers and streams in both directions at once.
    Http2,
}

fn http_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(3)));
    connector.enforce_http(false);
    connector
}

fn client<C>(connector: C, wire: Wire) -> Client<C, Body>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new());
    match wire {
        // Below the internal port's header read timeout (10 s, after which the peer closes an
        // idle connection) and the drain rule's bound (`super::drain`).
        Wire::Http1 => builder.pool_idle_timeout(super::drain::POOL_IDLE),
        Wire::Http2 => builder
            .http2_only(true)
            .http2_max_header_list_size(crate::server::H2_MAX_HEADER_LIST)
            .http2_keep_alive_interval(Some(Duration::from_secs(30)))
            .pool_idle_timeout(Duration::from_secs(90)),
    };
    builder.build(connector)
}

/// One client per wire over the same kind of connection.
#[derive(Clone)]
pub struct Pair<C> {
    http1: Client<C, Body>,
    http2: Client<C, Body>,
}

impl<C> Pair<C>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    async fn request(
        &self,
        req: http::Request<Body>,
        wire: Wire,
    ) -> Result<http::Response<Incoming>, hyper_util::client::legacy::Error> {
        match wire {
            Wire::Http1 => self.http1.request(req).await,
            Wire::Http2 => self.http2.request(req).await,
        }
    }
}

/// One way to reach peers.
#[derive(Clone)]
pub enum Transport {
    Plain(Pair<HttpConnector>),
    Mtls(Pair<HttpsConnector<HttpConnector>>),
}

impl Transport {
    pub fn plain() -> Transport {
        Transport::Plain(Pair {
            http1: client(http_connector(), Wire::Http1),
            http2: client(http_connector(), Wire::Http2),
        })
    }

    pub fn scheme(&self) -> &'static str {
        match self {
            Transport::Plain(_) => "http",
            Transport::Mtls(_) => "https",
        }
    }

    pub async fn request(
        &self,
        req: http::Request<Body>,
        wire: Wire,
    ) -> Result<http::Response<Incoming>, hyper_util::client::legacy::Error> {
        match self {
            Transport::Plain(c) => c.request(req, wire).await,
            Transport::Mtls(c) => c.request(req, wire).await,
        }
    }
}

/// The mTLS clients of one sidecar, one per identity it has called.
pub struct MtlsClients {
    workload: Arc<Workload>,
    by_id: Mutex<HashMap<SpiffeId, Transport>>,
    any: Transport,
}

impl MtlsClients {
    pub fn new(workload: Arc<Workload>) -> Result<MtlsClients, rustls::Error> {
        let td = workload.id().trust_domain.clone();
        let any = mtls(&workload, Expect::TrustDomain(td))?;
        Ok(MtlsClients {
            workload,
            by_id: Mutex::new(HashMap::new()),
            any,
        })
    }

    /// The client for calls to `app_id` in `namespace` (this sidecar's when `None`), in this
    /// sidecar's trust domain.
    pub fn for_app(
        &self,
        app_id: &str,
        namespace: Option<&str>,
    ) -> Result<Transport, rustls::Error> {
        let own = self.workload.id();
        let id = SpiffeId::new(
            &own.trust_domain,
            namespace.unwrap_or(&own.namespace),
            app_id,
        );
        let mut clients = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&id) {
            return Ok(client.clone());
        }
        let client = mtls(&self.workload, Expect::Exactly(id.clone()))?;
        clients.insert(id, client.clone());
        Ok(client)
    }

    /// The client for actor calls: placement chose the host, any app of the trust domain.
    pub fn any(&self) -> Transport {
        self.any.clone()
    }
}

fn mtls(workload: &Arc<Workload>, expect: Expect) -> Result<Transport, rustls::Error> {
    let config = client_config(workload, expect)?;
    // HTTP/1.1 offers no ALPN (hyper-rustls leaves it empty), so it also reaches peers whose
    // internal port predates it; h2 offers "h2".
    let http1 = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.clone())
        .https_only()
        .enable_http1()
        .wrap_connector(http_connector());
    let http2 = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http2()
        .wrap_connector(http_connector());
    Ok(Transport::Mtls(Pair {
        http1: client(http1, Wire::Http1),
        http2: client(http2, Wire::Http2),
    }))
}
