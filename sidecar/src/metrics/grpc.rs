//! `dapr_grpc_io_server_*` (the gRPC API on `--dapr-grpc-port`, proxied calls included) and
//! `dapr_grpc_io_client_*` (the gRPC app channel), with Dapr's labels (`grpc_server_method`,
//! `grpc_server_status`, `grpc_client_*`) and buckets. The server side is one middleware
//! ([`record_server`]), the client side one tower service wrapped around the app's channel
//! ([`MeasuredChannel`]); bytes are the bodies' data bytes, the status comes from the headers
//! of a trailers-only answer or from the trailers.

use super::body::{Finish, Measured, Seen, grpc_status};
use super::labels::{grpc_method_label, grpc_status_name};
use super::settings::{MetricSettings, SIZE_BUCKETS_BYTES};
use super::{counter_vec, histogram_vec, ms};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::uri::PathAndQuery;
use prometheus::{HistogramVec, IntCounterVec, Registry};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The app's health check is a probe (`dapr_http_healthprobes_*`), not a call.
const HEALTH_CHECK: &str = "/dapr.proto.runtime.v1.AppCallbackHealthCheck/HealthCheck";

/// Counters and histograms of one side (server or client).
struct Side {
    completed: IntCounterVec,
    latency: HistogramVec,
    received: HistogramVec,
    sent: HistogramVec,
}

impl Side {
    fn new(
        registry: &Registry,
        side: &str,
        latency: &str,
        buckets: &[f64],
    ) -> Result<Side, prometheus::Error> {
        let (method, status) = (format!("grpc_{side}_method"), format!("grpc_{side}_status"));
        let name = |n: &str| format!("dapr_grpc_io_{side}_{n}");
        Ok(Side {
            completed: counter_vec(
                registry,
                &name("completed_rpcs"),
                &format!("gRPC calls completed ({side} side), by method and status"),
                &[&method, &status],
            )?,
            latency: histogram_vec(
                registry,
                &name(latency),
                &format!("gRPC calls ({side} side): first byte to last byte, in ms"),
                &[&method, &status],
                buckets,
            )?,
            received: histogram_vec(
                registry,
                &name("received_bytes_per_rpc"),
                &format!("gRPC calls ({side} side): bytes received per call"),
                &[&method],
                SIZE_BUCKETS_BYTES,
            )?,
            sent: histogram_vec(
                registry,
                &name("sent_bytes_per_rpc"),
                &format!("gRPC calls ({side} side): bytes sent per call"),
                &[&method],
                SIZE_BUCKETS_BYTES,
            )?,
        })
    }
}

pub struct GrpcMetrics {
    enabled: bool,
    server: Side,
    client: Side,
}

impl GrpcMetrics {
    pub fn new(registry: &Registry, settings: &MetricSettings) -> Result<Self, prometheus::Error> {
        let buckets = &settings.latency_buckets_ms;
        Ok(GrpcMetrics {
            enabled: settings.enabled,
            server: Side::new(registry, "server", "server_latency", buckets)?,
            client: Side::new(registry, "client", "roundtrip_latency", buckets)?,
        })
    }
}

#[derive(Clone, Copy)]
enum Which {
    Server,
    Client,
}

/// One call, until its answer's body is finished. The method label is decided then, when
/// the status is known ([`grpc_method_label`]); the path is kept as the request had it
/// (a reference-counted copy, no allocation).
struct Call {
    metrics: Arc<GrpcMetrics>,
    which: Which,
    path: Option<PathAndQuery>,
    started: Instant,
    /// A trailers-only answer's status, read from its headers.
    header_status: Option<i32>,
}

impl Call {
    fn side(&self) -> &Side {
        match self.which {
            Which::Server => &self.metrics.server,
            Which::Client => &self.metrics.client,
        }
    }

    fn path(&self) -> &str {
        self.path.as_ref().map_or("", |p| p.path())
    }

    fn record(&self, code: i32, response_bytes: u64) {
        let method = grpc_method_label(self.path(), code);
        let labels = [method, grpc_status_name(code)];
        let side = self.side();
        side.completed.with_label_values(&labels).inc();
        side.latency
            .with_label_values(&labels)
            .observe(ms(self.started.elapsed()));
        let bytes = match self.which {
            Which::Server => &side.sent,
            Which::Client => &side.received,
        };
        bytes
            .with_label_values(&[method])
            .observe(response_bytes as f64);
    }
}

impl Finish for Call {
    fn finish(self, seen: Seen) {
        // No status anywhere: the stream broke (CANCELLED, as grpc-go reports a reset).
        let code = self.header_status.or(seen.grpc_status).unwrap_or(1);
        self.record(code, seen.bytes);
    }
}

/// The request's bytes: sent (client) or received (server), labelled by method only.
struct RequestBytes {
    metrics: Arc<GrpcMetrics>,
    which: Which,
    path: Option<PathAndQuery>,
}

impl Finish for RequestBytes {
    fn finish(self, seen: Seen) {
        let path = self.path.as_ref().map_or("", |p| p.path());
        let bytes = match self.which {
            Which::Server => &self.metrics.server.received,
            Which::Client => &self.metrics.client.sent,
        };
        bytes
            .with_label_values(&[grpc_method_label(path, 0)])
            .observe(seen.bytes as f64);
    }
}

/// The gRPC API's metrics middleware: one place for every method, proxied calls included.
pub async fn record_server(
    State(metrics): State<Arc<GrpcMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    if !metrics.enabled {
        return next.run(req).await;
    }
    let started = Instant::now();
    let path = req.uri().path_and_query().cloned();
    let req = req.map(|body| {
        axum::body::Body::new(Measured::new(
            body,
            RequestBytes {
                metrics: metrics.clone(),
                which: Which::Server,
                path: path.clone(),
            },
        ))
    });
    let response = next.run(req).await;
    let call = Call {
        metrics,
        which: Which::Server,
        path,
        started,
        header_status: grpc_status(response.headers()),
    };
    response.map(|body| axum::body::Body::new(Measured::new(body, call)))
}

/// The gRPC app channel, measured: every call tonic makes to the app goes through here.
#[derive(Clone)]
pub struct MeasuredChannel<S> {
    inner: S,
    metrics: Arc<GrpcMetrics>,
}

impl<S> MeasuredChannel<S> {
    pub fn new(inner: S, metrics: Arc<GrpcMetrics>) -> Self {
        MeasuredChannel { inner, metrics }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> tower::Service<http::Request<tonic::body::Body>> for MeasuredChannel<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let metrics = self.metrics.clone();
        let path = req.uri().path_and_query().cloned();
        let measured = metrics.enabled && path.as_ref().is_none_or(|p| p.path() != HEALTH_CHECK);
        if !measured {
            return Box::pin(self.inner.call(req));
        }
        let req = req.map(|body| {
            tonic::body::Body::new(Measured::new(
                body,
                RequestBytes {
                    metrics: metrics.clone(),
                    which: Which::Client,
                    path: path.clone(),
                },
            ))
        });
        let started = Instant::now();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let mut call = Call {
                metrics,
                which: Which::Client,
                path,
                started,
                header_status: None,
            };
            match answer.await {
                Ok(response) => {
                    call.header_status = grpc_status(response.headers());
                    Ok(response.map(|body| tonic::body::Body::new(Measured::new(body, call))))
                }
                Err(e) => {
                    call.record(14, 0); // UNAVAILABLE: the app was not reached
                    Err(e)
                }
            }
        })
    }
}
