//! The peer channel: calls to other sidecars' internal ports, over HTTP/1.1 keep-alive or, for
//! proxied gRPC, h2 ([`Wire`]). [`Peers::call`] resolves the target, sends the call, and sends it
//! again to another address when the peer certainly did not process it (a refused connection, a
//! request hyper never wrote, a GOAWAY, a refused stream) and the body can be replayed. With mTLS ([`tls`]) every call goes over TLS to a peer whose SPIFFE ID is exactly
//! the target app's.

pub mod drain;
pub mod errors;
pub mod tls;

use crate::metrics::http::HttpMetrics;
use crate::resolve::{ResolveError, Resolver};
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, Uri};
use http_body::Body as _;
use http_body_util::BodyExt;
use std::sync::Arc;
pub use tls::Wire;
use tls::{MtlsClients, Transport};

/// Bodies up to this size are buffered so that a refused connection can be retried elsewhere.
pub const REPLAYABLE_BODY: u64 = 64 * 1024;
/// Addresses tried for one call.
const ATTEMPTS: u32 = 3;

/// A call to a peer sidecar.
pub struct PeerCall {
    pub app_id: String,
    /// `None`: the caller's own namespace.
    pub namespace: Option<String>,
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Body,
    /// HTTP/1.1 for invocations, h2 for proxied gRPC.
    pub wire: Wire,
}

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("app id not found")]
    NotFound,
    #[error("{0}")]
    Resolve(ResolveError),
    #[error("{0}")]
    Request(String),
    /// The request body failed while being read (the client's fault, or the transport's).
    #[error("{0}")]
    Body(axum::Error),
    #[error("{}", errors::describe(.0))]
    Send(hyper_util::client::legacy::Error),
    #[error("the mTLS client cannot be built: {0}")]
    Tls(rustls::Error),
    #[error("every instance tried was shutting down and did not run the call")]
    Unprocessed,
}

/// The clients for sidecar-to-sidecar calls (a keep-alive pool per peer, and one multiplexed h2
/// connection per peer for proxied gRPC) and the resolver that finds peers.
#[derive(Clone)]
pub struct Peers {
    resolver: Arc<dyn Resolver>,
    plain: Transport,
    mtls: Option<Arc<MtlsClients>>,
    /// `dapr_http_client_*` for calls to other sidecars.
    metrics: Option<Arc<HttpMetrics>>,
    /// This sidecar's side as a callee: whether its internal port is draining.
    drain: Arc<drain::Drain>,
}

impl Peers {
    /// Peers over plain TCP.
    pub fn new(resolver: Arc<dyn Resolver>) -> Peers {
        Peers {
            resolver,
            plain: Transport::plain(),
            mtls: None,
            metrics: None,
            drain: Arc::default(),
        }
    }

    /// The internal port's drain state (the callee side of this channel).
    pub fn drain(&self) -> &drain::Drain {
        &self.drain
    }

    /// The same peers, with their calls measured.
    pub fn measured(self, metrics: Arc<HttpMetrics>) -> Peers {
        Peers {
            metrics: Some(metrics),
            ..self
        }
    }

    /// Peers over mTLS.
    pub fn with_mtls(resolver: Arc<dyn Resolver>, mtls: MtlsClients) -> Peers {
        Peers {
            mtls: Some(Arc::new(mtls)),
            ..Peers::new(resolver)
        }
    }

    fn transport(&self, app_id: &str, namespace: Option<&str>) -> Result<Transport, PeerError> {
        match &self.mtls {
            None => Ok(self.plain.clone()),
            Some(m) => m.for_app(app_id, namespace).map_err(PeerError::Tls),
        }
    }

