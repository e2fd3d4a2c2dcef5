//! Tandem's own binaries for multi-process tests. A test of one package cannot name another
//! package's binary (`CARGO_BIN_EXE_*` is per package), so they are found next to the test
//! executable in the target directory, where `cargo test --workspace` has built them; when one is
//! missing (a single-package run) it is built once with cargo.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

static BUILDING: Mutex<()> = Mutex::new(());

/// The target directory of the running test (`target/<profile>`).
fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<test>-<hash>
    exe.parent()?.parent().map(PathBuf::from)
}

/// The path of `binary` (of workspace package `package`), built if missing.
pub fn path(package: &str, binary: &str) -> PathBuf {
    let dir = profile_dir().expect("the test executable's directory");
    let path = dir.join(binary);
    let _building = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        build.args(["build", "--locked", "-p", package, "--bin", binary]);
        if dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {binary} failed"
        );
    }
    path
}

/// `tandem-sidecar`.
pub fn sidecar() -> PathBuf {
    path("tandem-sidecar", "tandem-sidecar")
}
