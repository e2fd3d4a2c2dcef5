//! Readiness probes as the kubelet runs them: HTTP GET (2xx/3xx is success) or a TCP connect to the
//! pod's address, every `periodSeconds` after `initialDelaySeconds`, with the success and failure
//! thresholds. A container without a readiness probe is ready while it runs. (Liveness and startup
//! probes are not run by the test node.)

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// One container's readiness, as its probe has found it so far.
#[derive(Debug)]
pub struct Readiness {
    probe: Option<Probe>,
    ready: bool,
    successes: i32,
    failures: i32,
    next: Instant,
}

impl Readiness {
    /// For `container`, started at `started`.
    pub fn new(container: &Container, started: Instant) -> Readiness {
        let probe = container.readiness_probe.clone();
        let delay = probe
            .as_ref()
            .and_then(|p| p.initial_delay_seconds)
            .unwrap_or(0);
        Readiness {
            probe,
            ready: false,
            successes: 0,
            failures: 0,
            next: started + seconds(delay),
        }
    }

    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Probes when due and updates readiness; `running` says whether the process is alive.
    pub async fn check(&mut self, container: &Container, pod_ip: Ipv4Addr, running: bool) {
        if !running {
            self.ready = false;
            return;
        }
        let Some(probe) = self.probe.clone() else {
            self.ready = true;
            return;
        };
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + seconds(probe.period_seconds.unwrap_or(10));
        if probe_once(&probe, container, pod_ip).await {
            self.failures = 0;
            self.successes += 1;
            if self.successes >= probe.success_threshold.unwrap_or(1) {
                self.ready = true;
            }
        } else {
            self.successes = 0;
            self.failures += 1;
            if self.failures >= probe.failure_threshold.unwrap_or(3) || !self.ready {
                self.ready = false;
            }
        }
    }
}

fn seconds(value: i32) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(0))
}

/// A probe's port: a number, or the name of one of the container's ports.
pub fn port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(number) => u16::try_from(*number).ok(),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

async fn probe_once(probe: &Probe, container: &Container, pod_ip: Ipv4Addr) -> bool {
    let timeout = seconds(probe.timeout_seconds.unwrap_or(1).max(1));
    if let Some(get) = &probe.http_get {
        let Some(port) = port(&get.port, container) else {
            return false;
        };
        let host = get.host.clone().unwrap_or_else(|| pod_ip.to_string());
        let path = get.path.clone().unwrap_or_else(|| "/".to_owned());
        let url = format!("http://{host}:{port}{path}");
        let Ok(client) = reqwest::Client::builder().timeout(timeout).build() else {
            return false;
        };
        return client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success() || r.status().is_redirection());
    }
    if let Some(tcp) = &probe.tcp_socket {
        let Some(port) = port(&tcp.port, container) else {
            return false;
        };
        let connect = tokio::net::TcpStream::connect(SocketAddr::from((pod_ip, port)));
        return matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_)));
    }
    // exec and gRPC probes are not run here: the container counts as ready while it runs.
    true
}
