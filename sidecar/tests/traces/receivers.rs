//! The test receivers as child processes on free ports: oteltest's OTLP sink (gRPC and HTTP,
//! from PyPI, installed by `scripts/test.sh`) and a Zipkin v2 endpoint. Each prints one JSON
//! line per span; a thread collects them. Killed by PID on drop.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_sidecar::testing::free_port;

pub struct Receiver {
    child: Child,
    spans: Arc<Mutex<Vec<Value>>>,
    pub ports: Vec<u16>,
}

fn script(name: &str) -> String {
    format!("{}/tests/traces/{name}", env!("CARGO_MANIFEST_DIR"))
}

impl Receiver {
    /// oteltest's otelsink on a free gRPC port and a free HTTP port.
    pub fn otlp() -> Receiver {
        let python = std::env::var("TANDEM_OTEL_PYTHON").unwrap_or_else(|_| {
            panic!("TANDEM_OTEL_PYTHON is unset: run scripts/test.sh (ensure_otel_sink installs oteltest)")
        });
        Receiver::start(&python, "otlp_receiver.py", 2, &[])
    }

    /// An OTLP receiver over TLS (gRPC and HTTP/protobuf) serving `cert` (PEM, chain first)
    /// with `key`, built from the grpcio and opentelemetry-proto that oteltest brings.
    pub fn otlp_tls(cert: &Path, key: &Path) -> Receiver {
        let python = std::env::var("TANDEM_OTEL_PYTHON").unwrap_or_else(|_| {
            panic!("TANDEM_OTEL_PYTHON is unset: run scripts/test.sh (ensure_otel_sink installs oteltest)")
        });
        let files = [cert, key].map(|p| p.to_str().expect("utf-8 path").to_owned());
        Receiver::start(&python, "otlp_tls_receiver.py", 2, &files)
    }

    /// A Zipkin v2 JSON endpoint (`POST /api/v2/spans`) on a free port.
    pub fn zipkin() -> Receiver {
        Receiver::start("python3", "zipkin_receiver.py", 1, &[])
    }

    fn start(python: &str, name: &str, n_ports: usize, extra: &[String]) -> Receiver {
        let ports: Vec<u16> = (0..n_ports).map(|_| free_port()).collect();
        let mut child = Command::new(python)
            .arg("-u")
            .arg(script(name))
            .args(ports.iter().map(u16::to_string))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} with {python}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let sink = spans.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(span) = serde_json::from_str::<Value>(&line) {
                    sink.lock().expect("not poisoned").push(span);
                }
            }
        });
        let receiver = Receiver {
            child,
            spans,
            ports,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in &receiver.ports {
            while TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(Instant::now() < deadline, "{name} never listened on {port}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        receiver
    }

    pub fn spans(&self) -> Vec<Value> {
        self.spans.lock().expect("not poisoned").clone()
    }

    /// Polls until `done` holds for the spans received, or panics with them after `timeout`.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "spans never arrived; got {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
