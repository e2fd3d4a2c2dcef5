//! Raw HTTP/2 frame garbage on the gRPC port, below any gRPC library: each case opens a TCP
//! connection, sends the client preface and its SETTINGS, then frames that break the protocol.
//! A protocol violation must end the connection (GOAWAY and close) within a deadline; an
//! unknown frame type is ignored, as RFC 9113 requires, and the connection keeps working.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// What a case must lead to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The server ends the connection.
    Ended,
    /// The server ignores it and still answers a PING.
    Ignored,
}

fn cases() -> Vec<(&'static str, Expect, Vec<u8>)> {
    let mut out = vec![
        ("DATA on stream 0", Expect::Ended, frame(DATA, 0, 0, b"abc")),
        (
            "HEADERS with a garbage HPACK block",
            Expect::Ended,
            frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0xff; 40]),
        ),
        (
            "a frame over the maximum frame size",
            Expect::Ended,
            frame(DATA, 0, 1, &vec![0u8; 20_000]),
        ),
        (
            "SETTINGS of a length not a multiple of 6",
            Expect::Ended,
            frame(SETTINGS, 0, 0, &[0, 1, 0]),
        ),
        (
            "WINDOW_UPDATE of zero on the connection",
            Expect::Ended,
            frame(WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]),
        ),
        (
            "HEADERS on an even (server) stream",
            Expect::Ended,
            frame(HEADERS, END_HEADERS, 2, &[0x83, 0x86]),
        ),
        (
            "CONTINUATION with no HEADERS",
            Expect::Ended,
            frame(CONTINUATION, END_HEADERS, 1, &[0x83]),
        ),
        (
            "PUSH_PROMISE from a client",
            Expect::Ended,
            frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2, 0x83]),
        ),
        (
            "padding longer than the frame",
            Expect::Ended,
            frame(HEADERS, END_HEADERS | PADDED, 1, &[200, 0x83]),
        ),
        (
            "RST_STREAM on an idle stream",
            Expect::Ended,
            frame(RST_STREAM, 0, 7, &[0, 0, 0, 8]),
        ),
        (
            "PING of the wrong length",
            Expect::Ended,
            frame(PING, 0, 0, &[1, 2, 3]),
        ),
        (
            "an unknown frame type",
            Expect::Ignored,
            frame(0xfa, 0xff, 1, b"whatever"),
        ),
    ];
    let mut cut = frame(DATA, 0, 1, &[0u8; 100]);
    cut.truncate(20);
    out.push(("a frame cut short, then EOF", Expect::Ended, cut));
    out
}

/// Reads until the server closes the connection; `false` if it is still open after `wait`.
async fn closed_within(tcp: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(wait, read_all).await.is_ok()
}

/// Whether a PING is acknowledged (the connection still works).
async fn answers_ping(tcp: &mut TcpStream) -> bool {
    if tcp.write_all(&frame(PING, 0, 0, &[7; 8])).await.is_err() {
        return false;
    }
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let wait = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            // A PING ack: type 6, flag ACK, our payload.
            if seen
                .windows(9)
                .any(|w| w[3] == PING && w[4] == 1 && w[5..9] == [0; 4])
                && seen.windows(8).any(|w| w == [7; 8])
            {
                return true;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or(false)
}

/// Runs every case; panics on the first that is not handled as it must be. Returns each case
/// with what happened, for the report.
pub async fn run_all(port: u16) -> Vec<(&'static str, &'static str)> {
    let mut report = Vec::new();
    for (label, expect, bytes) in cases() {
        let mut tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        hello.extend(bytes);
        tcp.write_all(&hello).await.expect("write");
        let outcome = match expect {
            Expect::Ended => {
                if label.ends_with("then EOF") {
                    let _ = tcp.shutdown().await;
                }
                assert!(
                    closed_within(&mut tcp, Duration::from_secs(5)).await,
                    "{label}: the connection stayed open"
                );
                "connection ended"
            }
            Expect::Ignored => {
                assert!(
                    answers_ping(&mut tcp).await,
                    "{label}: the connection broke"
                );
                "ignored, PING answered"
            }
        };
        report.push((label, outcome));
    }
    // Plain garbage instead of the preface.
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.write_all(b"GARBAGE GARBAGE GARBAGE GARBAGE\r\n\r\n")
        .await
        .expect("write");
    assert!(
        closed_within(&mut tcp, Duration::from_secs(5)).await,
        "garbage instead of the preface: the connection stayed open"
    );
    report.push(("garbage instead of the preface", "connection ended"));
    report
}
