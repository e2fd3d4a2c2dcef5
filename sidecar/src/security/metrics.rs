//! `dapr_runtime_mtls_*` and `dapr_runtime_acl_{app,global}_policy_action_{allowed,blocked}_total`:
//! Dapr's names for certificate issuance and rotation and for access-control outcomes, plus
//! Tandem's count of refused peers by reason (bounded: the reasons are a fixed list).

use super::refusal::Reason;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone)]
pub struct SecurityMetrics {
    init: IntCounter,
    init_fail: IntCounter,
    rotated: IntCounter,
    rotated_fail: IntCounter,
    refused: IntCounterVec,
    /// app allowed, app blocked, global allowed, global blocked.
    acl: Vec<IntCounterVec>,
    /// One warning per refusal reason, not one per connection of a flood.
    logged: Arc<[AtomicBool; Reason::ALL.len()]>,
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    let c = IntCounter::new(name, help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl SecurityMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let refused = IntCounterVec::new(
            Opts::new(
                "dapr_runtime_mtls_peer_refused_total",
                "Connections refused on the mTLS layer, by side and reason",
            ),
            &["side", "reason"],
        )?;
        registry.register(Box::new(refused.clone()))?;
        // Dapr's four names and its label `trustDomain` (camelCase in daprd's source);
        // `src_app_id` for the caller because every series already carries this app's own
        // `app_id` (daprd puts the caller's id there).
        let acl = [
            ("app", true),
            ("app", false),
            ("global", true),
            ("global", false),
        ]
        .map(|(policy, allowed)| {
            let action = if allowed { "allowed" } else { "blocked" };
            let name = format!("dapr_runtime_acl_{policy}_policy_action_{action}_total");
            let help = format!("Invocations {action} by the {policy} access-control policy");
            IntCounterVec::new(
                Opts::new(name, help),
                &["src_app_id", "trustDomain", "namespace"],
            )
        });
        let acl = acl.into_iter().collect::<Result<Vec<_>, _>>()?;
        for counter in &acl {
            registry.register(Box::new(counter.clone()))?;
        }
        Ok(SecurityMetrics {
            init: counter(
                registry,
                "dapr_runtime_mtls_init_total",
                "mTLS initialisations",
            )?,
            init_fail: counter(
                registry,
                "dapr_runtime_mtls_init_fail_total",
                "mTLS initialisations that failed",
            )?,
            rotated: counter(
                registry,
                "dapr_runtime_mtls_workload_cert_rotated_total",
                "Workload certificates renewed",
            )?,
            rotated_fail: counter(
                registry,
                "dapr_runtime_mtls_workload_cert_rotated_fail_total",
                "Workload certificate renewals that failed",
            )?,
            refused,
            acl,
            logged: Arc::new(std::array::from_fn(|_| AtomicBool::new(false))),
        })
    }

    pub fn mtls_init(&self, ok: bool) {
        self.init.inc();
        if !ok {
            self.init_fail.inc();
        }
    }

    pub fn cert_rotated(&self, ok: bool) {
        match ok {
            true => self.rotated.inc(),
            false => self.rotated_fail.inc(),
        }
    }

    /// Counts a refused peer, and warns the first time this reason is seen.
    pub fn peer_refused(&self, side: &'static str, reason: Reason, detail: &dyn std::fmt::Display) {
        self.refused
            .with_label_values(&[side, reason.as_str()])
            .inc();
        let first = !self.logged[reason as usize].swap(true, Ordering::Relaxed);
        if first {
            tracing::warn!(side, reason = reason.as_str(), %detail, "mTLS peer refused (further refusals for this reason are only counted)");
        } else {
            tracing::debug!(side, reason = reason.as_str(), %detail, "mTLS peer refused");
        }
    }

    /// One access-control outcome; `policy` is `app` or `global`, as in Dapr's metric names.
    pub fn acl(&self, policy: &str, allowed: bool, caller: &super::spiffe::SpiffeId) {
        let index = match (policy, allowed) {
            ("app", true) => 0,
            ("app", false) => 1,
            (_, true) => 2,
            (_, false) => 3,
        };
        if let Some(counter) = self.acl.get(index) {
            counter
                .with_label_values(&[&caller.app_id, &caller.trust_domain, &caller.namespace])
                .inc();
        }
    }
}
