use super::*;

/// The value of the sample `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        let has_all = labels.iter().all(|(k, v)| {
            rest.split(',')
                .any(|p| p.trim_end_matches('}') == format!("{k}=\"{v}\""))
        });
        (metric == name && has_all).then(|| value.parse().ok())?
    })
}

#[test]
fn renders_dapr_names_with_app_id() {
    let m = Metrics::new("order").expect("metrics");
    m.components()
        .state("statestore", "get", true, Duration::from_millis(1));
    m.invocation()
        .request_sent("shop", invocation::CallType::Unary);
    let text = m.render();
    let state = [
        ("app_id", "order"),
        ("component", "statestore"),
        ("namespace", ""),
        ("operation", "get"),
        ("success", "true"),
    ];
    assert_eq!(
        sample(&text, "dapr_component_state_count", &state),
        Some(1.0),
        "{text}"
    );
    let sent = [
        ("app_id", "order"),
        ("dst_app_id", "shop"),
        ("type", "unary"),
    ];
    assert_eq!(
        sample(
            &text,
            "dapr_runtime_service_invocation_req_sent_total",
            &sent
        ),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"));
}

#[test]
fn latency_histograms_use_the_configured_buckets() {
    let settings = MetricSettings {
        latency_buckets_ms: vec![5.0, 50.0],
        ..MetricSettings::default()
    };
    let m = Metrics::with_settings("a", None, settings).expect("metrics");
    m.components()
        .state("s", "set", true, Duration::from_millis(7));
    let text = m.render();
    let bucket = |le| {
        sample(
            &text,
            "dapr_component_state_latencies_bucket",
            &[("le", le)],
        )
    };
    assert_eq!(bucket("5"), Some(0.0), "{text}");
    assert_eq!(bucket("50"), Some(1.0), "{text}");
    assert_eq!(bucket("100000"), None, "{text}");
}

#[test]
fn disabled_metrics_render_nothing() {
    let settings = MetricSettings {
        enabled: false,
        ..MetricSettings::default()
    };
    let m = Metrics::with_settings("a", None, settings).expect("metrics");
    m.components()
        .state("s", "set", true, Duration::from_millis(7));
    assert_eq!(m.render(), "");
}
