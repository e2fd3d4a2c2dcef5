//! The header read timeout over real sockets, with a short timeout: a kept-alive connection may
//! idle past it, a request whose head stalls may not, nor may a new connection that sends nothing
//! or too little to choose HTTP/1 or h2.

use super::serve_timed;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_millis(300);
const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nhost: test\r\n\r\n";

async fn server() -> (std::net::SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" }));
    let stop = CancellationToken::new();
    tokio::spawn(serve_timed(listener, router, stop.clone(), None, TIMEOUT));
    (addr, stop)
}

/// Reads one response (small, with content-length) and returns its text.
async fn response(conn: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"hi") {
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(
            n > 0,
            "closed before the response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// True when the server closes the connection within `within` (EOF or reset).
async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {} // e.g. a 408 before the close
        }
    }
}

/// A connection that has had one request answered, so it is kept alive.
async fn served_once(addr: std::net::SocketAddr) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(REQUEST).await.expect("write");
    assert!(response(&mut conn).await.starts_with("HTTP/1.1 200"));
    conn
}

#[tokio::test]
async fn an_idle_kept_alive_connection_outlives_the_header_timeout() {
    let (addr, stop) = server().await;
    let mut conn = served_once(addr).await;
    // Quiet for three header timeouts: daprd keeps such a connection; so must we.
    tokio::time::sleep(TIMEOUT * 3).await;
    conn.write_all(REQUEST).await.expect("write");
    assert!(response(&mut conn).await.starts_with("HTTP/1.1 200"));
    stop.cancel();
}

#[tokio::test]
async fn a_stalled_head_on_a_kept_alive_connection_is_cut_off() {
    let (addr, stop) = server().await;
    let mut conn = served_once(addr).await;
    // Idle past one timeout first (the quiet is what is tested, not a wait for a condition).
    tokio::time::sleep(TIMEOUT * 2).await;
    // The next request starts, then stalls mid-head: its timer runs from this first byte.
    conn.write_all(b"GET /hello HTTP/1.1\r\nhost: te")
        .await
        .expect("write");
    assert!(
        !closed_within(&mut conn, TIMEOUT / 2).await,
        "cut off before its timeout"
    );
    assert!(closed_within(&mut conn, TIMEOUT * 4).await, "never cut off");
    stop.cancel();
}

/// A new connection is timed from the start, whatever it managed to send: nothing, too few bytes
/// for hyper-util to choose HTTP/1 or h2 (its sniff has no timer of its own), or a first head
/// past the sniff that then stalls.
#[tokio::test]
async fn a_new_connection_that_stalls_is_cut_off() {
    let (addr, stop) = server().await;
    for sent in [&b""[..], b"PRI * HT", b"GET /hello HTTP/1.1\r\nhost: te"] {
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        conn.write_all(sent).await.expect("write");
        assert!(
            closed_within(&mut conn, TIMEOUT * 4).await,
            "never cut off after {:?}",
            String::from_utf8_lossy(sent)
        );
    }
    stop.cancel();
}
