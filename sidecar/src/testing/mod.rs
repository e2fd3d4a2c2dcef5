//! Test support shared by the unit tests and the integration tests (feature `test-util`): real
//! backend servers and real sidecar processes on free loopback ports, stopped by PID on drop, and
//! a small echo app.

pub mod dns_server;
pub mod echo_app;
pub mod mosquitto_server;
pub mod postgres_server;
pub mod rabbitmq_server;
pub mod redis_server;
pub mod sidecar;

pub use mosquitto_server::MosquittoServer;
pub use postgres_server::PostgresServer;
pub use rabbitmq_server::RabbitServer;
pub use redis_server::RedisServer;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// A port that was free a moment ago on 127.0.0.1. Ports come from below the kernel's
/// ephemeral range (where outgoing connections get theirs) and are never handed out twice by one
/// test process, so parallel tests do not race for the same port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Start each test process at a different place so consecutive runs do not reuse ports.
    let _ = NEXT.compare_exchange(
        0,
        15_000 + std::process::id() % 10_000,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..20_000 {
        let candidate = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = u16::try_from(15_000 + candidate % 17_000).unwrap_or(15_000);
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// The status of a plain `GET path` on 127.0.0.1:port, or `None` when nothing answers. Blocking
/// and dependency-free, for polling loops.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A new, empty directory under the system temp dir, named `<prefix>-<pid>-<nanos>-<n>`.
pub fn fresh_dir(prefix: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for n in 0..100u32 {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}-{n}", std::process::id()));
        if std::fs::create_dir(&dir).is_ok() {
            return dir;
        }
    }
    panic!("could not create a temp dir for {prefix}");
}
