//! Test support for Tandem's crates (dev-only, never published): real backends started on free
//! loopback ports — [`RedisServer`], [`PostgresServer`], [`MosquittoServer`], [`RabbitServer`]
//! — and a [`dns_server::DnsServer`] answering from a table the test edits. Each server runs the
//! real binary as a child process in a fresh temp directory and is stopped by PID on drop, so a
//! test sees the wire protocol its component will see in production.
//!
//! [`free_port`] hands out ports that no other test in the process gets; [`http_status`] and
//! [`fresh_dir`] are the small blocking helpers the servers (and their users) poll with.

pub mod dns_server;
pub mod mosquitto_server;
pub mod postgres_server;
pub mod rabbitmq_server;
pub mod redis_server;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_not_handed_out_twice() {
        let ports: std::collections::BTreeSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
    }

    #[test]
    fn fresh_dirs_are_new_and_empty() {
        let (a, b) = (fresh_dir("testkit"), fresh_dir("testkit"));
        assert_ne!(a, b);
        assert_eq!(std::fs::read_dir(&a).map(Iterator::count).ok(), Some(0));
        let _ = (std::fs::remove_dir(&a), std::fs::remove_dir(&b));
    }

    #[test]
    fn http_status_is_none_when_nothing_listens() {
        assert_eq!(http_status(free_port(), "/"), None);
    }
}
