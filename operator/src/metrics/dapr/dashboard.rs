//! Dapr's "system services" Grafana dashboard against the operator's scrape: every panel's PromQL
//! is evaluated by `promtool test rules` over the scraped samples (labelled `app="dapr-sentry"`,
//! as a scrape config would), and each must give exactly the samples expected here. The panels
//! that read what Tandem cannot have (Go runtime, cAdvisor, placement, server certificates) must
//! come back empty; the others must have data.

use super::{ServiceChange, SignFailure};
use crate::metrics::Metrics;
use serde_json::{Value, json};

/// The dashboard's panels: title and queries (Dapr's `grafana-system-services-dashboard.json`).
const PANELS: [(&str, &[&str]); 13] = [
    (
        "Uptime",
        &[
            "time() - max(process_start_time_seconds{app=~\"dapr-sentry|dapr-placement-server|dapr-sidecar-injector|dapr-operator\"}) by (app)",
        ],
    ),
    (
        "Total CPU usage",
        &[
            "sum(rate(container_cpu_usage_seconds_total{pod=~\"(dapr-sentry|dapr-sidecar-injector|dapr-placement-server|dapr-operator).*\"}[5m])) by (pod)",
        ],
    ),
    (
        "Heap memory",
        &[
            "sum(go_memstats_alloc_bytes{app=~\"(dapr-sentry|dapr-sidecar-injector|dapr-placement-server|dapr-operator)\"}) by (app)",
        ],
    ),
    (
        "Go routines",
        &[
            "max(go_goroutines{app=~\"(dapr-sentry|dapr-sidecar-injector|dapr-placement-server|dapr-operator)\"}) by (app)",
        ],
    ),
    (
        "# sidecar injection requests",
        &["dapr_injector_sidecar_injection_requests_total"],
    ),
    (
        "# successful sidecar injected",
        &["dapr_injector_sidecar_injection_succeeded_total"],
    ),
    (
        "Root/Issuer cert expiry",
        &["min(dapr_sentry_issuercert_expiry_timestamp) - time()"],
    ),
    (
        "CSRs from daprd",
        &[
            "sum(dapr_sentry_cert_sign_request_received_total{app=\"dapr-sentry\"})",
            "sum(dapr_sentry_cert_sign_success_total{app=\"dapr-sentry\"})",
            "sum(dapr_sentry_cert_sign_failure_total{app=\"dapr-sentry\"})",
        ],
    ),
    (
        "CSR failures",
        &["sum(dapr_sentry_cert_sign_failure_total{app=\"dapr-sentry\"}) by (reason)"],
    ),
    (
        "Issuer cert and key changed",
        &["sum(dapr_sentry_issuercert_changed_total{app=\"dapr-sentry\"})"],
    ),
    (
        "Server TLS certificate issuance failures",
        &["sum(dapr_sentry_servercert_issue_failed_total{app=\"dapr-sentry\"}) by (reason)"],
    ),
    ("Connected sidecars", &["dapr_placement_runtimes_total"]),
    (
        "Actor vs non-actor sidecars",
        &[
            "dapr_placement_actor_runtimes_total",
            "dapr_placement_runtimes_total-dapr_placement_actor_runtimes_total",
        ],
    ),
];

/// The samples of a text scrape as `(series with app="<app>", value)`.
fn samples(scrape: &str, app: &str) -> Vec<(String, f64)> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let labelled = match series.split_once('{') {
                Some((name, labels)) => format!("{name}{{app=\"{app}\",{labels}"),
                None => format!("{series}{{app=\"{app}\"}}"),
            };
            Some((labelled, value))
        })
        .collect()
}

