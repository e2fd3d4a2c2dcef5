//! `patch` over the annotation matrix, checked on the patched pod (json_patch applies it).

#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

mod common;

use common::{PodBuilder, config, config_with};
use serde_json::{Value, json};
use tandem_injector::patch::{PatchError, patch};

/// The pod after the patch, and the daprd container in it.
fn injected(builder: &PodBuilder) -> (Value, Value) {
    let ops = patch(&builder.pod(), &config()).unwrap();
    assert!(!ops.is_empty());
    let mut pod = builder.json();
    json_patch::patch(&mut pod, &ops).unwrap();
    let daprd = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "daprd")
        .cloned()
        .unwrap();
    (pod, daprd)
}

fn args(daprd: &Value) -> Vec<String> {
    serde_json::from_value(daprd["args"].clone()).unwrap()
}

/// The value following `--flag` in the args.
fn arg(daprd: &Value, flag: &str) -> Option<String> {
    let args = args(daprd);
    let i = args.iter().position(|a| a == &format!("--{flag}"))?;
    args.get(i + 1).cloned()
}

fn env_of(container: &Value, name: &str) -> Option<Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
}

#[test]
fn defaults() {
    let (pod, daprd) = injected(&PodBuilder::dapr("shop-1", "shop"));
    assert_eq!(daprd["image"], "ghcr.io/tandem-run/tandem-sidecar:latest");
    assert_eq!(daprd["imagePullPolicy"], "IfNotPresent");
    assert_eq!(daprd["command"], json!(["/tandem-sidecar"]));
    let a = args(&daprd);
    assert_eq!(
        a[..6],
        [
            "--mode",
            "kubernetes",
            "--app-id",
            "shop",
            "--control-plane-address",
            "tandem-api.default.svc.cluster.local:6500"
        ]
    );
    for (flag, value) in [
        ("dapr-http-port", "3500"),
        ("dapr-public-port", "3501"),
        ("dapr-grpc-port", "50001"),
        ("dapr-internal-grpc-port", "50002"),
        ("dapr-listen-addresses", "[::1],127.0.0.1"),
        ("app-protocol", "http"),
        ("log-level", "info"),
        ("enable-metrics", "true"),
        ("metrics-port", "9090"),
    ] {
        assert_eq!(arg(&daprd, flag).as_deref(), Some(value), "--{flag}");
    }
    for absent in [
        "app-port",
        "config",
        "log-as-json",
        "max-body-size",
        "dapr-graceful-shutdown-seconds",
    ] {
        assert_eq!(arg(&daprd, absent), None, "--{absent}");
    }
    let ports: Vec<(String, i64)> = daprd["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        ports.contains(&("dapr-http".into(), 3500))
            && ports.contains(&("dapr-metrics".into(), 9090))
    );
    assert_eq!(
        daprd["readinessProbe"]["httpGet"],
        json!({"path": "/v1.0/healthz", "port": 3501})
    );
    assert_eq!(daprd["readinessProbe"]["periodSeconds"], 1);
    assert_eq!(daprd["livenessProbe"]["tcpSocket"], json!({"port": 3501}));
    assert_eq!(daprd["livenessProbe"]["initialDelaySeconds"], 180);
    assert_eq!(
        daprd["securityContext"],
        json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}})
    );
    assert!(
        daprd.get("resources").is_none(),
        "no resources unless annotated"
    );
    assert_eq!(
        env_of(&daprd, "POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env_of(&daprd, "NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        daprd["volumeMounts"],
        json!([{"name": "tandem-identity-token", "mountPath": "/var/run/secrets/tandem.io/token", "readOnly": true}])
    );
    assert_eq!(
        pod["spec"]["volumes"],
        json!([{"name": "tandem-identity-token", "projected": {"defaultMode": 0o444, "sources": [{"serviceAccountToken": {"audience": "tandem.io/operator", "expirationSeconds": 7200, "path": "token"}}]}}])
    );
    assert_eq!(
        pod["metadata"]["labels"],
        json!({"dapr.io/sidecar-injected": "true", "dapr.io/app-id": "shop", "dapr.io/metrics-enabled": "true"})
    );
    let app = &pod["spec"]["containers"][0];
    assert_eq!(app["name"], "app", "the app stays first");
    assert_eq!(env_of(app, "DAPR_HTTP_PORT").unwrap()["value"], "3500");
    assert_eq!(env_of(app, "DAPR_GRPC_PORT").unwrap()["value"], "50001");
    assert_eq!(env_of(app, "APP_PROTOCOL").unwrap()["value"], "http");
}

