//! The injector → sidecar contract, checked end to end without a cluster: the container the
//! injector adds, for a pod using many `dapr.io/*` annotations, is applied to the pod as the API
//! server would apply the patch, and its command line must be accepted by the sidecar's own flag
//! parser and checks, in Kubernetes mode, with the values the annotations asked for.

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use tandem_injector::{Args, InjectorConfig};
use tandem_sidecar::cli::{Cli, Mode};

fn injected(annotations: serde_json::Value) -> Pod {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "order-7d9f", "namespace": "shop", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "order:1", "ports": [{"containerPort": 8080}]}]}
    }))
    .expect("pod");
    let args =
        Args::try_parse_from(["tandem-injector", "--namespace", "tandem-system"]).expect("flags");
    let config = InjectorConfig::from_args(args, None).expect("config");
    let operations = tandem_injector::patch::patch(&pod, &config).expect("a patch");
    let mut document = serde_json::to_value(&pod).expect("json");
    json_patch::patch(&mut document, &operations).expect("the patch applies");
    serde_json::from_value(document).expect("a pod")
}

#[test]
fn the_injected_command_line_is_one_the_sidecar_accepts() {
    let pod = injected(json!({
        "dapr.io/enabled": "true",
        "dapr.io/app-id": "order",
        "dapr.io/app-port": "8080",
        "dapr.io/config": "tracing",
        "dapr.io/log-level": "debug",
        "dapr.io/log-as-json": "true",
        "dapr.io/enable-metrics": "true",
        "dapr.io/metrics-port": "9091",
        "dapr.io/max-body-size": "8Mi",
        "dapr.io/graceful-shutdown-seconds": "12",
        "dapr.io/sidecar-listen-addresses": "0.0.0.0",
        "dapr.io/app-max-concurrency": "10",
    }));
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let daprd = containers
        .iter()
        .find(|c| c.name == "daprd")
        .expect("a daprd container");
    let mut argv: Vec<String> = daprd.command.clone().unwrap_or_default();
    argv.extend(daprd.args.clone().unwrap_or_default());
    assert!(argv[0].ends_with("tandem-sidecar"), "{argv:?}");
    let cli =
        Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("the sidecar refuses {argv:?}: {e}"));
    let sidecar = cli.sidecar;
    sidecar
        .validate()
        .unwrap_or_else(|e| panic!("the sidecar refuses {argv:?}: {e}"));
    assert_eq!(sidecar.mode, Mode::Kubernetes);
    assert_eq!(sidecar.app_id, "order");
    assert_eq!(sidecar.app_port, Some(8080));
    assert_eq!(sidecar.metrics_port, 9091);
    assert_eq!(sidecar.max_body_size, 8 << 20);
    assert_eq!(sidecar.dapr_graceful_shutdown_seconds, 12);
    assert!(sidecar.log_as_json);
    assert_eq!(
        sidecar.config.as_deref().and_then(|p| p.to_str()),
        Some("tracing")
    );
    assert_eq!(sidecar.listen_addresses(), vec!["0.0.0.0"]);
    let control_plane = sidecar.control_plane_address.clone().unwrap_or_default();
    assert_eq!(
        control_plane,
        "tandem-api.tandem-system.svc.cluster.local:6500"
    );
    // The token the sidecar reads is where the injector mounted it.
    let mounts = daprd.volume_mounts.clone().unwrap_or_default();
    assert!(
        mounts
            .iter()
            .any(|m| sidecar.control_plane_token_file.starts_with(&m.mount_path)),
        "{:?} not under {mounts:?}",
        sidecar.control_plane_token_file
    );
    // Identity comes through the downward API.
    let env: Vec<String> = daprd
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.name)
        .collect();
    for name in ["NAMESPACE", "POD_NAME", "POD_IP"] {
        assert!(env.contains(&name.to_owned()), "{name} in {env:?}");
    }
}
