use super::*;
use std::collections::BTreeSet;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

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

#[test]
fn dapr_injector_names_label_sets_and_counts() {
    let metrics = Metrics::new().expect("metrics");
    let text = metrics.render().expect("render");
    assert_eq!(
        label_sets(&text),
        BTreeSet::from(["dapr_injector_sidecar_injection_requests_total{}".to_owned()]),
        "before any review only the request counter, at zero"
    );
    assert_eq!(
        value(&text, "dapr_injector_sidecar_injection_requests_total"),
        Some(0.0)
    );
    let injected = Injection::Succeeded {
        app_id: "orders".into(),
    };
    let refused = Injection::Failed {
        app_id: "orders".into(),
        reason: InjectionFailure::InvalidAnnotation,
    };
    metrics.admission(AdmissionResult::Injected, &injected, 0.001);
    metrics.admission(AdmissionResult::Injected, &injected, 0.001);
    metrics.admission(AdmissionResult::Denied, &refused, 0.001);
    metrics.admission(AdmissionResult::NotDapr, &Injection::NotAttempted, 0.001);
    let text = metrics.render().expect("render");
    let golden: BTreeSet<String> = [
        "dapr_injector_sidecar_injection_failed_total{app_id,reason}",
        "dapr_injector_sidecar_injection_requests_total{}",
        "dapr_injector_sidecar_injection_succeeded_total{app_id}",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(label_sets(&text), golden, "{text}");
    for (series, expected) in [
        ("dapr_injector_sidecar_injection_requests_total", 4.0),
        (
            "dapr_injector_sidecar_injection_succeeded_total{app_id=\"orders\"}",
            2.0,
        ),
        (
            "dapr_injector_sidecar_injection_failed_total{app_id=\"orders\",reason=\"invalid_annotation\"}",
            1.0,
        ),
        ("tandem_injector_admission_total{result=\"injected\"}", 2.0),
        ("tandem_injector_admission_total{result=\"not_dapr\"}", 1.0),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
    }
    assert_eq!(metrics.injection_requests(), 4);
    assert_eq!(metrics.injections_succeeded("orders"), 2);
    assert_eq!(
        metrics.injections_failed("orders", InjectionFailure::InvalidAnnotation),
        1
    );
    promtool_accepts(&text);
}

/// Dapr's "system services" dashboard's injector panels (and its uptime panel), evaluated by
/// `promtool test rules` over this scrape labelled `app="dapr-sidecar-injector"`.
#[test]
fn the_system_services_dashboard_finds_the_injectors_series() {
    use serde_json::json;
    let metrics = Metrics::new().expect("metrics");
    let injected = Injection::Succeeded {
        app_id: "orders".into(),
    };
    metrics.admission(AdmissionResult::Injected, &injected, 0.001);
    metrics.admission(AdmissionResult::NotPod, &Injection::NotAttempted, 0.001);
    let scrape = metrics.render().expect("render");
    let app = "dapr-sidecar-injector";
    let samples: Vec<(String, f64)> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labelled = match series.split_once('{') {
                Some((name, labels)) => format!("{name}{{app=\"{app}\",{labels}"),
                None => format!("{series}{{app=\"{app}\"}}"),
            };
            Some((labelled, value.parse().ok()?))
        })
        .collect();
    let started = samples
        .iter()
        .find(|(s, _)| s.starts_with("process_start_time_seconds{"))
        .map(|(_, v)| *v);
    let uptime = started.map_or_else(
        || json!([]),
        |started| json!([{"labels": format!("{{app=\"{app}\"}}"), "value": 60.0 - started}]),
    );
    let cases = [
        (
            "time() - max(process_start_time_seconds{app=~\"dapr-sentry|dapr-placement-server|dapr-sidecar-injector|dapr-operator\"}) by (app)",
            uptime,
        ),
        (
            "dapr_injector_sidecar_injection_requests_total",
            json!([{"labels": format!("dapr_injector_sidecar_injection_requests_total{{app=\"{app}\"}}"), "value": 2}]),
        ),
        (
            "dapr_injector_sidecar_injection_succeeded_total",
            json!([{"labels": format!("dapr_injector_sidecar_injection_succeeded_total{{app=\"{app}\",app_id=\"orders\"}}"), "value": 1}]),
        ),
    ];
    let input: Vec<_> = samples
        .iter()
        .map(|(series, value)| json!({"series": series, "values": format!("{value} {value}")}))
        .collect();
    let tests: Vec<_> = cases
        .iter()
        .map(|(expr, expected)| json!({"expr": expr, "eval_time": "1m", "exp_samples": expected}))
        .collect();
    let file = json!({
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input, "promql_expr_test": tests}],
    });
    let path = std::env::temp_dir().join(format!(
        "tandem-injector-dashboard-{}.json",
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
fn failure_reasons_are_distinct_snake_case() {
    let labels: BTreeSet<&str> = InjectionFailure::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), InjectionFailure::ALL.len());
    assert!(
        labels
            .iter()
            .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    );
}
