//! Builds the tracer provider for a [`TraceSettings`]: the sampler (a parent's decision wins,
//! else the rate), and one bounded batch pipeline per exporter (OTLP over gRPC or HTTP, Zipkin,
//! stdout). Batches leave on tokio tasks; a request only puts its span in a queue.

use super::queue::{MAX_QUEUED_SPANS, TraceMetrics, counted};
use super::settings::{Otlp, Protocol, TraceSettings};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{BatchConfigBuilder, Sampler, SdkTracerProvider, SpanExporter};
use std::time::Duration;

/// How long spans may wait before a batch leaves, at most.
const EXPORT_DELAY: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("spec.tracing.otel: {0}")]
    Otlp(String),
    #[error("spec.tracing.zipkin: {0}")]
    Zipkin(String),
}

/// Dapr's sampling: "0" records nothing; otherwise a parent's sampled flag decides, and a new
/// trace is recorded with probability `rate`.
pub fn sampler(rate: f64) -> Sampler {
    if rate <= 0.0 {
        return Sampler::AlwaysOff;
    }
    let root = if rate >= 1.0 {
        Sampler::AlwaysOn
    } else {
        Sampler::TraceIdRatioBased(rate)
    };
    Sampler::ParentBased(Box::new(root))
}

/// A provider for these settings. Exporters are built here (must run inside the tokio runtime)
/// but connect lazily: an unreachable collector fails exports, never start-up.
pub fn provider(
    settings: &TraceSettings,
    app_id: &str,
    metrics: &TraceMetrics,
) -> Result<SdkTracerProvider, ExportError> {
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(sampler(settings.sampling_rate))
        .with_resource(
            Resource::builder()
                .with_service_name(app_id.to_owned())
                .build(),
        );
    if !settings.exports() {
        return Ok(builder.build());
    }
    if let Some(otlp) = &settings.otlp {
        builder = with_pipeline(builder, otlp_exporter(otlp)?, "otlp", metrics);
    }
    if let Some(endpoint) = &settings.zipkin {
        let client = http_client(super::settings::DEFAULT_EXPORT_TIMEOUT)
            .map_err(|e| ExportError::Zipkin(e.to_string()))?;
        let exporter = super::zipkin::ZipkinExporter::new(client, endpoint, app_id);
        builder = with_pipeline(builder, exporter, "zipkin", metrics);
    }
    if settings.stdout {
        let exporter = opentelemetry_stdout::SpanExporter::default();
        builder = with_pipeline(builder, exporter, "stdout", metrics);
    }
    Ok(builder.build())
}

fn with_pipeline<E: SpanExporter + 'static>(
    builder: opentelemetry_sdk::trace::TracerProviderBuilder,
    exporter: E,
    name: &'static str,
    metrics: &TraceMetrics,
) -> opentelemetry_sdk::trace::TracerProviderBuilder {
    let (exporter, gate) = counted(exporter, name, metrics);
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(MAX_QUEUED_SPANS)
        .with_max_export_batch_size(512)
        .with_scheduled_delay(EXPORT_DELAY)
        .build();
    let batch = BatchSpanProcessor::builder(exporter, Tokio)
        .with_batch_config(config)
        .build();
    builder.with_span_processor(gate.around(batch, MAX_QUEUED_SPANS))
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    crate::http_client::builder().timeout(timeout).build()
}

/// The PEM of the extra CAs an `https` collector is trusted with, if configured (read on each
/// build, so a changed Configuration also picks up a renewed file).
fn ca_pem(otlp: &Otlp) -> Result<Option<Vec<u8>>, ExportError> {
    let Some(path) = &otlp.ca_certificate else {
        return Ok(None);
    };
    if !otlp.endpoint.starts_with("https://") {
        return Ok(None);
    }
    std::fs::read(path).map(Some).map_err(|e| {
        ExportError::Otlp(format!(
            "OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE {path}: {e}"
        ))
    })
}

fn otlp_exporter(otlp: &Otlp) -> Result<opentelemetry_otlp::SpanExporter, ExportError> {
    let fail = |e: &dyn std::fmt::Display| ExportError::Otlp(e.to_string());
    match otlp.protocol {
        Protocol::Grpc => {
            let mut metadata = tonic::metadata::MetadataMap::new();
            for (k, v) in &otlp.headers {
                let key =
                    tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .map_err(|e| fail(&e))?;
                metadata.insert(key, v.parse().map_err(|e| fail(&e))?);
            }
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&otlp.endpoint)
                .with_timeout(otlp.timeout)
                .with_metadata(metadata);
            if otlp.endpoint.starts_with("https://") {
                let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
                if let Some(pem) = ca_pem(otlp)? {
                    tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
                }
                builder = builder.with_tls_config(tls);
            }
            builder.build().map_err(|e| fail(&e))
        }
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            let protocol = match otlp.protocol {
                Protocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
                _ => opentelemetry_otlp::Protocol::HttpBinary,
            };
            let mut client = crate::http_client::builder().timeout(otlp.timeout);
            if let Some(pem) = ca_pem(otlp)? {
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(&e))?;
                client = client.tls_certs_merge(certs);
            }
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client.build().map_err(|e| fail(&e))?)
                .with_endpoint(&otlp.endpoint)
                .with_protocol(protocol)
                .with_timeout(otlp.timeout)
                .with_headers(otlp.headers.iter().cloned().collect())
                .build()
                .map_err(|e| fail(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn otlp(endpoint: &str, ca_certificate: Option<&str>) -> Otlp {
        Otlp {
            endpoint: endpoint.to_owned(),
            protocol: Protocol::Grpc,
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            ca_certificate: ca_certificate.map(str::to_owned),
        }
    }

    #[test]
    fn the_ca_file_is_read_for_https_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "PEM").expect("write");
        let pem = pem.to_str().expect("utf-8");
        let missing = dir.path().join("missing.pem");
        let missing = missing.to_str().expect("utf-8");
        let read = |endpoint, ca| ca_pem(&otlp(endpoint, ca)).map_err(|e| e.to_string());
        assert_eq!(read("https://c:4317", None), Ok(None));
        assert_eq!(read("https://c:4317", Some(pem)), Ok(Some(b"PEM".to_vec())));
        assert_eq!(read("http://c:4317", Some(missing)), Ok(None), "plain text");
        let error = read("https://c:4317", Some(missing)).expect_err("unreadable");
        assert!(error.contains(missing), "{error}");
    }
}
