//! A release `tandem-sidecar` started on free loopback ports for a benchmark binary, optionally
//! pinned to one CPU (`taskset -c N`, which execs the sidecar, so the PID is the sidecar's),
//! killed on drop.

use crate::ports::free_ports;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How to start one sidecar.
#[derive(Debug, Clone)]
pub struct SidecarSpec {
    pub binary: PathBuf,
    pub app_id: String,
    pub app_port: Option<u16>,
    /// Shared by sidecars that must find each other (the registry, the embedded SQLite store).
    pub data_dir: PathBuf,
    pub resources: Option<PathBuf>,
    /// `taskset -c <cpu>` when set.
    pub cpu: Option<u32>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

/// A running sidecar, killed on drop.
pub struct SidecarProc {
    child: Child,
    pub http_port: u16,
}

impl SidecarProc {
    pub fn start(spec: &SidecarSpec) -> anyhow::Result<SidecarProc> {
        let p = free_ports(5)?;
        std::fs::create_dir_all(&spec.data_dir)?;
        let log = std::fs::File::create(&spec.log)
            .with_context(|| format!("creating {}", spec.log.display()))?;
        let mut cmd = match spec.cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string()]).arg(&spec.binary);
                c
            }
            None => Command::new(&spec.binary),
        };
        cmd.args(["--app-id", &spec.app_id])
            .args(["--dapr-http-port", &p[0].to_string()])
            .args(["--dapr-public-port", &p[1].to_string()])
            .args(["--dapr-internal-grpc-port", &p[2].to_string()])
            .args(["--metrics-port", &p[3].to_string()])
            .args(["--dapr-grpc-port", &p[4].to_string()])
            .args(["--dapr-listen-addresses", "127.0.0.1"])
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .args(["--log-level", "warn"]);
        if let Some(port) = spec.app_port {
            cmd.args(["--app-port", &port.to_string()]);
        }
        if let Some(res) = &spec.resources {
            cmd.arg("--resources-path").arg(res);
        }
        let child = cmd
            .env_remove("DAPR_API_TOKEN")
            .env_remove("APP_API_TOKEN")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", spec.binary.display()))?;
        Ok(SidecarProc {
            child,
            http_port: p[0],
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// Waits until `/v1.0/healthz` answers 204 (for an actor host: it has a placement table).
    pub fn wait_ready(&mut self, timeout: Duration, log: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while http_status(self.http_port, "/v1.0/healthz") != Some(204) {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("the sidecar exited ({status}); see {}", log.display());
            }
            if Instant::now() > deadline {
                bail!("the sidecar did not become ready; see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for SidecarProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of `GET path` on a fresh connection, `None` when it fails.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).ok()?;
    std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
}
