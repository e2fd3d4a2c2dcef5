//! What `spec.tracing` and the `OTEL_EXPORTER_OTLP_*` environment variables ask for, decided by
//! pure functions: the sampling rate and which exporters to build, each fully validated.

use std::time::Duration;
use tandem_crds::configuration::{OtelSpec, Tracing};

/// Dapr's documented default when `samplingRate` is unset.
pub const DEFAULT_SAMPLING_RATE: f64 = 0.0001;
/// An export that takes longer than this is abandoned (the OTLP default).
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The tracing a sidecar runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSettings {
    /// The share of new traces recorded, 0 to 1 (a parent's sampled flag wins).
    pub sampling_rate: f64,
    /// Also print finished spans to stdout.
    pub stdout: bool,
    /// Zipkin v2 JSON endpoint, e.g. `http://zipkin:9411/api/v2/spans`.
    pub zipkin: Option<String>,
    /// The OTLP exporter.
    pub otlp: Option<Otlp>,
}

impl TraceSettings {
    /// Whether any span can leave the process.
    pub fn exports(&self) -> bool {
        self.sampling_rate > 0.0 && (self.stdout || self.zipkin.is_some() || self.otlp.is_some())
    }
}

/// OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

/// The OTLP exporter's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Otlp {
    /// A URL with scheme: `http(s)://host:port` for gRPC, `http(s)://host:port/v1/traces` for HTTP.
    pub endpoint: String,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// A PEM file of CAs trusted for an `https` endpoint besides the system's
    /// (`OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE`, as daprd's exporter reads it).
    pub ca_certificate: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("spec.tracing.samplingRate {0:?} must be a number between 0 and 1")]
    SamplingRate(String),
    #[error("spec.tracing.otel.protocol {0:?} must be grpc or http")]
    Protocol(String),
    #[error("{key} {value:?}: each header must be key=value")]
    Header { key: &'static str, value: String },
    #[error("{key} {value:?}: not a duration")]
    Timeout { key: &'static str, value: String },
}

/// Reads the environment; tests pass a closure instead.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The first non-empty of the trace-specific variable and the general one (Dapr's order).
fn either(env: EnvLookup<'_>, traces: &str, general: &str) -> Option<String> {
    env(traces)
        .filter(|v| !v.is_empty())
        .or_else(|| env(general).filter(|v| !v.is_empty()))
}

/// Decides the tracing from the Configuration's `spec.tracing` and the environment. Like daprd,
/// `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` turns OTLP on when the Configuration names no OTLP
/// endpoint, and then an unset sampling rate means "1".
pub fn trace_settings(
    spec: Option<&Tracing>,
    env: EnvLookup<'_>,
) -> Result<TraceSettings, SettingsError> {
    let spec = spec.cloned().unwrap_or_default();
    let mut otel = spec.otel.clone().unwrap_or_default();
    let mut rate = spec.sampling_rate.clone().filter(|r| !r.trim().is_empty());
    let mut headers_key = "spec.tracing.otel.headers";
    let mut timeout_key = "spec.tracing.otel.timeout";
    if otel.endpoint_address.is_empty()
        && let Some(endpoint) = either(
            env,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        )
    {
        rate.get_or_insert_with(|| "1".to_owned());
        let protocol = either(
            env,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        );
        let insecure = env("OTEL_EXPORTER_OTLP_INSECURE").is_some_and(|v| v == "true")
            || endpoint.starts_with("http://");
        otel = OtelSpec {
            endpoint_address: endpoint,
            protocol: Some(protocol.unwrap_or_else(|| "grpc".to_owned())),
            is_secure: Some(!insecure),
            headers: Vec::new(),
            timeout: None,
        };
    }
    if let Some(h) = either(
        env,
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ) && otel.headers.is_empty()
    {
        otel.headers = h.split(',').map(|s| s.trim().to_owned()).collect();
        headers_key = "OTEL_EXPORTER_OTLP_HEADERS";
    }
    if otel.timeout.is_none()
        && let Some(ms) = either(
            env,
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        )
    {
        // The OTLP variables give milliseconds.
        otel.timeout = Some(format!("{ms}ms"));
        timeout_key = "OTEL_EXPORTER_OTLP_TIMEOUT";
    }
    let sampling_rate = match rate {
        None => DEFAULT_SAMPLING_RATE,
        Some(r) => parse_rate(&r)?,
    };
    let zipkin = spec
        .zipkin
        .map(|z| z.endpoint_address)
        .filter(|a| !a.is_empty());
    let ca_certificate = either(
        env,
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    );
    let otlp = match otel.endpoint_address.is_empty() {
        true => None,
        false => Some(Otlp {
            ca_certificate,
            ..otlp(&otel, headers_key, timeout_key)?
        }),
    };
    Ok(TraceSettings {
        sampling_rate,
        stdout: spec.stdout.unwrap_or(false),
        zipkin,
        otlp,
    })
}

fn parse_rate(rate: &str) -> Result<f64, SettingsError> {
    match rate.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(SettingsError::SamplingRate(rate.to_owned())),
    }
}

fn otlp(
    otel: &OtelSpec,
    headers_key: &'static str,
    timeout_key: &'static str,
) -> Result<Otlp, SettingsError> {
    let raw_protocol = otel.protocol.as_deref().unwrap_or("grpc");
    let protocol = match raw_protocol.to_ascii_lowercase().as_str() {
        "grpc" | "" => Protocol::Grpc,
        "http" | "http/protobuf" => Protocol::HttpProtobuf,
        "http/json" => Protocol::HttpJson,
        _ => return Err(SettingsError::Protocol(raw_protocol.to_owned())),
    };
    let secure = otel.is_secure.unwrap_or(true);
    let address = otel.endpoint_address.trim();
    let bare = address
        .strip_prefix("http://")
        .or_else(|| address.strip_prefix("https://"))
        .unwrap_or(address)
        .trim_end_matches('/');
    let scheme = if secure { "https" } else { "http" };
    let endpoint = match protocol {
        Protocol::Grpc => format!("{scheme}://{bare}"),
        // Dapr's HTTP exporter takes host:port and posts to /v1/traces; a full path is kept.
        Protocol::HttpProtobuf | Protocol::HttpJson if bare.contains('/') => {
            format!("{scheme}://{bare}")
        }
        Protocol::HttpProtobuf | Protocol::HttpJson => format!("{scheme}://{bare}/v1/traces"),
    };
    let headers = otel
        .headers
        .iter()
        .filter(|h| !h.trim().is_empty())
        .map(|h| match h.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(SettingsError::Header {
                key: headers_key,
                value: h.clone(),
            }),
        })
        .collect::<Result<_, _>>()?;
    let timeout = match otel.timeout.as_deref() {
        None => DEFAULT_EXPORT_TIMEOUT,
        Some(t) => humantime::parse_duration(t.trim()).map_err(|_| SettingsError::Timeout {
            key: timeout_key,
            value: t.to_owned(),
        })?,
    };
    Ok(Otlp {
        endpoint,
        protocol,
        headers,
        timeout,
        ca_certificate: None,
    })
}

#[cfg(test)]
mod tests;
