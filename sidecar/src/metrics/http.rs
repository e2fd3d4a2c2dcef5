//! `dapr_http_server_*` (the HTTP API), `dapr_http_client_*` (the sidecar's calls to its app and
//! to other sidecars) and `dapr_http_healthprobes_*`, with Dapr's labels and buckets. The server
//! side is recorded by one middleware ([`record_server`]), the client side by
//! [`HttpMetrics::client_call`] around the one `send` of each HTTP client; both finish when the
//! response body has been sent or read ([`super::body::Measured`]).

use super::body::{Finish, Measured, Seen};
use super::labels::{PathLabel, PathRules, method_label};
use super::settings::{MetricSettings, SIZE_BUCKETS_BYTES};
use super::{counter_vec, histogram, histogram_vec, ms};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{Method, StatusCode};
use prometheus::{Histogram, HistogramVec, IntCounterVec, Registry};
use std::sync::Arc;
use std::time::{Duration, Instant};

type PromResult<T> = Result<T, prometheus::Error>;

pub struct HttpMetrics {
    enabled: bool,
    rules: PathRules,
    exclude_verbs: bool,
    server_count: IntCounterVec,
    server_latency: HistogramVec,
    server_request_bytes: Histogram,
    server_response_bytes: Histogram,
    /// Only with `increasedCardinality`, as daprd registers it.
    server_response_count: Option<IntCounterVec>,
    client_count: IntCounterVec,
    client_latency: HistogramVec,
    client_sent_bytes: HistogramVec,
    client_received_bytes: Histogram,
    probes: IntCounterVec,
    probe_latency: HistogramVec,
}

const LABELS: [&str; 3] = ["method", "path", "status"];

impl HttpMetrics {
    pub fn new(registry: &Registry, settings: &MetricSettings) -> PromResult<Self> {
        let buckets = &settings.latency_buckets_ms;
        let server_response_count = match settings.increased_cardinality {
            true => Some(counter_vec(
                registry,
                "dapr_http_server_response_count",
                "HTTP responses sent",
                &LABELS,
            )?),
            false => None,
        };
        Ok(HttpMetrics {
            enabled: settings.enabled,
            rules: PathRules::new(settings.increased_cardinality, &settings.path_matching),
            exclude_verbs: settings.exclude_verbs,
            server_count: counter_vec(
                registry,
                "dapr_http_server_request_count",
                "HTTP requests served",
                &LABELS,
            )?,
            server_latency: histogram_vec(
                registry,
                "dapr_http_server_latency",
                "HTTP request end-to-end latency in the server, in ms",
                &LABELS,
                buckets,
            )?,
            server_request_bytes: histogram(
                registry,
                "dapr_http_server_request_bytes",
                "HTTP request body sizes (Content-Length), in bytes",
                SIZE_BUCKETS_BYTES,
            )?,
            server_response_bytes: histogram(
                registry,
                "dapr_http_server_response_bytes",
                "HTTP response body sizes, in bytes",
                SIZE_BUCKETS_BYTES,
            )?,
            server_response_count,
            client_count: counter_vec(
                registry,
                "dapr_http_client_completed_count",
                "HTTP calls the sidecar made, completed",
                &LABELS,
            )?,
            client_latency: histogram_vec(
                registry,
                "dapr_http_client_roundtrip_latency",
                "HTTP calls the sidecar made: request sent to last byte of the answer, in ms",
                &LABELS,
                buckets,
            )?,
            client_sent_bytes: histogram_vec(
                registry,
                "dapr_http_client_sent_bytes",
                "HTTP calls the sidecar made: request body sizes, in bytes",
                &LABELS,
                SIZE_BUCKETS_BYTES,
            )?,
            client_received_bytes: histogram(
                registry,
                "dapr_http_client_received_bytes",
                "HTTP calls the sidecar made: answer body sizes, in bytes",
                SIZE_BUCKETS_BYTES,
            )?,
            probes: counter_vec(
                registry,
                "dapr_http_healthprobes_completed_count",
                "App health probes completed, by status",
                &["status"],
            )?,
            probe_latency: histogram_vec(
                registry,
                "dapr_http_healthprobes_roundtrip_latency",
                "App health probe round trip, in ms",
                &["status"],
                buckets,
            )?,
        })
    }

