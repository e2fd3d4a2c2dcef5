//! A throwaway `redis-server` on a free loopback port, for tests of the Redis store. Nothing is
//! persisted (`--save ''`, no AOF) and the process is killed when the handle is dropped.

use crate::free_port;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    /// The address it listens on (and is pinged on).
    bind: Ipv4Addr,
    /// Set for a durable server: its append-only file lives here and survives a kill.
    data_dir: Option<tempfile::TempDir>,
}

/// How long a fresh server gets to answer PING before the attempt is abandoned.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// A free port can be taken by someone else before the server binds it; try a few.
const ATTEMPTS: usize = 3;

fn find_redis_server() -> PathBuf {
    let mut candidates: Vec<PathBuf> = ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| PathBuf::from(dir).join("redis-server"))
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("redis-server")));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("redis-server not found in /usr/bin, /usr/local/bin or PATH; run scripts/test.sh, which installs it")
    })
}

/// Whether a server on `port` answers `PING` with `+PONG`.
fn answers_ping(bind: Ipv4Addr, port: u16) -> bool {
    let addr = SocketAddr::from((bind, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && reply.starts_with(b"+PONG")
}

impl RedisServer {
    /// Starts a server and returns once it answers PING. Blocks the calling thread briefly
    /// (test code only).
    pub fn start() -> RedisServer {
        Self::start_with(None, Ipv4Addr::LOCALHOST)
    }

    /// A server listening on `bind` instead of loopback (for example a test bridge's address that
    /// processes in other network namespaces reach).
    pub fn start_on(bind: Ipv4Addr) -> RedisServer {
        Self::start_with(None, bind)
    }

    /// A server that fsyncs every write to an append-only file (`appendfsync always`), so what
    /// it acknowledged survives [`RedisServer::kill`] and comes back with
    /// [`RedisServer::restart`]: the broker-outage tests need a broker that does not lose data.
    pub fn start_durable() -> RedisServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir for redis: {e}"));
        Self::start_with(Some(dir), Ipv4Addr::LOCALHOST)
    }

    fn spawn(
        bin: &std::path::Path,
        bind: Ipv4Addr,
        port: u16,
        data_dir: Option<&tempfile::TempDir>,
    ) -> Child {
        let mut cmd = Command::new(bin);
        cmd.args(["--port", &port.to_string(), "--bind", &bind.to_string()]);
        if !bind.is_loopback() {
            // Protected mode refuses non-loopback clients of a server without a password.
            cmd.args(["--protected-mode", "no"]);
        }
        match data_dir {
            Some(dir) => cmd
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                ])
                .arg("--dir")
                .arg(dir.path()),
            None => cmd.args(["--save", "", "--appendonly", "no"]),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()))
    }

    fn start_with(data_dir: Option<tempfile::TempDir>, bind: Ipv4Addr) -> RedisServer {
        let bin = find_redis_server();
        let mut last_failure = String::new();
        for _ in 0..ATTEMPTS {
            let port = free_port();
            let mut child = Self::spawn(&bin, bind, port, data_dir.as_ref());
            let deadline = Instant::now() + START_DEADLINE;
            loop {
                if answers_ping(bind, port) {
                    return RedisServer {
                        child,
                        port,
                        bind,
                        data_dir,
                    };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last_failure = format!("redis-server on port {port} exited with {status}");
                    break;
                }
                if Instant::now() > deadline {
                    last_failure =
                        format!("redis-server on port {port} did not answer PING in time");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start redis-server: {last_failure}");
    }

    /// `<bind address>:port` (`127.0.0.1:port` by default), the form `redisHost` takes.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.bind, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGKILLs the server (a crash: no shutdown save).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port (and, when durable, the same data) and waits
    /// until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let bin = find_redis_server();
        self.child = Self::spawn(&bin, self.bind, self.port, self.data_dir.as_ref());
        let deadline = Instant::now() + START_DEADLINE;
        while !answers_ping(self.bind, self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not come back on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