    /// Sends `call` to one instance of the app. A body that is small and of known length is
    /// buffered, so it can be sent again when an address refuses the connection (a pod going
    /// away); a streamed body cannot be replayed and goes through as it comes.
    pub async fn call(&self, call: PeerCall) -> Result<Response<Body>, PeerError> {
        let PeerCall {
            app_id,
            namespace,
            method,
            path_and_query,
            mut headers,
            body,
            wire,
        } = call;
        let small = body
            .size_hint()
            .exact()
            .is_some_and(|length| length <= REPLAYABLE_BODY);
        let (buffered, mut body): (Option<Bytes>, Option<Body>) = if small {
            let collected = body.collect().await.map_err(PeerError::Body)?;
            (Some(collected.to_bytes()), None)
        } else {
            (None, Some(body))
        };
        let replayable = buffered.is_some() || body.as_ref().is_some_and(|b| b.is_end_stream());
        let sent = buffered.as_ref().map_or(0, |b| b.len() as u64);
        let path = path_and_query.split('?').next().unwrap_or_default();
        let measured = self
            .metrics
            .as_ref()
            .map(|m| m.client_call(&method, path, sent));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let addr = self
                .resolver
                .resolve(&app_id, namespace.as_deref())
                .await
                .map_err(|e| match e {
                    ResolveError::NotFound(_) => PeerError::NotFound,
                    other => PeerError::Resolve(other),
                })?;
            // Only after the app resolved: no client is kept for an app id that does not exist.
            let transport = self.transport(&app_id, namespace.as_deref())?;
            let authority = addr.to_string();
            let host = super::host_header(transport.scheme(), &authority, addr.port());
            let uri = Uri::builder()
                .scheme(transport.scheme())
                .authority(authority)
                .path_and_query(path_and_query.as_str())
                .build()
                .map_err(|e| PeerError::Request(e.to_string()))?;
            let last_attempt = !(replayable && attempts < ATTEMPTS);
            let outbound_body = match &buffered {
                Some(bytes) => Body::from(bytes.clone()),
                None => body.take().unwrap_or_else(Body::empty),
            };
            let mut outbound = http::Request::new(outbound_body);
            *outbound.method_mut() = method.clone();
            *outbound.uri_mut() = uri;
            // The last attempt takes the headers; an earlier one sends a copy.
            *outbound.headers_mut() = if last_attempt {
                std::mem::take(&mut headers)
            } else {
                headers.clone()
            };
            if let Some(host) = host {
                outbound.headers_mut().insert(http::header::HOST, host);
            }
            // What was not run — a peer that refused the connection, is going away and did not
            // take the request, or is draining and said so — goes to another address when the
            // body can be sent again.
            let not_run = match transport.request(outbound, wire).await {
                Ok(response) if drain::is_unprocessed(response.status(), response.headers()) => {
                    PeerError::Unprocessed
                }
                Ok(response) => {
                    let (mut parts, body) = response.into_parts();
                    super::hop_by_hop::strip_hop_by_hop(&mut parts.headers);
                    let body = match measured {
                        Some(call) => Body::new(call.answered(parts.status, body)),
                        None => Body::new(body),
                    };
                    return Ok(Response::from_parts(parts, body));
                }
                Err(e) if e.is_connect() || errors::unprocessed(&e) => PeerError::Send(e),
                Err(e) => {
                    if let Some(call) = measured {
                        call.failed();
                    }
                    return Err(PeerError::Send(e));
                }
            };
            self.resolver.forget(&app_id, addr);
            if last_attempt {
                if let Some(call) = measured {
                    call.failed();
                }
                return Err(not_run);
            }
            tracing::debug!(app = %app_id, %addr, error = %not_run, "the peer did not run the call; trying again");
        }
    }

    /// Sends a buffered request to one peer's internal address (actor calls, which placement
    /// has already routed to a host).
    pub async fn send_to(
        &self,
        address: &str,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<Body>, PeerError> {
        let transport = match &self.mtls {
            None => self.plain.clone(),
            Some(m) => m.any(),
        };
        let uri = Uri::builder()
            .scheme(transport.scheme())
            .authority(address)
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| PeerError::Request(e.to_string()))?;
        let mut outbound = http::Request::new(Body::from(body));
        *outbound.method_mut() = method;
        *outbound.uri_mut() = uri;
        *outbound.headers_mut() = headers;
        outbound.headers_mut().remove(http::header::HOST);
        outbound.headers_mut().remove(http::header::CONTENT_LENGTH);
        super::hop_by_hop::strip_hop_by_hop(outbound.headers_mut());
        let response = transport
            .request(outbound, Wire::Http1)
            .await
            .map_err(PeerError::Send)?;
        let (mut parts, body) = response.into_parts();
        super::hop_by_hop::strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}
