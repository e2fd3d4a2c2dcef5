use super::*;
use tandem_crds::configuration::ZipkinSpec;

fn no_env(_: &str) -> Option<String> {
    None
}

fn tracing(rate: Option<&str>) -> Tracing {
    Tracing {
        sampling_rate: rate.map(str::to_owned),
        ..Tracing::default()
    }
}

fn otel(address: &str, protocol: Option<&str>, secure: Option<bool>) -> Tracing {
    Tracing {
        sampling_rate: Some("1".into()),
        otel: Some(OtelSpec {
            endpoint_address: address.into(),
            protocol: protocol.map(str::to_owned),
            is_secure: secure,
            ..OtelSpec::default()
        }),
        ..Tracing::default()
    }
}

#[test]
fn sampling_rates() {
    let cases: &[(Option<&str>, Result<f64, SettingsError>)] = &[
        (None, Ok(DEFAULT_SAMPLING_RATE)),
        (Some(""), Ok(DEFAULT_SAMPLING_RATE)),
        (Some("0"), Ok(0.0)),
        (Some("1"), Ok(1.0)),
        (Some(" 0.5 "), Ok(0.5)),
        (Some("2"), Err(SettingsError::SamplingRate("2".into()))),
        (
            Some("-0.1"),
            Err(SettingsError::SamplingRate("-0.1".into())),
        ),
        (
            Some("half"),
            Err(SettingsError::SamplingRate("half".into())),
        ),
    ];
    for (rate, want) in cases {
        let got = trace_settings(Some(&tracing(*rate)), &no_env).map(|s| s.sampling_rate);
        assert_eq!(&got, want, "{rate:?}");
    }
}

#[test]
fn otlp_endpoints_from_the_configuration() {
    let cases = [
        (
            otel("collector:4317", None, None),
            "https://collector:4317",
            Protocol::Grpc,
        ),
        (
            otel("collector:4317", Some("grpc"), Some(false)),
            "http://collector:4317",
            Protocol::Grpc,
        ),
        (
            otel("collector:4318", Some("http"), Some(false)),
            "http://collector:4318/v1/traces",
            Protocol::HttpProtobuf,
        ),
        (
            otel("https://c:4318/custom/path", Some("http"), None),
            "https://c:4318/custom/path",
            Protocol::HttpProtobuf,
        ),
        (
            otel("c:4318", Some("http/json"), Some(false)),
            "http://c:4318/v1/traces",
            Protocol::HttpJson,
        ),
    ];
    for (spec, endpoint, protocol) in cases {
        let otlp = trace_settings(Some(&spec), &no_env)
            .expect("valid")
            .otlp
            .expect("otlp on");
        assert_eq!(
            (otlp.endpoint.as_str(), otlp.protocol),
            (endpoint, protocol),
            "{spec:?}"
        );
    }
}

#[test]
fn bad_otlp_settings_name_the_key() {
    let mut spec = otel("c:4317", Some("thrift"), None);
    assert_eq!(
        trace_settings(Some(&spec), &no_env),
        Err(SettingsError::Protocol("thrift".into()))
    );
    spec = otel("c:4317", None, None);
    if let Some(o) = spec.otel.as_mut() {
        o.headers = vec!["novalue".into()];
    }
    let err = trace_settings(Some(&spec), &no_env).expect_err("bad header");
    assert!(
        err.to_string().contains("spec.tracing.otel.headers"),
        "{err}"
    );
    if let Some(o) = spec.otel.as_mut() {
        o.headers = vec!["api-key=s3cr=t".into()];
        o.timeout = Some("soon".into());
    }
    let err = trace_settings(Some(&spec), &no_env).expect_err("bad timeout");
    assert!(
        err.to_string().contains("spec.tracing.otel.timeout"),
        "{err}"
    );
    if let Some(o) = spec.otel.as_mut() {
        o.timeout = Some("250ms".into());
    }
    let otlp = trace_settings(Some(&spec), &no_env)
        .expect("valid")
        .otlp
        .expect("on");
    assert_eq!(
        otlp.headers,
        vec![("api-key".to_owned(), "s3cr=t".to_owned())]
    );
    assert_eq!(otlp.timeout, Duration::from_millis(250));
}

#[test]
fn environment_variables_as_daprd_reads_them() {
    type Case = (
        &'static [(&'static str, &'static str)],
        Option<(&'static str, Protocol)>,
        f64,
    );
    let cases: &[Case] = &[
        (&[], None, DEFAULT_SAMPLING_RATE),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
            Some(("https://collector:4317", Protocol::Grpc)),
            1.0,
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
                ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
            ],
            Some(("http://collector:4317", Protocol::Grpc)),
            1.0,
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ],
            Some(("http://c:4318/v1/traces", Protocol::HttpProtobuf)),
            1.0,
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4317"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ],
            Some(("http://traces:4318/v1/traces", Protocol::HttpJson)),
            1.0,
        ),
    ];
    for (vars, want, rate) in cases {
        let env = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let got = trace_settings(None, &env).expect("valid");
        let otlp = got.otlp.as_ref().map(|o| (o.endpoint.as_str(), o.protocol));
        assert_eq!((otlp, got.sampling_rate), (*want, *rate), "{vars:?}");
    }
}

#[test]
fn the_configuration_wins_over_the_environment() {
    let env = |k: &str| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://env:4317".to_owned()),
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("a=1, b=2".to_owned()),
        "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("1500".to_owned()),
        _ => None,
    };
    let mut spec = otel("config:4317", None, Some(false));
    spec.sampling_rate = Some("0".into());
    let got = trace_settings(Some(&spec), &env).expect("valid");
    assert_eq!(got.sampling_rate, 0.0);
    assert!(!got.exports(), "rate 0 is off");
    let otlp = got.otlp.expect("on");
    assert_eq!(otlp.endpoint, "http://config:4317");
    assert_eq!(otlp.headers.len(), 2);
    assert_eq!(otlp.timeout, Duration::from_millis(1500));
}

#[test]
fn zipkin_and_stdout() {
    let spec = Tracing {
        sampling_rate: Some("1".into()),
        stdout: Some(true),
        zipkin: Some(ZipkinSpec {
            endpoint_address: "http://zipkin:9411/api/v2/spans".into(),
        }),
        otel: None,
    };
    let got = trace_settings(Some(&spec), &no_env).expect("valid");
    assert_eq!(
        got.zipkin.as_deref(),
        Some("http://zipkin:9411/api/v2/spans")
    );
    assert!(got.stdout && got.exports() && got.otlp.is_none());
}

#[test]
fn tls_trust_comes_from_the_certificate_variables() {
    type Case = (
        &'static [(&'static str, &'static str)],
        Option<&'static str>,
    );
    let cases: &[Case] = &[
        (&[], None),
        (
            &[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem")],
            Some("/ca.pem"),
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/general.pem"),
                ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/traces.pem"),
            ],
            Some("/traces.pem"),
        ),
        (&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "")], None),
    ];
    for (vars, want) in cases {
        let env = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        // Applies to the Configuration's endpoint as well as to one from the environment.
        let spec = otel("collector:4317", Some("grpc"), Some(true));
        let got = trace_settings(Some(&spec), &env).expect("valid");
        let otlp = got.otlp.expect("on");
        assert_eq!(otlp.endpoint, "https://collector:4317");
        assert_eq!(otlp.ca_certificate.as_deref(), *want, "{vars:?}");
    }
}
