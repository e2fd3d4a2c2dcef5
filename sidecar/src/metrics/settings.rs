//! What the Configuration's `spec.metric` (or `spec.metrics`) asks for, decided by a pure
//! function and fully validated before any port is bound. The fields are Dapr's
//! (`pkg/config/configuration.go` `MetricSpec`): `enabled`, `http.increasedCardinality`,
//! `http.pathMatching`, `http.excludeVerbs`, `latencyDistributionBuckets`; `recordErrorCodes` and
//! `rules` are read and not acted on yet.
//!
//! One deliberate difference: an unset `increasedCardinality` means **false** here (low
//! cardinality; Dapr announced the change of default for 1.15 but still defaults to true).

use serde::Deserialize;

/// Dapr's default latency buckets, in milliseconds.
pub const DEFAULT_LATENCY_BUCKETS_MS: &[f64] = &[
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0, 40.0, 50.0, 65.0, 80.0,
    100.0, 130.0, 160.0, 200.0, 250.0, 300.0, 400.0, 500.0, 650.0, 800.0, 1_000.0, 2_000.0,
    5_000.0, 10_000.0, 20_000.0, 50_000.0, 100_000.0,
];

/// Dapr's size buckets for byte histograms: 1 KiB … 4 GiB.
pub const SIZE_BUCKETS_BYTES: &[f64] = &[
    1024.0,
    2048.0,
    4096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
    4_294_967_296.0,
];

/// The metrics a sidecar keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSettings {
    /// `false`: no metric is kept and the metrics port is not opened.
    pub enabled: bool,
    /// Raw (Dapr-normalised) paths in the HTTP `path` label; otherwise only `pathMatching`
    /// patterns appear there.
    pub increased_cardinality: bool,
    /// Go `ServeMux`-style patterns (`/orders/{id}`, `/items/`) that group paths.
    pub path_matching: Vec<String>,
    /// The HTTP `method` label is left empty.
    pub exclude_verbs: bool,
    /// Bucket bounds of every latency histogram, in milliseconds.
    pub latency_buckets_ms: Vec<f64>,
}

impl Default for MetricSettings {
    fn default() -> Self {
        MetricSettings {
            enabled: true,
            increased_cardinality: false,
            path_matching: Vec::new(),
            exclude_verbs: false,
            latency_buckets_ms: DEFAULT_LATENCY_BUCKETS_MS.to_vec(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("spec.metric: {0}")]
    Shape(String),
    #[error("spec.metric.latencyDistributionBuckets {0:?}: bounds must be positive and increasing")]
    Buckets(Vec<i64>),
    #[error("spec.metric.http.pathMatching {0:?}: a pattern must start with '/'")]
    Pattern(String),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MetricSpec {
    enabled: Option<bool>,
    #[serde(rename = "recordErrorCodes")]
    _record_error_codes: Option<bool>,
    http: Option<MetricHttp>,
    latency_distribution_buckets: Option<Vec<i64>>,
    #[serde(rename = "rules")]
    _rules: Option<serde_json::Value>,
    #[serde(rename = "workflow")]
    _workflow: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MetricHttp {
    increased_cardinality: Option<bool>,
    #[serde(default)]
    path_matching: Vec<String>,
    exclude_verbs: Option<bool>,
}

/// Decides the metrics from `spec.metric` (absent: Dapr's defaults, with low cardinality).
pub fn metric_settings(spec: Option<&serde_json::Value>) -> Result<MetricSettings, SettingsError> {
    let spec: MetricSpec = match spec {
        None | Some(serde_json::Value::Null) => MetricSpec::default(),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| SettingsError::Shape(e.to_string()))?,
    };
    let http = spec.http.unwrap_or_default();
    if let Some(bad) = http.path_matching.iter().find(|p| !p.starts_with('/')) {
        return Err(SettingsError::Pattern(bad.clone()));
    }
    let latency_buckets_ms = match spec.latency_distribution_buckets {
        None => DEFAULT_LATENCY_BUCKETS_MS.to_vec(),
        Some(b) if b.is_empty() => DEFAULT_LATENCY_BUCKETS_MS.to_vec(),
        Some(b) => {
            let increasing = b.windows(2).all(|w| w[0] < w[1]);
            if !increasing || b.first().is_some_and(|first| *first <= 0) {
                return Err(SettingsError::Buckets(b));
            }
            b.iter().map(|v| *v as f64).collect()
        }
    };
    Ok(MetricSettings {
        enabled: spec.enabled.unwrap_or(true),
        increased_cardinality: http.increased_cardinality.unwrap_or(false),
        path_matching: http.path_matching,
        exclude_verbs: http.exclude_verbs.unwrap_or(false),
        latency_buckets_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_each_field_as_dapr_defines_it() {
        let cases: Vec<(Option<serde_json::Value>, MetricSettings)> = vec![
            (None, MetricSettings::default()),
            (Some(json!({})), MetricSettings::default()),
            (
                Some(json!({"enabled": false})),
                MetricSettings {
                    enabled: false,
                    ..MetricSettings::default()
                },
            ),
            (
                Some(json!({"http": {"increasedCardinality": true, "excludeVerbs": true}})),
                MetricSettings {
                    increased_cardinality: true,
                    exclude_verbs: true,
                    ..MetricSettings::default()
                },
            ),
            (
                Some(json!({"http": {"pathMatching": ["/orders/{id}", "/items/"]}})),
                MetricSettings {
                    path_matching: vec!["/orders/{id}".into(), "/items/".into()],
                    ..MetricSettings::default()
                },
            ),
            (
                Some(json!({"latencyDistributionBuckets": [5, 50, 500]})),
                MetricSettings {
                    latency_buckets_ms: vec![5.0, 50.0, 500.0],
                    ..MetricSettings::default()
                },
            ),
            (
                Some(json!({"latencyDistributionBuckets": []})),
                MetricSettings::default(),
            ),
            (
                Some(json!({"recordErrorCodes": true, "rules": [], "enabled": true})),
                MetricSettings::default(),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(metric_settings(spec.as_ref()), Ok(want), "{spec:?}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_meant() {
        let cases = [
            json!({"latencyDistributionBuckets": [10, 5]}),
            json!({"latencyDistributionBuckets": [0, 5]}),
            json!({"http": {"pathMatching": ["orders"]}}),
            json!({"enabled": "no"}),
            json!({"http": {"pathMatching": "/x"}}),
        ];
        for spec in cases {
            assert!(metric_settings(Some(&spec)).is_err(), "{spec}");
        }
    }

    #[test]
    fn dapr_default_buckets_end_at_100_seconds() {
        assert_eq!(DEFAULT_LATENCY_BUCKETS_MS.len(), 34);
        assert_eq!(DEFAULT_LATENCY_BUCKETS_MS.last(), Some(&100_000.0));
    }
}