    /// One app health probe that ended with `status` (an HTTP status, `timeout` or `error`).
    pub fn health_probe(&self, status: &str, took: Duration) {
        if self.enabled {
            self.probes.with_label_values(&[status]).inc();
            self.probe_latency
                .with_label_values(&[status])
                .observe(ms(took));
        }
    }

    /// The start of a call to the app or a peer; [`ClientCall::answered`] finishes it.
    pub fn client_call(self: &Arc<Self>, method: &Method, path: &str, sent: u64) -> ClientCall {
        let path = self.rules.label(path);
        let method = method_label(method.as_str(), self.exclude_verbs);
        if self.enabled {
            self.client_sent_bytes
                .with_label_values(&[method, path.as_str(), ""])
                .observe(sent as f64);
        }
        ClientCall {
            metrics: self.clone(),
            method,
            path,
            started: Instant::now(),
        }
    }
}

/// A call the sidecar made, until its answer has been read.
pub struct ClientCall {
    metrics: Arc<HttpMetrics>,
    method: &'static str,
    path: PathLabel,
    started: Instant,
}

impl ClientCall {
    /// The answer's headers arrived: its body is measured until it has been read.
    pub fn answered<B>(self, status: StatusCode, body: B) -> Measured<B, ClientDone> {
        Measured::new(body, ClientDone { call: self, status })
    }

    /// No answer came (the connection failed): counted as daprd counts it, a 500.
    pub fn failed(self) {
        ClientDone {
            call: self,
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
        .finish(Seen::default());
    }
}

pub struct ClientDone {
    call: ClientCall,
    status: StatusCode,
}

impl Finish for ClientDone {
    fn finish(self, seen: Seen) {
        let ClientCall {
            metrics,
            method,
            path,
            started,
        } = self.call;
        if !metrics.enabled {
            return;
        }
        let labels = [method, path.as_str(), self.status.as_str()];
        metrics.client_count.with_label_values(&labels).inc();
        metrics
            .client_latency
            .with_label_values(&labels)
            .observe(ms(started.elapsed()));
        metrics.client_received_bytes.observe(seen.bytes as f64);
    }
}

struct ServerDone {
    metrics: Arc<HttpMetrics>,
    method: &'static str,
    path: PathLabel,
    status: StatusCode,
    started: Instant,
}

impl Finish for ServerDone {
    fn finish(self, seen: Seen) {
        let m = &self.metrics;
        let labels = [self.method, self.path.as_str(), self.status.as_str()];
        m.server_count.with_label_values(&labels).inc();
        m.server_latency
            .with_label_values(&labels)
            .observe(ms(self.started.elapsed()));
        if let Some(responses) = &m.server_response_count {
            responses.with_label_values(&labels).inc();
        }
        m.server_response_bytes.observe(seen.bytes as f64);
    }
}

/// The HTTP API's metrics middleware: one place for every route.
pub async fn record_server(
    State(metrics): State<Arc<HttpMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    record_server_around(&metrics, req, |req| next.run(req)).await
}

/// [`record_server`] around `inner`, for a front end that runs its checks as one layer.
pub async fn record_server_around<Inner, Answer>(
    metrics: &Arc<HttpMetrics>,
    req: Request,
    inner: Inner,
) -> Response
where
    Inner: FnOnce(Request) -> Answer,
    Answer: Future<Output = Response>,
{
    if !metrics.enabled {
        return inner(req).await;
    }
    let started = Instant::now();
    let method = method_label(req.method().as_str(), metrics.exclude_verbs);
    let path = metrics.rules.label(req.uri().path());
    let request_bytes = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    metrics.server_request_bytes.observe(request_bytes as f64);
    let response = inner(req).await;
    let status = response.status();
    let done = ServerDone {
        metrics: metrics.clone(),
        method,
        path,
        status,
        started,
    };
    response.map(|body| axum::body::Body::new(Measured::new(body, done)))
}