#[test]
fn each_annotation() {
    type Check = fn(&Value, &Value);
    let cases: Vec<(&str, &str, Check)> = vec![
        ("dapr.io/app-port", "8080", |_, d| {
            assert_eq!(arg(d, "app-port").as_deref(), Some("8080"))
        }),
        ("dapr.io/app-protocol", "GRPC", |p, d| {
            assert_eq!(arg(d, "app-protocol").as_deref(), Some("grpc"));
            assert_eq!(
                env_of(&p["spec"]["containers"][0], "APP_PROTOCOL").unwrap()["value"],
                "grpc"
            );
        }),
        ("dapr.io/app-channel-address", "10.0.0.1", |_, d| {
            assert_eq!(arg(d, "app-channel-address").as_deref(), Some("10.0.0.1"))
        }),
        ("dapr.io/config", "tracing", |_, d| {
            assert_eq!(arg(d, "config").as_deref(), Some("tracing"))
        }),
        ("dapr.io/log-level", "debug", |_, d| {
            assert_eq!(arg(d, "log-level").as_deref(), Some("debug"))
        }),
        ("dapr.io/log-as-json", "true", |_, d| {
            assert_eq!(arg(d, "log-as-json").as_deref(), Some("true"))
        }),
        ("dapr.io/enable-metrics", "false", |p, d| {
            assert_eq!(arg(d, "enable-metrics").as_deref(), Some("false"));
            assert_eq!(arg(d, "metrics-port"), None);
            assert_eq!(p["metadata"]["labels"]["dapr.io/metrics-enabled"], "false");
        }),
        ("dapr.io/metrics-port", "9999", |_, d| {
            assert_eq!(arg(d, "metrics-port").as_deref(), Some("9999"))
        }),
        ("dapr.io/grpc-port", "50011", |p, d| {
            assert_eq!(arg(d, "dapr-grpc-port").as_deref(), Some("50011"));
            assert_eq!(
                env_of(&p["spec"]["containers"][0], "DAPR_GRPC_PORT").unwrap()["value"],
                "50011"
            );
        }),
        ("dapr.io/internal-grpc-port", "50012", |_, d| {
            assert_eq!(arg(d, "dapr-internal-grpc-port").as_deref(), Some("50012"))
        }),
        ("dapr.io/sidecar-listen-addresses", "0.0.0.0", |_, d| {
            assert_eq!(arg(d, "dapr-listen-addresses").as_deref(), Some("0.0.0.0"))
        }),
        ("dapr.io/api-token-secret", "api-token", |_, d| {
            assert_eq!(
                env_of(d, "DAPR_API_TOKEN").unwrap()["valueFrom"]["secretKeyRef"],
                json!({"name": "api-token", "key": "token"})
            );
        }),
        ("dapr.io/app-token-secret", "app-token", |_, d| {
            assert_eq!(
                env_of(d, "APP_API_TOKEN").unwrap()["valueFrom"]["secretKeyRef"],
                json!({"name": "app-token", "key": "token"})
            );
        }),
        ("dapr.io/max-body-size", "16Mi", |_, d| {
            assert_eq!(arg(d, "max-body-size").as_deref(), Some("16Mi"))
        }),
        ("dapr.io/http-max-request-size", "8", |_, d| {
            assert_eq!(arg(d, "max-body-size").as_deref(), Some("8Mi"))
        }),
        ("dapr.io/graceful-shutdown-seconds", "30", |_, d| {
            assert_eq!(
                arg(d, "dapr-graceful-shutdown-seconds").as_deref(),
                Some("30")
            )
        }),
        ("dapr.io/graceful-shutdown-seconds", "-1", |_, d| {
            assert_eq!(arg(d, "dapr-graceful-shutdown-seconds"), None)
        }),
        ("dapr.io/enable-app-health-check", "true", |_, d| {
            let health: Vec<Option<String>> = [
                "enable-app-health-check",
                "app-health-check-path",
                "app-health-probe-interval",
                "app-health-probe-timeout",
                "app-health-threshold",
            ]
            .iter()
            .map(|flag| arg(d, flag))
            .collect();
            let defaults = ["true", "/healthz", "5", "500", "3"].map(|v| Some(v.to_owned()));
            assert_eq!(health, defaults);
        }),
        ("dapr.io/app-health-threshold", "7", |_, d| {
            assert_eq!(
                arg(d, "app-health-threshold"),
                None,
                "only with the check enabled"
            )
        }),
        (
            "dapr.io/sidecar-image",
            "registry.local/sidecar:dev",
            |_, d| assert_eq!(d["image"], "registry.local/sidecar:dev"),
        ),
        (
            "dapr.io/sidecar-seccomp-profile-type",
            "RuntimeDefault",
            |_, d| {
                assert_eq!(
                    d["securityContext"]["seccompProfile"],
                    json!({"type": "RuntimeDefault"})
                );
            },
        ),
        ("dapr.io/sidecar-cpu-request", "100m", |_, d| {
            assert_eq!(d["resources"], json!({"requests": {"cpu": "100m"}}))
        }),
        ("dapr.io/sidecar-memory-limit", "256Mi", |_, d| {
            assert_eq!(d["resources"], json!({"limits": {"memory": "256Mi"}}))
        }),
        (
            "dapr.io/sidecar-liveness-probe-delay-seconds",
            "5",
            |_, d| assert_eq!(d["livenessProbe"]["initialDelaySeconds"], 5),
        ),
        ("dapr.io/sidecar-liveness-probe-threshold", "9", |_, d| {
            assert_eq!(d["livenessProbe"]["failureThreshold"], 9)
        }),
        (
            "dapr.io/sidecar-readiness-probe-period-seconds",
            "7",
            |_, d| assert_eq!(d["readinessProbe"]["periodSeconds"], 7),
        ),
        (
            "dapr.io/sidecar-readiness-probe-timeout-seconds",
            "2",
            |_, d| assert_eq!(d["readinessProbe"]["timeoutSeconds"], 2),
        ),
        ("dapr.io/env", "A=1, B=x=y", |_, d| {
            assert_eq!(env_of(d, "A").unwrap()["value"], "1");
            assert_eq!(env_of(d, "B").unwrap()["value"], "x=y");
            assert_eq!(env_of(d, "DAPR_ENV_KEYS").unwrap()["value"], "A B");
        }),
        (
            "dapr.io/env-from-secret",
            "TOKEN=creds:token,PASS=pass",
            |_, d| {
                assert_eq!(
                    env_of(d, "TOKEN").unwrap()["valueFrom"]["secretKeyRef"],
                    json!({"name": "creds", "key": "token"})
                );
                assert_eq!(
                    env_of(d, "PASS").unwrap()["valueFrom"]["secretKeyRef"],
                    json!({"name": "pass", "key": "pass"})
                );
            },
        ),
        ("dapr.io/enable-api-logging", "true", |_, d| {
            assert!(
                !args(d).iter().any(|a| a.contains("api-logging")),
                "unsupported: no flag"
            )
        }),
        ("dapr.io/app-max-concurrency", "not-a-number", |_, d| {
            assert_eq!(arg(d, "app-id").as_deref(), Some("shop"))
        }),
    ];
    for (key, value, check) in cases {
        let (pod, daprd) = injected(&PodBuilder::dapr("shop-1", "shop").annotation(key, value));
        check(&pod, &daprd);
    }
}

