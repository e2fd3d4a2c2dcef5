//! `dapr_runtime_service_invocation_*`: invocations this sidecar sent to other apps (and their
//! answers), and those it received for its own app, with Dapr's labels. `status` is the app's
//! answer: an HTTP status for HTTP apps and proxied HTTP, the gRPC code for proxied gRPC.

use super::{counter_vec, histogram_vec, ms};
use prometheus::{HistogramVec, IntCounterVec, Registry};
use std::time::Duration;

/// `type`: a plain call, or a gRPC stream proxied as it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CallType {
    Unary,
    Streaming,
}

impl CallType {
    fn as_str(self) -> &'static str {
        match self {
            CallType::Unary => "unary",
            CallType::Streaming => "streaming",
        }
    }
}

#[derive(Clone)]
pub struct InvocationMetrics {
    req_sent: IntCounterVec,
    req_recv: IntCounterVec,
    res_sent: IntCounterVec,
    res_recv: IntCounterVec,
    res_recv_latency: HistogramVec,
}

impl InvocationMetrics {
    pub fn new(registry: &Registry, buckets: &[f64]) -> Result<Self, prometheus::Error> {
        let name = |n: &str| format!("dapr_runtime_service_invocation_{n}");
        Ok(InvocationMetrics {
            req_sent: counter_vec(
                registry,
                &name("req_sent_total"),
                "Invocations sent to other apps",
                &["dst_app_id", "type"],
            )?,
            req_recv: counter_vec(
                registry,
                &name("req_recv_total"),
                "Invocations received from other apps",
                &["src_app_id"],
            )?,
            res_sent: counter_vec(
                registry,
                &name("res_sent_total"),
                "Answers sent to invoking apps",
                &["dst_app_id", "status"],
            )?,
            res_recv: counter_vec(
                registry,
                &name("res_recv_total"),
                "Answers received from invoked apps",
                &["src_app_id", "status", "type"],
            )?,
            res_recv_latency: histogram_vec(
                registry,
                &name("res_recv_latency_ms"),
                "Time until an invoked app's answer arrived, in ms",
                &["src_app_id", "status"],
                buckets,
            )?,
        })
    }

    pub fn request_sent(&self, target: &str, kind: CallType) {
        self.req_sent
            .with_label_values(&[target, kind.as_str()])
            .inc();
    }

    /// The answer of `target` arrived after `took` (`status` empty when none came).
    pub fn response_received(&self, target: &str, status: &str, kind: CallType, took: Duration) {
        self.res_recv
            .with_label_values(&[target, status, kind.as_str()])
            .inc();
        self.res_recv_latency
            .with_label_values(&[target, status])
            .observe(ms(took));
    }

    pub fn request_received(&self, caller: &str) {
        self.req_recv.with_label_values(&[caller]).inc();
    }

    pub fn response_sent(&self, caller: &str, status: &str) {
        self.res_sent.with_label_values(&[caller, status]).inc();
    }
}
