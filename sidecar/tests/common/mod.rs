//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod bulk_subscriber;
pub mod components;
pub mod raw_http;
pub mod subscriber;

use std::path::Path;
use std::time::Duration;

pub fn client() -> reqwest::Client {
    tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub async fn json_of(r: reqwest::Response) -> serde_json::Value {
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A process's resident set in KiB (`VmRSS` of /proc/<pid>/status); `None` once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn write_component(dir: &Path, file: &str, yaml: &str) {
    std::fs::create_dir_all(dir).expect("resources dir");
    std::fs::write(dir.join(file), yaml).expect("write component");
}

/// A Component manifest as YAML, built with the contract crate's fixture builder
/// (`Component::test(name, type).with_metadata(..)`) instead of a hand-written blob.
pub fn manifest(component: &tandem_crds::Component) -> String {
    serde_norway::to_string(component).expect("a Component serialises to YAML")
}