#[test]
fn every_flag_is_one_the_sidecar_knows() {
    // tandem-sidecar's flags (sidecar/src/cli.rs) plus --control-plane-address.
    let known = [
        "app-id",
        "app-port",
        "app-protocol",
        "app-channel-address",
        "dapr-http-port",
        "dapr-public-port",
        "dapr-grpc-port",
        "dapr-internal-grpc-port",
        "dapr-listen-addresses",
        "metrics-port",
        "enable-metrics",
        "enable-mtls",
        "resources-path",
        "config",
        "log-level",
        "log-as-json",
        "max-body-size",
        "dapr-graceful-shutdown-seconds",
        "data-dir",
        "mode",
        "control-plane-address",
        "enable-app-health-check",
        "app-health-check-path",
        "app-health-probe-interval",
        "app-health-probe-timeout",
        "app-health-threshold",
    ];
    let mut builder = PodBuilder::dapr("p", "shop");
    for (key, value) in [
        ("dapr.io/app-port", "1"),
        ("dapr.io/config", "c"),
        ("dapr.io/log-as-json", "1"),
        ("dapr.io/max-body-size", "1Mi"),
        ("dapr.io/graceful-shutdown-seconds", "3"),
        ("dapr.io/app-channel-address", "h"),
        ("dapr.io/enable-profiling", "true"),
        ("dapr.io/app-max-concurrency", "3"),
        ("dapr.io/enable-api-logging", "true"),
        ("dapr.io/placement-host-address", ""),
        ("dapr.io/enable-app-health-check", "true"),
        ("dapr.io/app-health-check-path", "/ready"),
        ("dapr.io/app-health-probe-interval", "2"),
        ("dapr.io/app-health-probe-timeout", "800"),
        ("dapr.io/app-health-threshold", "4"),
    ] {
        builder = builder.annotation(key, value);
    }
    let (_, daprd) = injected(&builder);
    for a in args(&daprd).iter().filter(|a| a.starts_with("--")) {
        assert!(known.contains(&&a[2..]), "{a} is not a tandem-sidecar flag");
    }
    let health = [
        "app-health-check-path",
        "app-health-probe-interval",
        "app-health-probe-timeout",
        "app-health-threshold",
    ]
    .map(|flag| arg(&daprd, flag).unwrap_or_default());
    assert_eq!(health, ["/ready", "2", "800", "4"]);
}

