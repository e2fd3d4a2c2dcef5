//! Puts the Dapr API's protobuf descriptor set in `OUT_DIR` for gRPC server reflection.
//!
//! The pinned `dapr` crate publishes, beside its generated code, the `FileDescriptorSet` that code
//! was generated from (`src/dapr/types.bin`), but does not export it. `cargo metadata` says where
//! the crate's sources are (registry, vendor directory or git checkout alike); the file is copied
//! from there at build time and never into this repository.

use std::path::PathBuf;
use std::process::Command;

const DAPR_VERSION: &str = "0.20.0";
const DESCRIPTOR: &str = "src/dapr/types.bin";

fn dapr_manifest() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").map_err(|_| "CARGO is not set".to_owned())?;
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| "CARGO_MANIFEST_DIR is not set".to_owned())?;
    // Only the target's packages: a fresh machine has downloaded no other platform's crates,
    // and an unfiltered `cargo metadata --offline` would ask for them.
    let target = std::env::var("TARGET").map_err(|_| "TARGET is not set".to_owned())?;
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .args(["--filter-platform", &target])
        .arg("--manifest-path")
        .arg(PathBuf::from(manifest_dir).join("Cargo.toml"))
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "dapr" && p["version"] == DAPR_VERSION)
        .and_then(|p| p["manifest_path"].as_str())
        .map(PathBuf::from)
        .ok_or_else(|| format!("dapr {DAPR_VERSION} is not in the dependency graph"))
}

fn main() -> Result<(), String> {
    println!("cargo::rerun-if-changed=build.rs");
    let manifest = dapr_manifest()?;
    let crate_dir = manifest
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", manifest.display()))?;
    let source = crate_dir.join(DESCRIPTOR);
    let out_dir = std::env::var("OUT_DIR").map_err(|_| "OUT_DIR is not set".to_owned())?;
    let target = PathBuf::from(out_dir).join("dapr_descriptor_set.bin");
    std::fs::copy(&source, &target).map_err(|e| {
        format!(
            "cannot copy the Dapr descriptor set {}: {e}",
            source.display()
        )
    })?;
    Ok(())
}
