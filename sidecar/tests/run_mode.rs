//! `tandem-sidecar run -- <app>` when the app does not handle SIGTERM: the forwarded signal ends
//! it, and the sidecar exits 0 as `dapr run` does (not 143).

use std::process::Command;
use std::time::{Duration, Instant};
use tandem_sidecar::testing::free_port;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

#[test]
fn an_app_ended_by_the_forwarded_sigterm_is_a_clean_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = [
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    ];
    let args: Vec<String> = SidecarBuilder::new(BIN, "runner", dir.path())
        .command(ports)
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // `exec` so that the signal reaches the sleeping process itself, which has no handler.
    let mut child = Command::new(BIN)
        .arg("run")
        .args(&args)
        .args(["--", "sh", "-c", "exec sleep 600"])
        .spawn()
        .expect("run");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tandem_sidecar::testing::http_status(ports[0], "/v1.0/healthz/outbound") != Some(204) {
        assert!(Instant::now() < deadline, "sidecar never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "exited {status:?}");
}
