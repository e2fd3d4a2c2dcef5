//! Cold start: exec a command, time exec → first 2xx on a URL, stop the process, repeat.
//!
//! The probe is a bare HTTP/1.1 GET over a fresh connection (no client library warm-up in the
//! way), retried every `poll` while the port refuses connections or answers non-2xx. The command
//! can be placed on another CPU than the timer: the timer switches its own affinity to `cpu`
//! around the spawn, so the child inherits it without an extra `taskset` exec.

use anyhow::{Context, anyhow, bail};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// Program and arguments.
    pub command: Vec<String>,
    /// `http://host:port/path`: ready at its first 2xx.
    pub url: String,
    /// Give up on one start after this long.
    pub timeout: Duration,
    /// Time between probes.
    pub poll: Duration,
    /// Run the command on this CPU.
    pub cpu: Option<usize>,
    /// Append the command's stdout and stderr here (else discarded).
    pub log: Option<PathBuf>,
}

/// Where and what to probe.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: http::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported: {url:?}");
        }
        let host = uri.host().context("URL without a host")?;
        let port = uri.port_u16().unwrap_or(80);
        let addr = (host.trim_start_matches('[').trim_end_matches(']'), port)
            .to_socket_addrs()?
            .next()
            .with_context(|| format!("{host} does not resolve"))?;
        Ok(Target {
            addr,
            host: format!("{host}:{port}"),
            path: uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Nothing listens yet.
    Refused,
    /// An HTTP status line was read.
    Status(u16),
    /// Connected, but no usable answer (reset, timeout, garbage).
    Broken(String),
}

/// The status code of an HTTP/1.x status line at the start of `head`.
pub fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// One GET over a fresh connection.
pub fn probe(target: &Target, timeout: Duration) -> Probe {
    let mut stream = match TcpStream::connect_timeout(&target.addr, timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Probe::Refused,
        Err(e) => return Probe::Broken(format!("connect: {e}")),
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.path, target.host
    );
    if let Err(e) = stream.write_all(req.as_bytes()) {
        return Probe::Broken(format!("write: {e}"));
    }
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                head.extend_from_slice(&buf[..n]);
                if head.contains(&b'\n') {
                    break;
                }
            }
            Err(e) => return Probe::Broken(format!("read: {e}")),
        }
    }
    match parse_status_line(&head) {
        Some(code) => Probe::Status(code),
        None => Probe::Broken(format!(
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&head)
        )),
    }
}

fn spawn_on_cpu(cfg: &Config) -> anyhow::Result<Child> {
    let program = cfg.command.first().context("no command given")?;
    let mut cmd = Command::new(program);
    cmd.args(&cfg.command[1..]).stdin(Stdio::null());
    match &cfg.log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            cmd.stdout(file.try_clone()?).stderr(file);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    let Some(cpu) = cfg.cpu else {
        return cmd.spawn().with_context(|| format!("cannot run {program}"));
    };
    let own = sched_getaffinity(Pid::from_raw(0))?;
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("cannot use CPU {cpu}"))?;
    let child = cmd.spawn();
    sched_setaffinity(Pid::from_raw(0), &own)?;
    child.with_context(|| format!("cannot run {program}"))
}

/// SIGTERM, then SIGKILL after 5 s; reaps the child.
pub fn stop(child: &mut Child) -> anyhow::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = Pid::from_raw(i32::try_from(child.id())?);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    child.wait()?;
    Ok(())
}

/// Waits until nothing listens on the target any more (the previous run's port is released).
fn wait_port_free(target: &Target, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if probe(target, Duration::from_millis(200)) == Probe::Refused {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} is still answering before the start", target.addr);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts the command once and returns exec → first 2xx. The process is stopped afterwards.
pub fn run_once(cfg: &Config, target: &Target) -> anyhow::Result<Duration> {
    wait_port_free(target, Duration::from_secs(5))?;
    let start = Instant::now();
    let mut child = spawn_on_cpu(cfg)?;
    let mut last;
    let result = loop {
        match probe(target, Duration::from_secs(1)) {
            Probe::Status(code) if (200..300).contains(&code) => break Ok(start.elapsed()),
            other => last = other,
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow!(
                "the command exited ({status}) before {} answered 2xx (last probe: {last:?})",
                cfg.url
            ));
        }
        if start.elapsed() > cfg.timeout {
            break Err(anyhow!(
                "no 2xx from {} within {:?} (last probe: {last:?})",
                cfg.url,
                cfg.timeout
            ));
        }
        std::thread::sleep(cfg.poll);
    };
    stop(&mut child)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 x\r\nfoo"), Some(503));
        assert_eq!(parse_status_line(b"SSH-2.0\r\n"), None);
        assert_eq!(parse_status_line(b""), None);
    }

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:3500/v1.0/healthz/outbound").expect("parse");
        assert_eq!(t.addr.port(), 3500);
        assert_eq!(t.path, "/v1.0/healthz/outbound");
        assert!(Target::parse("https://127.0.0.1/").is_err());
    }

    #[test]
    fn refused_when_nothing_listens() {
        let port = crate::ports::free_ports(1).expect("port")[0];
        let t = Target::parse(&format!("http://127.0.0.1:{port}/")).expect("parse");
        assert_eq!(probe(&t, Duration::from_millis(200)), Probe::Refused);
    }

    #[test]
    fn a_command_that_exits_early_is_an_error() {
        let port = crate::ports::free_ports(1).expect("port")[0];
        let cfg = Config {
            command: vec!["true".into()],
            url: format!("http://127.0.0.1:{port}/"),
            // `true` exits at once; the timeout only ends a run that never gets that far.
            timeout: Duration::from_secs(30),
            poll: Duration::from_millis(1),
            cpu: None,
            log: None,
        };
        let t = Target::parse(&cfg.url).expect("parse");
        let err = run_once(&cfg, &t).expect_err("should fail");
        assert!(err.to_string().contains("exited"), "{err}");
    }
}
