//! The HTTP app channel: a pooled keep-alive client to the app (HTTP/1.1, over TLS for
//! `--app-protocol https`, or HTTP/2 cleartext for `h2c`), readiness (the app counts as reachable
//! once its port accepts a connection), and every request the sidecar makes of an HTTP app. This
//! is the only place that writes `dapr-api-token` towards the app.

use super::health::ProbeResult;
pub use super::http_rules::{classify, probe_accepts, to_app_headers};
use super::http_rules::{metadata_headers, route_uri};
use super::http_transport::AppClient;
pub use super::http_transport::AppHttp;
use super::{AppChannel, AppError, BulkEventDelivery, EventDelivery, Outcome, Unreachable};
use crate::channels::hop_by_hop::strip_hop_by_hop;
use crate::metrics::body::Measured;
use crate::metrics::http::{ClientDone, HttpMetrics};
use crate::pubsub::subscriptions::{self, SubscriptionJson};
use async_trait::async_trait;
use axum::body::Body;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tandem_crds::annotations::headers as dapr;
use tokio_util::sync::CancellationToken;

/// How long the app gets to answer an input binding's OPTIONS probe (Dapr's figure).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The channel to an HTTP app.
pub struct HttpAppChannel {
    authority: Authority,
    /// The `Host` every request to the app carries, made once (the client would `format!` it
    /// for each request).
    host: HeaderValue,
    app_id: String,
    /// `APP_API_TOKEN`: what this sidecar presents to its own app, and only to it.
    app_token: Option<HeaderValue>,
    client: AppClient,
    ready: AtomicBool,
    metrics: Arc<HttpMetrics>,
}

/// An answer of the app, its body measured for `dapr_http_client_*` until it has been read.
type Answer = Response<Measured<Incoming, ClientDone>>;