#[test]
fn invalid_annotations_are_errors_naming_the_annotation() {
    let cases = [
        ("dapr.io/app-port", "http"),
        ("dapr.io/app-port", "0"),
        ("dapr.io/app-port", "70000"),
        ("dapr.io/metrics-port", "-1"),
        ("dapr.io/grpc-port", "3500"),
        ("dapr.io/app-port", "9090"),
        ("dapr.io/app-protocol", "smtp"),
        ("dapr.io/log-level", "loud"),
        ("dapr.io/enable-metrics", "perhaps"),
        ("dapr.io/sidecar-cpu-request", "lots"),
        ("dapr.io/sidecar-memory-limit", "12XB"),
        ("dapr.io/env", "NOEQUALS"),
        ("dapr.io/env", "1BAD=x"),
        ("dapr.io/env-from-secret", "K=Bad_Secret"),
        ("dapr.io/sidecar-liveness-probe-period-seconds", "0"),
        ("dapr.io/sidecar-listen-addresses", "localhost"),
        ("dapr.io/max-body-size", "huge"),
        ("dapr.io/graceful-shutdown-seconds", "soon"),
        ("dapr.io/sidecar-seccomp-profile-type", "Strict"),
        ("dapr.io/volume-mounts", "data"),
        ("dapr.io/config", "Not_A_Name"),
        ("dapr.io/enable-app-health-check", "maybe"),
    ];
    for (key, value) in cases {
        let error = patch(
            &PodBuilder::dapr("p", "shop").annotation(key, value).pod(),
            &config(),
        )
        .unwrap_err();
        assert!(error.to_string().contains(key), "{key}={value}: {error}");
    }
}

