//! Prometheus metrics of the injector, in a registry of their own (tests run several injectors in
//! one process). Labels are bounded: the admission result kind only. Beside them, in a registry
//! without prefix, Dapr's injector metrics under Dapr's names, which Dapr's "system services"
//! dashboard reads: `dapr_injector_sidecar_injection_requests_total` (every review),
//! `…_succeeded_total{app_id}` and `…_failed_total{app_id,reason}`, and the unprefixed
//! `process_*` series.

use crate::admission::{AdmissionResult, Injection, InjectionFailure};
use prometheus::core::Metric as _;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    admissions: IntCounterVec,
    duration: Histogram,
    webhook_config_writes: IntCounter,
    dapr: DaprInjectorMetrics,
}

/// `dapr_injector_sidecar_injection_*`.
struct DaprInjectorMetrics {
    registry: Registry,
    requests: IntCounter,
    succeeded: IntCounterVec,
    failed: IntCounterVec,
}

impl DaprInjectorMetrics {
    fn new() -> Result<DaprInjectorMetrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounter::new(
            "dapr_injector_sidecar_injection_requests_total",
            "Sidecar injection requests (admission reviews) received",
        )?;
        let succeeded = IntCounterVec::new(
            Opts::new(
                "dapr_injector_sidecar_injection_succeeded_total",
                "Sidecars injected, by app id",
            ),
            &["app_id"],
        )?;
        let failed = IntCounterVec::new(
            Opts::new(
                "dapr_injector_sidecar_injection_failed_total",
                "Sidecar injections that failed or were refused, by app id and reason",
            ),
            &["app_id", "reason"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(succeeded.clone()))?;
        registry.register(Box::new(failed.clone()))?;
        // The standard unprefixed `process_*` series (Dapr's dashboard reads its uptime from
        // `process_start_time_seconds`).
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(DaprInjectorMetrics {
            registry,
            requests,
            succeeded,
            failed,
        })
    }
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("tandem_injector".to_owned()), None)?;
        let admissions = IntCounterVec::new(
            Opts::new("admission_total", "Admission reviews answered, by result"),
            &["result"],
        )?;
        // Pre-create every series so dashboards see zeros, not gaps.
        for result in AdmissionResult::ALL {
            admissions.with_label_values(&[result.as_str()]);
        }
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "admission_duration_seconds",
                "Time to answer one /mutate request (server side)",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
            ]),
        )?;
        let webhook_config_writes = IntCounter::new(
            "webhook_config_writes_total",
            "Writes of the MutatingWebhookConfiguration's caBundle (0/min in steady state)",
        )?;
        registry.register(Box::new(admissions.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(webhook_config_writes.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            admissions,
            duration,
            webhook_config_writes,
            dapr: DaprInjectorMetrics::new()?,
        })
    }

    /// Counts one answered review, under Tandem's names and Dapr's.
    pub fn admission(&self, result: AdmissionResult, injection: &Injection, seconds: f64) {
        self.admissions.with_label_values(&[result.as_str()]).inc();
        self.duration.observe(seconds);
        self.dapr.requests.inc();
        match injection {
            Injection::NotAttempted => {}
            Injection::Succeeded { app_id } => {
                self.dapr.succeeded.with_label_values(&[app_id]).inc();
            }
            Injection::Failed { app_id, reason } => {
                self.dapr
                    .failed
                    .with_label_values(&[app_id.as_str(), reason.as_str()])
                    .inc();
            }
        }
    }

    /// Reviews received, as `dapr_injector_sidecar_injection_requests_total` has them.
    pub fn injection_requests(&self) -> u64 {
        self.dapr.requests.get()
    }

    /// Sidecars injected for `app_id`.
    pub fn injections_succeeded(&self, app_id: &str) -> u64 {
        self.dapr.succeeded.with_label_values(&[app_id]).get()
    }

    /// Failed injections for `app_id` with `reason`.
    pub fn injections_failed(&self, app_id: &str, reason: InjectionFailure) -> u64 {
        self.dapr
            .failed
            .with_label_values(&[app_id, reason.as_str()])
            .get()
    }

    pub fn admissions(&self, result: AdmissionResult) -> u64 {
        self.admissions.with_label_values(&[result.as_str()]).get()
    }

    pub fn webhook_config_written(&self) {
        self.webhook_config_writes.inc();
    }

    pub fn webhook_config_writes(&self) -> u64 {
        self.webhook_config_writes.get()
    }

    /// The admission latency histogram's p-quantile estimate (upper bucket bound), for the bench.
    pub fn duration_quantile(&self, q: f64) -> Option<f64> {
        let metric = self.duration.metric();
        let histogram = metric.get_histogram();
        let total = histogram.get_sample_count();
        let wanted = (total as f64 * q).ceil() as u64;
        histogram
            .get_bucket()
            .iter()
            .find(|b| b.cumulative_count() >= wanted && total > 0)
            .map(|b| b.upper_bound())
    }

    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        families.extend(self.dapr.registry.gather());
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&families, &mut buffer)?;
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }
}

#[cfg(test)]
mod tests;
