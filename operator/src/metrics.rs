//! Prometheus metrics of the reconcilers, in a registry of their own (so tests can run several
//! operators in one process). Labels are bounded: the reconciled kind and the error kind. Beside
//! them, under Dapr's names ([`dapr`]), the `<app-id>-dapr` Services and the CA's signatures.

mod dapr;

pub use dapr::{ServiceChange, SignFailure};

use prometheus::{
    Encoder, HistogramOpts, HistogramTimer, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Reconcile counts, errors and durations.
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    leader: IntGauge,
    sidecar_requests: IntCounterVec,
    sidecar_streams: IntGauge,
    certificates: prometheus::IntCounter,
    dapr: dapr::DaprMetrics,
}

impl Metrics {
    /// Registers the metrics, plus the process collector on Linux.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("tandem_operator".to_owned()), None)?;
        let reconciles = IntCounterVec::new(
            Opts::new("reconciles_total", "Reconciles started, by reconciled kind"),
            &["kind"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "reconcile_errors_total",
                "Failed reconciles, by reconciled kind and error kind",
            ),
            &["kind", "error"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "reconcile_duration_seconds",
                "How long reconciles take, by reconciled kind",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["kind"],
        )?;
        let leader = IntGauge::new(
            "leader",
            "1 while this replica holds the leader Lease and runs the controllers, else 0",
        )?;
        let sidecar_requests = IntCounterVec::new(
            Opts::new(
                "sidecar_api_requests_total",
                "Sidecar API requests, by result (ok, unauthenticated, forbidden, bad_request, unavailable)",
            ),
            &["result"],
        )?;
        let sidecar_streams =
            IntGauge::new("sidecar_api_streams", "Sidecar update streams open now")?;
        let certificates = prometheus::IntCounter::new(
            "ca_workload_certificates_signed_total",
            "Workload certificates the control-plane CA signed for sidecars",
        )?;
        registry.register(Box::new(certificates.clone()))?;
        registry.register(Box::new(sidecar_requests.clone()))?;
        registry.register(Box::new(sidecar_streams.clone()))?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            reconciles,
            errors,
            duration,
            leader,
            sidecar_requests,
            sidecar_streams,
            certificates,
            dapr: dapr::DaprMetrics::new()?,
        })
    }

    /// Counts a reconcile of `kind`; the timer records its duration when observed.
    pub fn reconcile_started(&self, kind: &str) -> HistogramTimer {
        self.reconciles.with_label_values(&[kind]).inc();
        self.duration.with_label_values(&[kind]).start_timer()
    }

    /// Counts a failed reconcile of `kind` with the error's kind.
    pub fn reconcile_failed(&self, kind: &str, error: &str) {
        self.errors.with_label_values(&[kind, error]).inc();
    }

    /// How many reconciles of `kind` have started.
    pub fn reconciles(&self, kind: &str) -> u64 {
        self.reconciles.with_label_values(&[kind]).get()
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Counts a sidecar API request by its (bounded) result.
    pub fn sidecar_api_request(&self, result: &str) {
        self.sidecar_requests.with_label_values(&[result]).inc();
    }

    /// Counts a workload certificate signed.
    pub fn certificate_signed(&self) {
        self.certificates.inc();
        self.dapr.cert_sign_succeeded();
    }

    /// Counts a certificate signing request received (Dapr's Sentry metric; needs a CA loaded).
    pub fn certificate_requested(&self) {
        self.dapr.cert_sign_received();
    }

    /// Counts a certificate signing request refused, by reason.
    pub fn certificate_refused(&self, reason: SignFailure) {
        self.dapr.cert_sign_failed(reason);
    }

    /// Serves the `dapr_sentry_*` series from now on, with the issuer certificate's expiry.
    pub fn ca_loaded(&self, issuer_not_after_unix: i64) -> Result<(), prometheus::Error> {
        self.dapr.ca_loaded(issuer_not_after_unix)
    }

    /// Counts a change of the CA read from its Secret, with the new issuer's expiry.
    pub fn issuer_certificate_changed(&self, issuer_not_after_unix: i64) {
        self.dapr.issuer_changed(issuer_not_after_unix);
    }

    /// Certificate requests `(received, signed, refused for reason)`; `None` without a CA.
    pub fn certificate_requests(&self, reason: SignFailure) -> Option<(u64, u64, u64)> {
        self.dapr.cert_signs(reason)
    }

    /// The issuer's expiry (unix seconds) and its changes counted; `None` without a CA.
    pub fn issuer_certificate(&self) -> Option<(i64, u64)> {
        self.dapr.issuer()
    }

    /// Counts a change the operator made to `app_id`'s `<app-id>-dapr` Service.
    pub fn service_changed(&self, change: ServiceChange, app_id: &str) {
        self.dapr.service_changed(change, app_id);
    }

    /// How many times `app_id`'s Service saw `change`.
    pub fn services_changed(&self, change: ServiceChange, app_id: &str) -> u64 {
        self.dapr.services_changed(change, app_id)
    }

    /// How many workload certificates were signed.
    pub fn certificates_signed(&self) -> u64 {
        self.certificates.get()
    }

    /// How many sidecar API requests ended with `result`.
    pub fn sidecar_api_requests(&self, result: &str) -> u64 {
        self.sidecar_requests.with_label_values(&[result]).get()
    }

    /// Opens (`1`) or closes (`-1`) a sidecar update stream.
    pub fn sidecar_streams_add(&self, delta: i64) {
        self.sidecar_streams.add(delta);
    }

    /// How many sidecar update streams are open.
    pub fn sidecar_streams(&self) -> i64 {
        self.sidecar_streams.get()
    }

    /// Whether this replica leads, as last recorded.
    pub fn is_leader(&self) -> bool {
        self.leader.get() == 1
    }

    /// The text exposition format, for `/metrics`.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        families.extend(self.dapr.registry.gather());
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&families, &mut buffer)?;
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders_by_kind() {
        let metrics = Metrics::new().expect("metrics");
        metrics.reconcile_started("component").observe_duration();
        metrics.reconcile_started("component").observe_duration();
        metrics.reconcile_failed("component", "api_status");
        assert!(!metrics.is_leader());
        metrics.set_leader(true);
        assert!(metrics.is_leader());
        assert_eq!(metrics.reconciles("component"), 2);
        assert_eq!(metrics.reconciles("deployment"), 0);
        let text = metrics.render().expect("render");
        for line in [
            "tandem_operator_reconciles_total{kind=\"component\"} 2",
            "tandem_operator_reconcile_errors_total{error=\"api_status\",kind=\"component\"} 1",
            "tandem_operator_reconcile_duration_seconds_count{kind=\"component\"} 2",
            "tandem_operator_leader 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
