//! A real `tandem-sidecar` process on free ports, stopped (SIGTERM, then SIGKILL) on drop.

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start a sidecar.
#[derive(Debug, Clone)]
pub struct SidecarBuilder {
    binary: PathBuf,
    app_id: String,
    app_port: Option<u16>,
    data_dir: PathBuf,
    resources: Vec<PathBuf>,
    env: Vec<(String, String)>,
    extra_args: Vec<String>,
    internal_port: Option<u16>,
}

/// A running sidecar.
#[derive(Debug)]
pub struct Sidecar {
    pub child: Child,
    pub http_port: u16,
    pub grpc_port: u16,
    pub public_port: u16,
    pub internal_port: u16,
    pub metrics_port: u16,
    pub app_id: String,
    log: PathBuf,
}

impl SidecarBuilder {
    /// `binary` is `env!("CARGO_BIN_EXE_tandem-sidecar")`; `data_dir` is shared by sidecars that
    /// must find each other (it holds the registry).
    pub fn new(binary: &str, app_id: &str, data_dir: &Path) -> Self {
        SidecarBuilder {
            binary: PathBuf::from(binary),
            app_id: app_id.to_owned(),
            app_port: None,
            data_dir: data_dir.to_path_buf(),
            resources: Vec::new(),
            env: Vec::new(),
            extra_args: Vec::new(),
            internal_port: None,
        }
    }

    /// A fixed internal port (in Kubernetes mode every sidecar uses the same one, as in Dapr).
    pub fn internal_port(mut self, port: u16) -> Self {
        self.internal_port = Some(port);
        self
    }

    pub fn app_port(mut self, port: u16) -> Self {
        self.app_port = Some(port);
        self
    }

    pub fn resources(mut self, dir: &Path) -> Self {
        self.resources.push(dir.to_path_buf());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }

    /// The command line this builder would run, with the given ports: HTTP API, public,
    /// internal, metrics and gRPC API.
    pub fn command(&self, ports: [u16; 5]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--app-id").arg(&self.app_id);
        cmd.args(["--dapr-http-port", &ports[0].to_string()]);
        cmd.args(["--dapr-public-port", &ports[1].to_string()]);
        cmd.args(["--dapr-internal-grpc-port", &ports[2].to_string()]);
        cmd.args(["--metrics-port", &ports[3].to_string()]);
        cmd.args(["--dapr-grpc-port", &ports[4].to_string()]);
        cmd.arg("--data-dir").arg(&self.data_dir);
        cmd.args(["--log-level", "debug"]);
        if let Some(port) = self.app_port {
            cmd.args(["--app-port", &port.to_string()]);
        }
        for dir in &self.resources {
            cmd.arg("--resources-path").arg(dir);
        }
        cmd.args(&self.extra_args);
        cmd.env_remove("DAPR_API_TOKEN").env_remove("APP_API_TOKEN");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the sidecar and waits until `/v1.0/healthz/outbound` answers 204. A start that
    /// lost a port to another process is retried on new ports.
    pub fn start(self) -> Sidecar {
        for _ in 0..5 {
            let mut sidecar = self.clone().spawn();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if super::http_status(sidecar.http_port, "/v1.0/healthz/outbound") == Some(204) {
                    return sidecar;
                }
                if let Ok(Some(_)) = sidecar.child.try_wait() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the sidecar never became ready; log:\n{}",
                    sidecar.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let log = sidecar.log();
            assert!(
                log.contains("Address already in use"),
                "the sidecar exited during start-up; log:\n{log}"
            );
        }
        panic!("could not find free ports for a sidecar in 5 attempts");
    }

    /// Starts the sidecar without waiting.
    pub fn spawn(self) -> Sidecar {
        let internal = self.internal_port.unwrap_or_else(free_port);
        let ports = [free_port(), free_port(), internal, free_port(), free_port()];
        std::fs::create_dir_all(&self.data_dir).expect("create data dir");
        let log = self
            .data_dir
            .join(format!("{}-{}.log", self.app_id, ports[0]));
        let log_file = std::fs::File::create(&log).expect("create log file");
        let child = self
            .command(ports)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn tandem-sidecar");
        Sidecar {
            child,
            http_port: ports[0],
            grpc_port: ports[4],
            public_port: ports[1],
            internal_port: ports[2],
            metrics_port: ports[3],
            app_id: self.app_id,
            log,
        }
    }
}

impl Sidecar {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// The gRPC API's endpoint, for tonic clients.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    pub fn public_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.public_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The sidecar's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls a GET until it answers `status`, or panics with the log after `timeout`.
    pub fn wait_status(&self, path: &str, status: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if super::http_status(self.http_port, path) == Some(status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never answered {status}; sidecar log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_outbound_ready(&self, timeout: Duration) {
        self.wait_status("/v1.0/healthz/outbound", 204, timeout);
    }

    pub fn wait_ready(&self, timeout: Duration) {
        self.wait_status("/v1.0/healthz", 204, timeout);
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    }

    /// Waits for the process to exit, returning its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(nix::sys::signal::Signal::SIGTERM);
            if self.wait_exit(Duration::from_secs(7)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}