/// Runs `promtool test rules`: every `(expr, expected samples)` evaluated at 1m over `samples`
/// (constant from 0 to 1m). Panics with promtool's report when one differs.
fn promtool_evaluates(samples: &[(String, f64)], cases: &[(&str, Value)]) {
    let input: Vec<Value> = samples
        .iter()
        .map(|(series, value)| json!({"series": series, "values": format!("{value} {value}")}))
        .collect();
    let tests: Vec<Value> = cases
        .iter()
        .map(|(expr, expected)| json!({"expr": expr, "eval_time": "1m", "exp_samples": expected}))
        .collect();
    let file = json!({
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input, "promql_expr_test": tests}],
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let path = std::env::temp_dir().join(format!(
        "tandem-dashboard-{}-{nanos}.json",
        std::process::id()
    ));
    std::fs::write(&path, file.to_string()).expect("write the promtool test");
    let promtool = std::env::var("TANDEM_PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
    let out = std::process::Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{promtool} (scripts/lib/deps.sh ensure_promtool): {e}"));
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_system_services_dashboard_finds_the_operators_series() {
    let metrics = Metrics::new().expect("metrics");
    let expiry = 1_900_000_000;
    metrics.ca_loaded(expiry).expect("a CA");
    metrics.service_changed(ServiceChange::Created, "orders");
    for _ in 0..3 {
        metrics.certificate_requested();
    }
    metrics.certificate_signed();
    metrics.certificate_signed();
    metrics.certificate_refused(SignFailure::WrongAudience);
    let scrape = metrics.render().expect("render");
    let samples = samples(&scrape, "dapr-sentry");
    let started = samples
        .iter()
        .find(|(s, _)| s.starts_with("process_start_time_seconds{"))
        .map(|(_, v)| *v);

    let one = |labels: &str, value: f64| json!([{"labels": labels, "value": value}]);
    let failures: Vec<Value> = SignFailure::ALL
        .iter()
        .map(|r| {
            let value = if *r == SignFailure::WrongAudience {
                1
            } else {
                0
            };
            json!({"labels": format!("{{reason=\"{}\"}}", r.as_str()), "value": value})
        })
        .collect();
    let uptime = match started {
        Some(started) => one("{app=\"dapr-sentry\"}", 60.0 - started),
        None => json!([]),
    };
    let expected: [(&str, Vec<Value>); 13] = [
        ("Uptime", vec![uptime]),
        ("Total CPU usage", vec![json!([])]),
        ("Heap memory", vec![json!([])]),
        ("Go routines", vec![json!([])]),
        // The injector's, not the operator's (see the injector's metrics tests).
        ("# sidecar injection requests", vec![json!([])]),
        ("# successful sidecar injected", vec![json!([])]),
        (
            "Root/Issuer cert expiry",
            vec![one("{}", expiry as f64 - 60.0)],
        ),
        (
            "CSRs from daprd",
            vec![one("{}", 3.0), one("{}", 2.0), one("{}", 1.0)],
        ),
        ("CSR failures", vec![Value::Array(failures)]),
        ("Issuer cert and key changed", vec![one("{}", 0.0)]),
        ("Server TLS certificate issuance failures", vec![json!([])]),
        ("Connected sidecars", vec![json!([])]),
        ("Actor vs non-actor sidecars", vec![json!([]), json!([])]),
    ];
    let mut cases = Vec::new();
    let mut with_data = Vec::new();
    for ((title, queries), (expected_title, samples)) in PANELS.iter().zip(&expected) {
        assert_eq!(title, expected_title);
        assert_eq!(queries.len(), samples.len(), "{title}");
        if samples
            .iter()
            .any(|s| s.as_array().is_some_and(|a| !a.is_empty()))
        {
            with_data.push(*title);
        }
        cases.extend(queries.iter().copied().zip(samples.iter().cloned()));
    }
    promtool_evaluates(&samples, &cases);
    eprintln!(
        "system services dashboard, operator scrape: {} of {} panels with data: {with_data:?}",
        with_data.len(),
        PANELS.len()
    );
    assert_eq!(with_data.len(), if started.is_some() { 5 } else { 4 });
}
