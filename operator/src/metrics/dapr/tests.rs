use super::{ServiceChange, SignFailure};
use crate::metrics::Metrics;
use std::collections::BTreeSet;

/// Every `dapr_*` series of a scrape as `name{label,…}` (label names sorted).
fn label_sets(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("dapr_"))
        .filter_map(|l| {
            let series = l.rsplit_once(' ')?.0;
            let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
            let mut labels: Vec<&str> = rest
                .trim_end_matches('}')
                .split(',')
                .filter_map(|p| p.split_once('=').map(|(k, _)| k))
                .collect();
            labels.sort_unstable();
            Some(format!("{name}{{{}}}", labels.join(",")))
        })
        .collect()
}

/// `promtool check metrics` exits 0: the scrape parses and has no lint finding.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let promtool = std::env::var("TANDEM_PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{promtool} (scripts/lib/deps.sh ensure_promtool): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool {:?}: {}{}\n{text}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn without_a_ca_only_the_operator_series_are_served() {
    let metrics = Metrics::new().expect("metrics");
    metrics.service_changed(ServiceChange::Created, "orders");
    metrics.certificate_requested();
    metrics.certificate_refused(SignFailure::Unavailable);
    let text = metrics.render().expect("render");
    assert_eq!(
        label_sets(&text),
        BTreeSet::from(["dapr_operator_service_created_total{app_id}".to_owned()])
    );
    assert_eq!(metrics.certificate_requests(SignFailure::Unavailable), None);
    assert_eq!(metrics.issuer_certificate(), None);
    promtool_accepts(&text);
}

#[test]
fn dapr_names_and_label_sets_with_a_ca() {
    let metrics = Metrics::new().expect("metrics");
    metrics.ca_loaded(1_900_000_000).expect("registered");
    metrics
        .ca_loaded(1_900_000_100)
        .expect("a second load only updates");
    for change in [
        ServiceChange::Created,
        ServiceChange::Updated,
        ServiceChange::Deleted,
    ] {
        metrics.service_changed(change, "orders");
    }
    metrics.service_changed(ServiceChange::Created, "orders");
    metrics.certificate_requested();
    metrics.certificate_signed();
    metrics.certificate_requested();
    metrics.certificate_refused(SignFailure::PodMismatch);
    let text = metrics.render().expect("render");
    let golden: BTreeSet<String> = [
        "dapr_operator_service_created_total{app_id}",
        "dapr_operator_service_deleted_total{app_id}",
        "dapr_operator_service_updated_total{app_id}",
        "dapr_sentry_cert_sign_failure_total{reason}",
        "dapr_sentry_cert_sign_request_received_total{}",
        "dapr_sentry_cert_sign_success_total{}",
        "dapr_sentry_issuercert_changed_total{}",
        "dapr_sentry_issuercert_expiry_timestamp{}",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(label_sets(&text), golden, "{text}");
    for (series, expected) in [
        (
            "dapr_operator_service_created_total{app_id=\"orders\"}",
            2.0,
        ),
        (
            "dapr_operator_service_updated_total{app_id=\"orders\"}",
            1.0,
        ),
        (
            "dapr_operator_service_deleted_total{app_id=\"orders\"}",
            1.0,
        ),
        ("dapr_sentry_cert_sign_request_received_total", 2.0),
        ("dapr_sentry_cert_sign_success_total", 1.0),
        (
            "dapr_sentry_cert_sign_failure_total{reason=\"pod_mismatch\"}",
            1.0,
        ),
        (
            "dapr_sentry_cert_sign_failure_total{reason=\"invalid_token\"}",
            0.0,
        ),
        ("dapr_sentry_issuercert_changed_total", 0.0),
        ("dapr_sentry_issuercert_expiry_timestamp", 1_900_000_100.0),
        ("tandem_operator_ca_workload_certificates_signed_total", 1.0),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
    }
    let reasons = text
        .lines()
        .filter(|l| l.starts_with("dapr_sentry_cert_sign_failure_total{"))
        .count();
    assert_eq!(
        reasons,
        SignFailure::ALL.len(),
        "every reason at zero or more"
    );
    assert_eq!(
        metrics.certificate_requests(SignFailure::PodMismatch),
        Some((2, 1, 1))
    );
    assert_eq!(metrics.issuer_certificate(), Some((1_900_000_100, 0)));
    promtool_accepts(&text);
}

#[test]
fn reason_labels_are_distinct_snake_case() {
    let labels: BTreeSet<&str> = SignFailure::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), SignFailure::ALL.len());
    assert!(
        labels
            .iter()
            .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    );
}
