//! Dapr's names for what the operator does in Dapr's place, so Dapr's "system services" dashboard
//! finds them: the `<app-id>-dapr` Services it manages (Dapr's operator,
//! `dapr_operator_service_{created,updated,deleted}_total{app_id}`) and the workload
//! certificates its CA signs (Dapr's Sentry, `dapr_sentry_*`). They live in a registry with no
//! prefix beside the `tandem_operator_*` one, with the unprefixed `process_*` series. The Sentry
//! series exist only once a CA is loaded ([`DaprMetrics::ca_loaded`]): an operator without a CA
//! is no Sentry and reports none.
//!
//! `dapr_sentry_servercert_issue_failed_total` is not served: Dapr's Sentry issues its own gRPC
//! server certificate from its CA, while Tandem's CA is reached over the operator's sidecar API
//! and issues no server certificate, so no such failure can happen.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::atomic::{AtomicBool, Ordering};

/// What happened to an `<app-id>-dapr` Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceChange {
    Created,
    Updated,
    Deleted,
}

/// Why the CA did not sign a CSR: the `reason` of `dapr_sentry_cert_sign_failure_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignFailure {
    /// No bearer token, or one the API server does not accept, or not a ServiceAccount's.
    InvalidToken,
    /// A token the API server accepts, but not for the CA's audience. (The TokenReview asks for
    /// the CA's audience, so an API server that checks audiences reports such a token as
    /// invalid: this counts the ones that slip through an API server that does not.)
    WrongAudience,
    /// The token is of another namespace than the one asked for.
    NamespaceMismatch,
    /// The token is bound to another pod, or is another ServiceAccount's than the pod's.
    PodMismatch,
    /// The pod does not exist, was replaced, is finished or is being deleted.
    NoSuchPod,
    /// The pod does not have `dapr.io/enabled`.
    NotDaprEnabled,
    /// The body is not `{"certificateSigningRequest": "<PEM>"}`.
    MalformedRequest,
    /// The CSR is not a valid, self-signed PEM CSR.
    MalformedCsr,
    /// The pod's Configuration has an invalid `spec.mtls.workloadCertTTL`.
    InvalidTtl,
    /// Signing itself failed.
    SignError,
    /// The CA cannot answer now: no CA or audience configured, the TokenReview or the pod read
    /// failed, the cache is not ready.
    Unavailable,
}

impl SignFailure {
    pub const ALL: [SignFailure; 11] = [
        SignFailure::InvalidToken,
        SignFailure::WrongAudience,
        SignFailure::NamespaceMismatch,
        SignFailure::PodMismatch,
        SignFailure::NoSuchPod,
        SignFailure::NotDaprEnabled,
        SignFailure::MalformedRequest,
        SignFailure::MalformedCsr,
        SignFailure::InvalidTtl,
        SignFailure::SignError,
        SignFailure::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SignFailure::InvalidToken => "invalid_token",
            SignFailure::WrongAudience => "wrong_audience",
            SignFailure::NamespaceMismatch => "namespace_mismatch",
            SignFailure::PodMismatch => "pod_mismatch",
            SignFailure::NoSuchPod => "no_such_pod",
            SignFailure::NotDaprEnabled => "not_dapr_enabled",
            SignFailure::MalformedRequest => "malformed_request",
            SignFailure::MalformedCsr => "malformed_csr",
            SignFailure::InvalidTtl => "invalid_ttl",
            SignFailure::SignError => "sign_error",
            SignFailure::Unavailable => "unavailable",
        }
    }
}

/// Dapr's `dapr_sentry_*` series.
struct Sentry {
    received: IntCounter,
    succeeded: IntCounter,
    failed: IntCounterVec,
    issuer_changed: IntCounter,
    issuer_expiry: IntGauge,
}

impl Sentry {
    fn new() -> Result<Sentry, prometheus::Error> {
        let received = IntCounter::new(
            "dapr_sentry_cert_sign_request_received_total",
            "Certificate signing requests the control-plane CA received",
        )?;
        let succeeded = IntCounter::new(
            "dapr_sentry_cert_sign_success_total",
            "Workload certificates the control-plane CA signed",
        )?;
        let failed = IntCounterVec::new(
            Opts::new(
                "dapr_sentry_cert_sign_failure_total",
                "Certificate signing requests the control-plane CA refused, by reason",
            ),
            &["reason"],
        )?;
        // Every reason at zero: `sum by (reason)` shows them before the first refusal.
        for reason in SignFailure::ALL {
            failed.with_label_values(&[reason.as_str()]);
        }
        let issuer_changed = IntCounter::new(
            "dapr_sentry_issuercert_changed_total",
            "Changes of the CA (issuer certificate or key, trust anchors) read from its Secret",
        )?;
        let issuer_expiry = IntGauge::new(
            "dapr_sentry_issuercert_expiry_timestamp",
            "When the issuer certificate expires, in unix seconds",
        )?;
        Ok(Sentry {
            received,
            succeeded,
            failed,
            issuer_changed,
            issuer_expiry,
        })
    }

    fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.received.clone()))?;
        registry.register(Box::new(self.succeeded.clone()))?;
        registry.register(Box::new(self.failed.clone()))?;
        registry.register(Box::new(self.issuer_changed.clone()))?;
        registry.register(Box::new(self.issuer_expiry.clone()))
    }
}

/// The operator's and the CA's Dapr-named metrics.
pub(super) struct DaprMetrics {
    pub(super) registry: Registry,
    services: [IntCounterVec; 3],
    sentry: Sentry,
    /// Set once a CA is loaded: until then the Sentry series are neither served nor counted.
    has_ca: AtomicBool,
}

impl DaprMetrics {
    pub(super) fn new() -> Result<DaprMetrics, prometheus::Error> {
        let registry = Registry::new();
        let service = |change: &str| {
            let counter = IntCounterVec::new(
                Opts::new(
                    format!("dapr_operator_service_{change}_total"),
                    format!("<app-id>-dapr Services the operator {change}, by app id"),
                ),
                &["app_id"],
            )?;
            registry.register(Box::new(counter.clone()))?;
            Ok::<_, prometheus::Error>(counter)
        };
        let services = [
            service("created")?,
            service("updated")?,
            service("deleted")?,
        ];
        // The standard unprefixed `process_*` series (Dapr's dashboard reads its uptime from
        // `process_start_time_seconds`).
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(DaprMetrics {
            registry,
            services,
            sentry: Sentry::new()?,
            has_ca: AtomicBool::new(false),
        })
    }

    fn service_counter(&self, change: ServiceChange) -> &IntCounterVec {
        let [created, updated, deleted] = &self.services;
        match change {
            ServiceChange::Created => created,
            ServiceChange::Updated => updated,
            ServiceChange::Deleted => deleted,
        }
    }

    pub(super) fn service_changed(&self, change: ServiceChange, app_id: &str) {
        self.service_counter(change)
            .with_label_values(&[app_id])
            .inc();
    }

    pub(super) fn services_changed(&self, change: ServiceChange, app_id: &str) -> u64 {
        self.service_counter(change)
            .with_label_values(&[app_id])
            .get()
    }

    /// Registers the Sentry series (the first time) and records the issuer's expiry.
    pub(super) fn ca_loaded(&self, issuer_not_after_unix: i64) -> Result<(), prometheus::Error> {
        if !self.has_ca.swap(true, Ordering::SeqCst) {
            self.sentry.register(&self.registry)?;
        }
        self.sentry.issuer_expiry.set(issuer_not_after_unix);
        Ok(())
    }

    /// Counts an issuer change and records the new issuer's expiry.
    pub(super) fn issuer_changed(&self, issuer_not_after_unix: i64) {
        if let Some(sentry) = self.sentry() {
            sentry.issuer_changed.inc();
            sentry.issuer_expiry.set(issuer_not_after_unix);
        }
    }

    /// The Sentry series, once a CA is loaded.
    fn sentry(&self) -> Option<&Sentry> {
        self.has_ca.load(Ordering::SeqCst).then_some(&self.sentry)
    }

    pub(super) fn cert_sign_received(&self) {
        if let Some(sentry) = self.sentry() {
            sentry.received.inc();
        }
    }

    pub(super) fn cert_sign_succeeded(&self) {
        if let Some(sentry) = self.sentry() {
            sentry.succeeded.inc();
        }
    }

    pub(super) fn cert_sign_failed(&self, reason: SignFailure) {
        if let Some(sentry) = self.sentry() {
            sentry.failed.with_label_values(&[reason.as_str()]).inc();
        }
    }

    /// `(received, succeeded, failed for reason)`, or `None` without a CA.
    pub(super) fn cert_signs(&self, reason: SignFailure) -> Option<(u64, u64, u64)> {
        self.sentry().map(|sentry| {
            (
                sentry.received.get(),
                sentry.succeeded.get(),
                sentry.failed.with_label_values(&[reason.as_str()]).get(),
            )
        })
    }

    /// The issuer's expiry as recorded, and the changes counted, or `None` without a CA.
    pub(super) fn issuer(&self) -> Option<(i64, u64)> {
        self.sentry()
            .map(|sentry| (sentry.issuer_expiry.get(), sentry.issuer_changed.get()))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod dashboard;
