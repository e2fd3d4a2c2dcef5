//! Keeps the caBundle of every webhook in our MutatingWebhookConfiguration equal to our CA: a
//! watch on that one object (fieldSelector on its name) plus the CA's change notifications feed
//! the pure decision [`tandem_webhook_tls::ca_bundle::stale_webhooks`]; a JSON Patch is sent only
//! when something is stale, and writes are spaced by [`WriteBackoff`] so a GitOps tool that keeps
//! blanking the caBundle cannot turn this into a hot loop.

use crate::admin::Readiness;
use crate::metrics::Metrics;
use futures_util::StreamExt;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::sync::Arc;
use std::time::Duration;
use tandem_webhook_tls::ServingCert;
use tandem_webhook_tls::ca_bundle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Spacing of caBundle writes: the first write may happen at once; each further write within
/// [`WriteBackoff::QUIET`] of the previous doubles the gap (1 s … 5 min); a quiet period resets it.
#[derive(Debug, Clone)]
pub struct WriteBackoff {
    last_write: Option<Instant>,
    gap: Duration,
}

impl WriteBackoff {
    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(300);
    const QUIET: Duration = Duration::from_secs(600);

    pub fn new() -> WriteBackoff {
        WriteBackoff {
            last_write: None,
            gap: Self::MIN,
        }
    }

    /// The earliest moment the next write may happen.
    pub fn next_allowed(&self) -> Option<Instant> {
        self.last_write.map(|last| last + self.gap)
    }

    /// Records a write (or a failed attempt) at `now`.
    pub fn wrote(&mut self, now: Instant) {
        if let Some(last) = self.last_write {
            if now.duration_since(last) < Self::QUIET {
                self.gap = (self.gap * 2).min(Self::MAX);
            } else {
                self.gap = Self::MIN;
            }
        }
        self.last_write = Some(now);
    }
}

impl Default for WriteBackoff {
    fn default() -> Self {
        WriteBackoff::new()
    }
}

/// Runs until `shutdown`. Marks `readiness` once the configuration was seen current (or absent)
/// after the first list.
pub async fn sync_ca_bundle(
    client: kube::Client,
    name: String,
    cert: Arc<ServingCert>,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher::watcher(api.clone(), config)
        .default_backoff()
        .boxed();
    let mut ca_changes = cert.subscribe();
    let mut current: Option<MutatingWebhookConfiguration> = None;
    let mut listed = false;
    let mut backoff = WriteBackoff::new();
    loop {
        let retry_at = backoff.next_allowed().unwrap_or_else(Instant::now);
        let stale = listed && needs_write(current.as_ref(), &cert.current().ca_pem);
        tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.next() => match event {
                Some(Ok(Event::Apply(object) | Event::InitApply(object))) => current = Some(object),
                Some(Ok(Event::Delete(_))) => current = None,
                Some(Ok(Event::Init)) => {}
                Some(Ok(Event::InitDone)) => listed = true,
                Some(Err(error)) => tracing::warn!(%error, "watching the MutatingWebhookConfiguration"),
                None => return,
            },
            changed = ca_changes.changed() => if changed.is_err() { return },
            () = tokio::time::sleep_until(retry_at), if stale => {
                let object = current.as_ref().and_then(|c| serde_json::to_value(c).ok());
                if let Some(object) = object {
                    let ca_pem = cert.current().ca_pem.clone();
                    let indices = ca_bundle::stale_webhooks(&object, &ca_pem);
                    let patch = ca_bundle::webhooks_patch(&object, &indices, &ca_pem);
                    backoff.wrote(Instant::now());
                    match serde_json::from_value::<json_patch::Patch>(patch) {
                        Ok(patch) => match api.patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch)).await {
                            Ok(updated) => {
                                metrics.webhook_config_written();
                                tracing::info!(%name, webhooks = indices.len(), "wrote the caBundle");
                                current = Some(updated);
                            }
                            Err(error) => tracing::warn!(%name, %error, "cannot write the caBundle; retrying"),
                        },
                        Err(error) => tracing::error!(%error, "built an invalid caBundle patch"),
                    }
                }
            }
        }
        if listed && !readiness.is_ready() {
            let ca_pem = cert.current().ca_pem.clone();
            if !needs_write(current.as_ref(), &ca_pem) {
                if current.is_none() {
                    tracing::warn!(%name, "MutatingWebhookConfiguration not found; nothing to keep current until it appears");
                }
                readiness.set_ready();
            }
        }
    }
}

fn needs_write(current: Option<&MutatingWebhookConfiguration>, ca_pem: &str) -> bool {
    current
        .and_then(|c| serde_json::to_value(c).ok())
        .is_some_and(|object| !ca_bundle::stale_webhooks(&object, ca_pem).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_spaced_and_the_gap_resets_after_quiet() {
        let start = Instant::now();
        let mut backoff = WriteBackoff::new();
        assert_eq!(backoff.next_allowed(), None, "the first write is immediate");
        backoff.wrote(start);
        assert_eq!(backoff.next_allowed(), Some(start + Duration::from_secs(1)));
        let mut at = start;
        let mut gaps = Vec::new();
        for _ in 0..12 {
            at = backoff.next_allowed().unwrap_or(at);
            backoff.wrote(at);
            gaps.push(backoff.next_allowed().map(|n| n - at));
        }
        assert_eq!(gaps[0], Some(Duration::from_secs(2)));
        assert_eq!(gaps[11], Some(Duration::from_secs(300)), "capped");
        let later = at + Duration::from_secs(3600);
        backoff.wrote(later);
        assert_eq!(backoff.next_allowed(), Some(later + Duration::from_secs(1)));
    }
}
