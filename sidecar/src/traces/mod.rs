//! Distributed tracing: spans with Dapr's names, exported in batches off the request path.
//!
//! Data flow: [`settings`] decides from `spec.tracing` and the `OTEL_EXPORTER_OTLP_*`
//! variables; [`export`] builds the tracer provider (sampler, bounded batch pipelines from
//! [`queue`]) which [`install`] makes current. The front ends wrap each request in a server span
//! ([`server`]) whose context rides the request's future; the building blocks start client,
//! producer and consumer spans under it ([`spans`]) and put their ids on the wire ([`context`]),
//! so the span id a peer sees is the id of a span that is exported. [`shutdown`] flushes.

pub mod context;
pub mod export;
pub mod queue;
pub mod server;
pub mod settings;
pub mod spans;
pub mod unexported;
pub mod zipkin;

use opentelemetry_sdk::trace::SdkTracerProvider;
use queue::TraceMetrics;
use settings::TraceSettings;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The scope name on every span.
pub const TRACER_NAME: &str = "tandem-sidecar";

struct Installed {
    app_id: String,
    metrics: TraceMetrics,
    provider: Mutex<Option<SdkTracerProvider>>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Starts tracing with `settings` (once per process; later calls go through [`apply`]). Must
/// run inside the tokio runtime.
pub fn install(
    settings: &TraceSettings,
    app_id: &str,
    registry: &prometheus::Registry,
) -> Result<(), String> {
    let metrics = TraceMetrics::register(registry).map_err(|e| format!("trace metrics: {e}"))?;
    let installed = INSTALLED.get_or_init(|| Installed {
        app_id: app_id.to_owned(),
        metrics,
        provider: Mutex::new(None),
    });
    replace(installed, settings)
}

/// Applies changed settings (a new Configuration from the operator): new spans use the new
/// sampler and exporters; the old pipelines flush in the background.
pub fn apply(settings: &TraceSettings) -> Result<(), String> {
    match INSTALLED.get() {
        Some(installed) => replace(installed, settings),
        None => Err("tracing is not installed".into()),
    }
}

/// [`apply`] for a Configuration's `spec.tracing` as the operator sent it; a bad one is logged
/// and the current tracing kept.
pub fn apply_spec(spec: Option<&tandem_crds::configuration::Tracing>) {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let applied = settings::trace_settings(spec, &env)
        .map_err(|e| e.to_string())
        .and_then(|s| apply(&s));
    if let Err(error) = applied {
        tracing::error!(%error, "spec.tracing not applied; keeping the current tracing");
    }
}

fn replace(installed: &Installed, settings: &TraceSettings) -> Result<(), String> {
    let provider = export::provider(settings, &installed.app_id, &installed.metrics)
        .map_err(|e| e.to_string())?;
    // Spans that cannot leave the process are only ids (see `unexported`); the order keeps a
    // span being made meanwhile on one of the two paths, each right.
    let unexported = (!settings.exports()).then(|| export::sampler(settings.sampling_rate));
    if unexported.is_some() {
        opentelemetry::global::set_tracer_provider(provider.clone());
        unexported::set(unexported);
    } else {
        unexported::set(None);
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    let old = installed
        .provider
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .replace(provider);
    if let Some(old) = old {
        tokio::task::spawn_blocking(move || old.shutdown());
    }
    tracing::info!(
        sampling_rate = settings.sampling_rate,
        otlp = settings.otlp.as_ref().map(|o| o.endpoint.as_str()),
        zipkin = settings.zipkin.as_deref(),
        stdout = settings.stdout,
        "tracing configured"
    );
    Ok(())
}

/// Exports what the queues hold, for at most `grace`.
pub async fn shutdown(grace: Duration) {
    let provider = INSTALLED
        .get()
        .and_then(|i| i.provider.lock().unwrap_or_else(|p| p.into_inner()).take());
    let Some(provider) = provider else {
        return;
    };
    // The SDK's shutdown blocks its thread until the exports finish.
    let flush = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(grace));
    match tokio::time::timeout(grace, flush).await {
        Ok(Ok(Ok(()))) => tracing::debug!("spans flushed"),
        Ok(Ok(Err(error))) => tracing::warn!(%error, "flushing spans failed"),
        Ok(Err(error)) => tracing::warn!(%error, "flushing spans failed"),
        Err(_) => tracing::warn!(?grace, "spans still unexported after the grace period"),
    }
}

/// Tests that change the process's tracing hold this.
#[cfg(test)]
pub static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::Context;
    use opentelemetry::trace::{SpanKind, TraceContextExt};

    fn rate(sampling_rate: f64) -> TraceSettings {
        TraceSettings {
            sampling_rate,
            stdout: false,
            zipkin: None,
            otlp: None,
        }
    }

    fn new_root_is_sampled() -> bool {
        let cx = spans::start(&Context::new(), SpanKind::Server, || {
            ("root".into(), Vec::new())
        });
        let sampled = cx.span().span_context().is_sampled();
        cx.span().end();
        sampled
    }

    /// What the operator's changed Configuration does in Kubernetes mode (`apply_spec`).
    #[tokio::test]
    async fn changed_settings_apply_to_the_next_span() {
        let _serial = TEST_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let registry = prometheus::Registry::new();
        install(&rate(1.0), "live", &registry).expect("installed");
        assert!(new_root_is_sampled());
        apply(&rate(0.0)).expect("applied");
        assert!(!new_root_is_sampled(), "rate 0 samples nothing");
        let spec = tandem_crds::configuration::Tracing {
            sampling_rate: Some("1".into()),
            ..Default::default()
        };
        apply_spec(Some(&spec));
        assert!(new_root_is_sampled());
        let bad = tandem_crds::configuration::Tracing {
            sampling_rate: Some("7".into()),
            ..Default::default()
        };
        apply_spec(Some(&bad));
        assert!(
            new_root_is_sampled(),
            "a bad spec keeps the current tracing"
        );
    }
}
