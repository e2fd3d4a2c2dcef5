//! `--sidecar-mtls` (env `TANDEM_INJECTOR_SIDECAR_MTLS`, the chart's `global.mtls.enabled`): on by
//! default, like Dapr, the injected sidecar gets `--enable-mtls true`; off, it gets no such flag.
//! Dapr has no per-pod mTLS annotation (mTLS is the control plane's, cluster-wide), so a pod
//! cannot opt its sidecar out.

#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

mod common;

use clap::Parser;
use common::{PodBuilder, config, config_with};
use tandem_injector::patch::patch;
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