impl HttpAppChannel {
    pub fn new(
        address: &str,
        port: u16,
        protocol: AppHttp,
        app_id: &str,
        app_token: Option<HeaderValue>,
        metrics: Arc<HttpMetrics>,
    ) -> Result<Self, String> {
        let client = AppClient::new(protocol)?;
        let host = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.to_owned()
        };
        let authority = format!("{host}:{port}");
        let invalid = |e: &dyn std::fmt::Display| format!("invalid app address {authority}: {e}");
        Ok(HttpAppChannel {
            authority: Authority::try_from(authority.as_str()).map_err(|e| invalid(&e))?,
            host: crate::channels::host_header(client.scheme().as_str(), &authority, port)
                .ok_or_else(|| invalid(&"not a Host header value"))?,
            app_id: app_id.to_owned(),
            app_token,
            client,
            ready: AtomicBool::new(false),
            metrics,
        })
    }

    /// Sends a request whose URI holds only the path and query; the app's authority and the
    /// app token are added here, and the call is measured (the one place for every call to an
    /// HTTP app).
    async fn send(
        &self,
        mut req: Request<Body>,
    ) -> Result<Answer, hyper_util::client::legacy::Error> {
        let sent = http_body::Body::size_hint(req.body()).exact().unwrap_or(0);
        let call = self
            .metrics
            .client_call(req.method(), req.uri().path(), sent);
        // The request's own path and query, moved, not parsed again.
        let mut uri = std::mem::take(req.uri_mut()).into_parts();
        uri.scheme = Some(self.client.scheme());
        uri.authority = Some(self.authority.clone());
        if uri.path_and_query.is_none() {
            uri.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        if let Ok(uri) = Uri::from_parts(uri) {
            *req.uri_mut() = uri;
        }
        to_app_headers(req.headers_mut(), self.app_token.as_ref());
        req.headers_mut()
            .entry(http::header::HOST)
            .or_insert_with(|| self.host.clone());
        match self.client.request(req).await {
            Ok(response) => {
                let status = response.status();
                Ok(response.map(|body| call.answered(status, body)))
            }
            Err(e) => {
                call.failed();
                Err(e)
            }
        }
    }

    /// Sends an event and reads the whole answer (an unreadable body reads as empty); the
    /// client's error tells an unreachable app from one that failed mid-answer.
    async fn exchange_raw(
        &self,
        req: Request<Body>,
    ) -> Result<(u16, Bytes), hyper_util::client::legacy::Error> {
        let response = self.send(req).await?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// Sends a request and reads the whole answer: its status and body.
    async fn exchange(&self, req: Request<Body>) -> Result<(http::StatusCode, Bytes), String> {
        let response = self.send(req).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

#[async_trait]
impl AppChannel for HttpAppChannel {
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    async fn wait_until_reachable(&self, stop: CancellationToken) {
        if super::wait_for_port(self.authority.as_str(), stop).await {
            self.ready.store(true, Ordering::Release);
            tracing::info!(app = %self.authority, "app channel ready");
        }
    }

    async fn invoke(&self, mut req: Request<Body>) -> Result<Response<Body>, AppError> {
        // h2 requests carry the authority in the URI; the app gets HTTP/1.1 with its own Host.
        req.headers_mut().remove(http::header::HOST);
        *req.version_mut() = http::Version::HTTP_11;
        match self.send(req).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Ok(Response::from_parts(parts, Body::new(body)))
            }
            Err(e) => Err(AppError {
                message: e.to_string(),
                unreachable: e.is_connect(),
                source: Some(Box::new(e)),
            }),
        }
    }

    async fn deliver_event(&self, event: EventDelivery<'_>) -> Result<Outcome, Unreachable> {
        let mut req = Request::post(route_uri(event.path))
            .body(Body::from(event.body))
            .map_err(|_| Unreachable)?;
        let h = req.headers_mut();
        metadata_headers(h, event.metadata);
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/cloudevents+json"),
        );
        if let Ok(v) = HeaderValue::from_str(event.pubsub) {
            h.insert(HeaderName::from_static("pubsubname"), v);
        }
        if let Some(tp) = event
            .traceparent
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            h.insert(HeaderName::from_static(dapr::TRACEPARENT), tp);
        }
        match self.exchange_raw(req).await {
            Ok((status, body)) => Ok(classify(status, &body)),
            Err(e) if e.is_connect() => {
                tracing::debug!(error = %e, "the app is unreachable");
                Err(Unreachable)
            }
            Err(e) => {
                tracing::debug!(error = %e, "delivery to the app failed");
                Ok(Outcome::Retry)
            }
        }
    }

    async fn deliver_bulk(
        &self,
        batch: BulkEventDelivery<'_>,
    ) -> Result<Vec<Outcome>, Unreachable> {
        let mut req = Request::post(route_uri(batch.path))
            .body(Body::from(batch.body))
            .map_err(|_| Unreachable)?;
        let h = req.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(batch.pubsub) {
            h.insert(HeaderName::from_static("pubsubname"), v);
        }
        if let Some(tp) = batch
            .traceparent
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            h.insert(HeaderName::from_static(dapr::TRACEPARENT), tp);
        }
        match self.exchange_raw(req).await {
            Ok((status, body)) => Ok(super::bulk::read_bulk_answer(
                status,
                &body,
                batch.entry_ids,
            )),
            Err(e) if e.is_connect() => Err(Unreachable),
            Err(e) => {
                tracing::debug!(error = %e, "bulk delivery to the app failed");
                Ok(vec![Outcome::Retry; batch.entry_ids.len()])
            }
        }
    }

    async fn deliver_binding(
        &self,
        route: &str,
        data: Bytes,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Bytes, String> {
        let mut req = Request::post(format!("/{route}"))
            .body(Body::from(data))
            .map_err(|e| e.to_string())?;
        let headers = req.headers_mut();
        metadata_headers(headers, metadata);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let (status, body) = self.exchange(req).await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("the app answered {status}"))
        }
    }

    async fn probe_route(&self, route: &str) -> bool {
        let Ok(req) = Request::builder()
            .method(Method::OPTIONS)
            .uri(format!("/{route}"))
            .body(Body::empty())
        else {
            return false;
        };
        match tokio::time::timeout(PROBE_TIMEOUT, self.send(req)).await {
            Ok(Ok(response)) => probe_accepts(response.status().as_u16()),
            Ok(Err(e)) => {
                tracing::warn!(%route, error = %e, "OPTIONS probe failed");
                false
            }
            Err(_) => {
                tracing::warn!(%route, "OPTIONS probe timed out");
                false
            }
        }
    }

    async fn probe_health(&self, path: &str, timeout: Duration) -> ProbeResult {
        let Ok(req) = Request::get(route_uri(path)).body(Body::empty()) else {
            return ProbeResult::Failed(format!("{path:?} is not a request path"));
        };
        match tokio::time::timeout(timeout, self.exchange_raw(req)).await {
            Ok(Ok((status, _))) => ProbeResult::Answered(status),
            Ok(Err(e)) => ProbeResult::Failed(e.to_string()),
            Err(_) => ProbeResult::TimedOut,
        }
    }

    /// `GET /dapr/subscribe`: 404 or an empty body means no subscriptions.
    async fn subscriptions(&self) -> Result<Vec<SubscriptionJson>, String> {
        let mut req = Request::get("/dapr/subscribe")
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        if let Ok(id) = HeaderValue::from_str(&self.app_id) {
            req.headers_mut()
                .insert(HeaderName::from_static(dapr::APP_ID), id);
        }
        req.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let (status, body) = self.exchange(req).await?;
        match status.as_u16() {
            200..=299 => subscriptions::parse_subscribe_answer(&body),
            404 => Ok(Vec::new()),
            other => Err(format!("GET /dapr/subscribe answered {other}")),
        }
    }
}
