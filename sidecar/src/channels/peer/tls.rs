//! The peer channel's transports: h2c, or with mTLS one client per expected peer identity. A
//! connection is verified once, at its handshake, against the identity its client expects, and
//! the pool of that client holds only such connections: a call for app `b` can never reuse a
//! connection that was verified as app `c` at the same address.

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

fn http_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(3)));
    connector.enforce_http(false);
    connector
}

fn client<C>(connector: C) -> Client<C, Body>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .http2_only(true)
        .http2_max_header_list_size(crate::server::H2_MAX_HEADER_LIST)
        .http2_keep_alive_interval(Some(Duration::from_secs(30)))
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// One way to reach peers.
#[derive(Clone)]
pub enum Transport {
    Plain(Client<HttpConnector, Body>),
    Mtls(Client<HttpsConnector<HttpConnector>, Body>),
}

impl Transport {
    pub fn plain() -> Transport {
        Transport::Plain(client(http_connector()))
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
    ) -> Result<http::Response<Incoming>, hyper_util::client::legacy::Error> {
        match self {
            Transport::Plain(c) => c.request(req).await,
            Transport::Mtls(c) => c.request(req).await,
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
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_config(workload, expect)?)
        .https_only()
        .enable_http2()
        .wrap_connector(http_connector());
    Ok(Transport::Mtls(client(connector)))
}
