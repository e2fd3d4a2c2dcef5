//! `--sidecar-mtls` (env `TANDEM_INJECTOR_SIDECAR_MTLS`, the chart's `global.mtls.enabled`): on by
//! default, like Dapr, the injected sidecar gets `--enable-mtls true`; off, it gets no such flag.
//! Dapr has no per-pod mTLS annotation (mTLS is the control plane's, cluster-wide), so a pod
//! cannot opt its sidecar out.

#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

mod common;

use clap::Parser;
use common::{PodBuilder, config, config_with};
use tandem_injector::patch::{PatchError, patch};
use tandem_injector::{Args, InjectorConfig};

/// The injected sidecar's args for `builder` under `cfg`.
fn sidecar_args(builder: &PodBuilder, cfg: &InjectorConfig) -> Vec<String> {
    let ops = patch(&builder.pod(), cfg).unwrap();
    let mut pod = builder.json();
    json_patch::patch(&mut pod, &ops).unwrap();
    let daprd = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "daprd")
        .cloned()
        .unwrap();
    serde_json::from_value::<Vec<String>>(daprd["args"].clone()).unwrap()
}

/// The value after `--enable-mtls`, and how many times the flag appears.
fn enable_mtls(args: &[String]) -> (Option<&str>, usize) {
    let at: Vec<usize> = args
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--enable-mtls")
        .map(|(i, _)| i)
        .collect();
    let value = at.first().and_then(|i| args.get(i + 1)).map(String::as_str);
    (value, at.len())
}

#[test]
fn on_by_default_the_sidecar_gets_enable_mtls_true() {
    assert!(config().sidecar_mtls);
    let args = sidecar_args(&PodBuilder::dapr("shop-1", "shop"), &config());
    assert_eq!(enable_mtls(&args), (Some("true"), 1), "{args:?}");
}

#[test]
fn off_the_sidecar_gets_no_mtls_flag() {
    for flags in [
        &["--sidecar-mtls=false"][..],
        &["--sidecar-mtls", "false"][..],
    ] {
        let cfg = config_with(flags);
        assert!(!cfg.sidecar_mtls, "{flags:?}");
        let args = sidecar_args(&PodBuilder::dapr("shop-1", "shop"), &cfg);
        assert_eq!(enable_mtls(&args), (None, 0), "{args:?}");
    }
    // A bare flag turns it on; a value that is not a bool is refused.
    assert!(config_with(&["--sidecar-mtls"]).sidecar_mtls);
    let refused = Args::try_parse_from(["tandem-injector", "--sidecar-mtls=maybe"]);
    assert!(refused.is_err());
}

#[test]
fn a_pod_cannot_opt_its_sidecar_out() {
    let pod = PodBuilder::dapr("shop-1", "shop").annotation("dapr.io/enable-mtls", "false");
    let args = sidecar_args(&pod, &config());
    assert_eq!(enable_mtls(&args), (Some("true"), 1), "{args:?}");
}

/// The injected sidecar's env var `name`, if set.
fn sidecar_env(builder: &PodBuilder, cfg: &InjectorConfig, name: &str) -> Option<String> {
    let ops = patch(&builder.pod(), cfg).unwrap();
    let mut pod = builder.json();
    json_patch::patch(&mut pod, &ops).unwrap();
    let daprd = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "daprd")
        .cloned()
        .unwrap();
    daprd["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

const ANCHORS: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

#[test]
fn with_the_trust_bundle_the_sidecar_gets_the_anchors_and_the_control_plane_identity() {
    let pod = PodBuilder::dapr("shop-1", "shop");
    assert_eq!(
        sidecar_env(&pod, &config(), "DAPR_TRUST_ANCHORS"),
        None,
        "no ConfigMap configured: nothing passed (plain HTTP to the operator)"
    );
    let cfg = config_with(&[
        "--namespace",
        "tandem-system",
        "--trust-anchors-configmap",
        "tandem-trust-bundle",
    ]);
    // Before the anchors are known, no sidecar that could not verify its control plane.
    let waiting = patch(&pod.pod(), &cfg);
    assert!(
        matches!(&waiting, Err(PatchError::NoTrustAnchors { configmap, .. }) if configmap == "tandem-trust-bundle"),
        "{waiting:?}"
    );
    cfg.control_plane_trust.set_anchors(ANCHORS.to_owned());
    for (name, want) in [
        ("DAPR_TRUST_ANCHORS", ANCHORS),
        ("DAPR_CONTROLPLANE_NAMESPACE", "tandem-system"),
        ("DAPR_CONTROLPLANE_TRUST_DOMAIN", "cluster.local"),
    ] {
        assert_eq!(
            sidecar_env(&pod, &cfg, name).as_deref(),
            Some(want),
            "{name}"
        );
    }
    let other_domain = config_with(&[
        "--trust-anchors-configmap",
        "tandem-trust-bundle",
        "--control-plane-trust-domain",
        "corp.example",
    ]);
    other_domain
        .control_plane_trust
        .set_anchors(ANCHORS.to_owned());
    assert_eq!(
        sidecar_env(&pod, &other_domain, "DAPR_CONTROLPLANE_TRUST_DOMAIN").as_deref(),
        Some("corp.example")
    );
}
