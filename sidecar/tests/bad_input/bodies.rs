//! Oversize bodies (by Content-Length and chunked), a body exactly at the limit, and bodies the
//! client cuts short.

use crate::common::raw_http::{self, Outcome, Payload, exchange};
use crate::generate::{Bad, pick};
use crate::judge::{Tally, judge};
use crate::{LIMIT, assert_alive};
use rand::rngs::StdRng;
use tandem_sidecar::testing::sidecar::Sidecar;

type Route<'a> = (&'a str, &'a str, &'a [(&'a str, &'a [u8])]);

const ROUTES: &[Route] = &[
    ("POST", "/v1.0/state/statestore", &[]),
    ("PUT", "/v1.0/state/statestore/bulk", &[]),
    ("POST", "/v1.0/state/statestore/transaction", &[]),
    ("PUT", "/v1.0/metadata/big", &[]),
    ("POST", "/v1.0/invoke/echo/method/big", &[]),
    ("PUT", "/big/upload", &[("dapr-app-id", b"echo")]),
    ("POST", "/v1.0/invoke/nobody/method/big", &[]),
    ("DELETE", "/v1.0/state/statestore/k", &[]),
    ("POST", "/no/route/here", &[]),
];

/// The oversize requests: every route with four declared lengths over the limit, and chunked
/// where the route reads the body.
fn oversize_requests() -> Vec<Bad> {
    let lengths = [
        (LIMIT + 1).to_string(),
        (LIMIT + 12_345).to_string(),
        (10u64 << 30).to_string(),
        // The largest length hyper represents; u64::MAX itself is in the protocol test.
        (u64::MAX - 2).to_string(),
    ];
    let mut oversize = Vec::new();
    for (method, target, headers) in ROUTES {
        let headers: Vec<(&str, Vec<u8>)> = headers.iter().map(|(k, v)| (*k, v.to_vec())).collect();
        for length in &lengths {
            let mut head = raw_http::head(method, target, &headers);
            head.extend_from_slice(format!("Content-Length: {length}\r\n\r\n").as_bytes());
            head.extend_from_slice(&[b'x'; 1000]);
            oversize.push(Bad::new("oversize Content-Length", method, head));
        }
        // Without a length the size is only known by reading, so only routes that read the
        // body can say 413 (a DELETE or an unresolvable invoke answers before reading, as Dapr).
        if matches!(
            *target,
            "/v1.0/state/statestore/k" | "/no/route/here" | "/v1.0/invoke/nobody/method/big"
        ) {
            continue;
        }
        let invocation = target.starts_with("/v1.0/invoke/")
            || headers.iter().any(|(name, _)| *name == "dapr-app-id");
        let mut head = raw_http::head(method, target, &headers);
        head.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        oversize.push(Bad {
            label: if invocation {
                "oversize chunked invocation"
            } else {
                "oversize chunked"
            },
            method: method.to_string(),
            send: Payload::Chunked {
                head,
                total: LIMIT + 700_000,
            },
            allow_invoke_500: false,
        });
    }
    oversize
}

/// Oversize bodies: a JSON 413, answered before the body is read when Content-Length says so.
/// Then a body exactly at the limit, which is not too large.
pub async fn oversize(s: &mut Sidecar, big: &mut Tally) {
    for bad in &oversize_requests() {
        let outcome = exchange(s.http_port, bad.send.clone(), false).await;
        if bad.label == "oversize chunked invocation" {
            judge_oversize_invocation(bad, outcome, big);
        } else {
            judge(bad, outcome, big, true, |status, _| status == 413);
        }
    }
    assert_alive(s, "oversize bodies");
    // Exactly at the limit is not too large: read whole, then refused as bad JSON.
    let at_limit = Bad::new(
        "exactly 4 MiB of bad JSON",
        "POST",
        raw_http::request("POST", "/v1.0/state/statestore", &[], &vec![b'x'; LIMIT]),
    );
    let outcome = exchange(s.http_port, at_limit.send.clone(), false).await;
    judge(&at_limit, outcome, big, true, |status, code| {
        status == 400 && code == Some("ERR_MALFORMED_REQUEST")
    });
}

/// An oversize chunked body on an invocation (changed expectation, decided by the lead): the
/// sidecar streams the body to the app, and the app may start answering before the limit is
/// crossed, after which the sidecar can only break the answer off. So either a JSON 413, or an
/// answer whose body does not complete (a broken chunked stream, the connection closed before
/// the last chunk); never a cleanly completed 2xx (or anything but 413). A declared
/// Content-Length over the limit, and every other route, stay a strict JSON 413.
fn judge_oversize_invocation(bad: &Bad, outcome: Outcome, big: &mut Tally) {
    match outcome {
        Outcome::Incomplete { status, .. } => big.accept_incomplete(bad.label, status),
        outcome => judge(bad, outcome, big, true, |status, _| status == 413),
    }
}

/// Bodies cut short: the client hangs up mid-body. Either no answer at all (nobody to answer)
/// or a JSON 4xx. Returns how many closed silently.
pub async fn cut_short(s: &mut Sidecar, rng: &mut StdRng, cut: &mut Tally) -> usize {
    let mut silent = 0;
    for i in 0..120 {
        let (method, target) = *pick(
            rng,
            &[
                ("POST", "/v1.0/state/statestore"),
                ("PUT", "/v1.0/state/statestore/bulk"),
                ("POST", "/v1.0/state/statestore/transaction"),
                ("PUT", "/v1.0/metadata/cut"),
                ("POST", "/v1.0/invoke/echo/method/cut"),
            ],
        );
        let mut bytes =
            format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n").into_bytes();
        if i % 2 == 0 {
            bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n5\r\n[{\"ke\r\n100\r\nabc");
        } else {
            bytes.extend_from_slice(b"Content-Length: 1000\r\n\r\n[{\"key\":\"cut\",\"va");
        }
        let bad = Bad {
            label: if i % 2 == 0 {
                "truncated chunked body"
            } else {
                "body shorter than Content-Length"
            },
            method: method.to_owned(),
            send: Payload::ThenHangUp(bytes),
            allow_invoke_500: false,
        };
        match exchange(s.http_port, bad.send.clone(), false).await {
            Outcome::ClosedSilently => {
                silent += 1;
                cut.sent += 1;
            }
            outcome => judge(&bad, outcome, cut, true, |status, _| {
                (400..500).contains(&status)
            }),
        }
    }
    assert_alive(s, "truncated bodies");
    silent
}

/// A keep-alive client (no `Connection: close`, as Node's and most SDKs' agents send) whose
/// declared body is over the limit gets its 413 with `Connection: close`, and the sidecar
/// closes the connection: the unread body cannot be taken for the next request, and the client
/// knows not to reuse the socket (else its next request meets a closed socket, `EPIPE`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_declared_body_closes_a_keep_alive_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let s =
        tandem_sidecar::testing::sidecar::SidecarBuilder::new(crate::BIN, "keepalive", dir.path())
            .start();
    s.wait_ready(std::time::Duration::from_secs(30));
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", s.http_port))
        .await
        .expect("connect");
    let head = format!(
        "PUT /v1.0/metadata/big HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\nContent-Length: {}\r\n\r\n",
        LIMIT + 1
    );
    socket.write_all(head.as_bytes()).await.expect("send head");
    socket
        .write_all(&[b'x'; 1024])
        .await
        .expect("send some body");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        socket.read_to_end(&mut answer),
    )
    .await;
    assert!(
        read.is_ok(),
        "the sidecar kept the connection open after its 413"
    );
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
}