#[test]
fn app_ids() {
    let long_ok = "a".repeat(58);
    let too_long = "a".repeat(59);
    for (id, valid) in [
        ("shop", true),
        ("shop-2", true),
        (long_ok.as_str(), true),
        (too_long.as_str(), false),
        ("Shop", false),
        ("shop_cart", false),
        ("shop.cart", false),
        ("-shop", false),
        ("shop cart", false),
    ] {
        let result = patch(&PodBuilder::dapr("p", id).pod(), &config());
        match (valid, result) {
            (true, Ok(ops)) => assert!(!ops.is_empty()),
            (false, Err(PatchError::Settings(e))) => {
                assert!(e.to_string().contains("dapr.io/app-id"), "{e}")
            }
            (valid, other) => panic!("{id:?}: expected valid={valid}, got {other:?}"),
        }
    }
    // No dapr.io/app-id: the pod name, with a warning; no name at all (generateName): an error
    // for a generated name is avoided by using its prefix.
    let (_, daprd) =
        injected(&PodBuilder::new("orders-7d9f").annotation("dapr.io/enabled", "true"));
    assert_eq!(arg(&daprd, "app-id").as_deref(), Some("orders-7d9f"));
    let mut generated = PodBuilder::new("x")
        .annotation("dapr.io/enabled", "true")
        .json();
    generated["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("name");
    generated["metadata"]["generateName"] = json!("orders-7d9f5-");
    let pod = serde_json::from_value(generated).unwrap();
    let plan = tandem_injector::patch::plan(&pod, &config())
        .unwrap()
        .unwrap();
    assert_eq!(plan.app_id, "orders-7d9f5");
    assert!(plan.warnings.iter().any(|w| w.contains("dapr.io/app-id")));
}

#[test]
fn volume_mounts_refer_to_existing_volumes_only() {
    let builder = PodBuilder::dapr("p", "shop")
        .volume("certs")
        .volume("scratch")
        .annotation("dapr.io/volume-mounts", "certs:/etc/certs")
        .annotation("dapr.io/volume-mounts-rw", "scratch:/tmp/scratch");
    let (pod, daprd) = injected(&builder);
    let mounts = daprd["volumeMounts"].as_array().unwrap();
    assert!(
        mounts.contains(&json!({"name": "certs", "mountPath": "/etc/certs", "readOnly": true}))
    );
    assert!(
        mounts
            .contains(&json!({"name": "scratch", "mountPath": "/tmp/scratch", "readOnly": false}))
    );
    assert_eq!(
        pod["spec"]["volumes"].as_array().unwrap().len(),
        3,
        "the token volume appended"
    );

    let missing = PodBuilder::dapr("p", "shop").annotation("dapr.io/volume-mounts", "ghost:/x");
    let error = patch(&missing.pod(), &config()).unwrap_err();
    assert!(
        matches!(&error, PatchError::MissingVolume { volume, .. } if volume == "ghost"),
        "{error}"
    );
    let clash = PodBuilder::dapr("p", "shop").volume("tandem-identity-token");
    assert!(matches!(
        patch(&clash.pod(), &config()),
        Err(PatchError::VolumeClash(_))
    ));
}

#[test]
fn existing_labels_env_and_containers_are_kept() {
    let builder = PodBuilder::dapr("p", "shop")
        .label("app", "shop")
        .app_env("DAPR_HTTP_PORT", "3999")
        .container("worker");
    let (pod, _) = injected(&builder);
    assert_eq!(pod["metadata"]["labels"]["app"], "shop");
    assert_eq!(
        pod["metadata"]["labels"]["dapr.io/sidecar-injected"],
        "true"
    );
    let app = &pod["spec"]["containers"][0];
    assert_eq!(
        env_of(app, "DAPR_HTTP_PORT").unwrap()["value"],
        "3999",
        "the app's own setting wins"
    );
    assert_eq!(env_of(app, "APP_PROTOCOL").unwrap()["value"], "http");
    assert_eq!(
        env_of(&pod["spec"]["containers"][1], "DAPR_HTTP_PORT").unwrap()["value"],
        "3500"
    );
    assert_eq!(pod["spec"]["containers"][2]["name"], "daprd");
}

#[test]
fn security_flags_and_control_plane_address_come_from_the_config() {
    let cfg = config_with(&[
        "--sidecar-run-as-non-root=false",
        "--sidecar-drop-all-capabilities=false",
        "--control-plane-address",
        "operator.tandem:6500",
        "--sidecar-image-pull-policy",
        "Always",
    ]);
    let builder = PodBuilder::dapr("p", "shop");
    let mut pod = builder.json();
    json_patch::patch(&mut pod, &patch(&builder.pod(), &cfg).unwrap()).unwrap();
    let daprd = &pod["spec"]["containers"][1];
    assert_eq!(daprd["securityContext"]["runAsNonRoot"], false);
    assert!(daprd["securityContext"].get("capabilities").is_none());
    assert_eq!(daprd["imagePullPolicy"], "Always");
    assert_eq!(
        arg(daprd, "control-plane-address").as_deref(),
        Some("operator.tandem:6500")
    );
}

#[test]
fn idempotent_and_no_patch_when_a_sidecar_exists() {
    let builders = [
        PodBuilder::dapr("p", "shop"),
        PodBuilder::dapr("p", "shop")
            .label("a", "b")
            .volume("v")
            .annotation("dapr.io/volume-mounts", "v:/v"),
        PodBuilder::dapr("p", "shop")
            .container("second")
            .app_env("X", "1"),
    ];
    for builder in builders {
        let (patched, _) = injected(&builder);
        let pod = serde_json::from_value(patched).unwrap();
        assert_eq!(
            patch(&pod, &config()).unwrap(),
            vec![],
            "patching the patched pod is a no-op"
        );
    }
    assert!(
        patch(
            &PodBuilder::dapr("p", "shop").container("daprd").pod(),
            &config()
        )
        .unwrap()
        .is_empty()
    );
    assert!(
        patch(
            &PodBuilder::dapr("p", "shop").init_container("daprd").pod(),
            &config()
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn unsupported_and_unknown_annotations_warn() {
    let pod = PodBuilder::dapr("p", "shop")
        .annotation("dapr.io/enable-api-logging", "true")
        .annotation("dapr.io/app-max-concurrency", "ten")
        .annotation("dapr.io/app-prot", "grpc")
        .annotation("dapr.io/sidecar-svc-annotations", "a=b")
        .pod();
    let plan = tandem_injector::patch::plan(&pod, &config())
        .unwrap()
        .unwrap();
    let warnings = plan.warnings.join("\n");
    assert!(
        warnings.contains("dapr.io/enable-api-logging is not supported"),
        "{warnings}"
    );
    assert!(
        warnings.contains("dapr.io/app-max-concurrency has an invalid value"),
        "{warnings}"
    );
    assert!(
        warnings.contains("dapr.io/app-prot is not a known Dapr annotation"),
        "{warnings}"
    );
    assert!(
        !warnings.contains("sidecar-svc-annotations"),
        "the operator's: {warnings}"
    );
    assert_eq!(plan.warnings.len(), 3);
}
