//! A raw HTTP/1.1 client for tests that must control every byte: the exact request bytes go out
//! (written while the answer is read, so an early answer is never lost to a reset), and the
//! answer is parsed by hand, de-chunking included. Nothing is normalised on the way.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long [`exchange`] waits for a whole answer.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Names lower-cased, values trimmed, in wire order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the Content-Type says JSON.
    pub fn has_json_content_type(&self) -> bool {
        self.header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    }

    /// `Some(errorCode)` when the body is a JSON object with a non-empty string `errorCode`.
    pub fn json_error_code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        let code = v.get("errorCode")?.as_str()?;
        (!code.is_empty()).then(|| code.to_owned())
    }

    /// `Some(message)` when the body is a JSON object with a string `message`.
    pub fn json_message(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        Some(v.get("message")?.as_str()?.to_owned())
    }
}

/// What happened to one raw request.
#[derive(Debug)]
pub enum Outcome {
    /// A complete answer.
    Answer(RawResponse),
    /// A complete head, but the body ended before its framing said it would (a chunked body
    /// without its last chunk, fewer bytes than Content-Length).
    Incomplete { status: u16, error: String },
    /// The server closed without sending a byte.
    ClosedSilently,
    /// Anything else: no connection, a reset before any byte, no complete head, a timeout.
    Broken(String),
}

impl Outcome {
    /// The answer, or why there is none.
    pub fn into_result(self) -> Result<RawResponse, String> {
        match self {
            Outcome::Answer(r) => Ok(r),
            Outcome::Incomplete { status, error } => {
                Err(format!("{status} with an incomplete body: {error}"))
            }
            Outcome::ClosedSilently => Err("closed without an answer".to_owned()),
            Outcome::Broken(e) => Err(e),
        }
    }
}

/// How the request bytes are sent.
#[derive(Debug, Clone)]
pub enum Payload {
    /// All at once.
    Whole(Vec<u8>),
    /// These bytes, then the write side is shut (a body cut short).
    ThenHangUp(Vec<u8>),
    /// A chunked request head, then `total` body bytes in 64 KiB chunks, then the last chunk.
    Chunked { head: Vec<u8>, total: usize },
}

impl Payload {
    /// The bytes that go out first (for a chunked payload, its head).
    pub fn first_bytes(&self) -> &[u8] {
        match self {
            Payload::Whole(b) | Payload::ThenHangUp(b) => b,
            Payload::Chunked { head, .. } => head,
        }
    }
}

/// A request head: the request line, `Host`, `Connection: close` and `headers` (values are
/// bytes, obs-text allowed), without the blank line that ends the head.
pub fn head(method: &str, target: &str, headers: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")
        .into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A whole request: [`head`], a Content-Length for a non-empty body, the blank line, the body.
pub fn request(method: &str, target: &str, headers: &[(&str, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut out = head(method, target, headers);
    if !body.is_empty() {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Sends `payload` and reads the answer to the end of the connection, within [`EXCHANGE_TIMEOUT`].
pub async fn exchange(port: u16, payload: Payload, head_only: bool) -> Outcome {
    exchange_within(port, payload, head_only, EXCHANGE_TIMEOUT).await
}

/// [`exchange`] with another time limit.
pub async fn exchange_within(
    port: u16,
    payload: Payload,
    head_only: bool,
    limit: Duration,
) -> Outcome {
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut rd, wr) = stream.into_split();
        let writer = tokio::spawn(write_payload(wr, payload));
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut read_error = None;
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    read_error = Some(e.to_string());
                    break;
                }
            }
        }
        writer.abort();
        if buf.is_empty() {
            return Ok(match read_error {
                Some(e) => Outcome::Broken(format!("read: {e}")),
                None => Outcome::ClosedSilently,
            });
        }
        Ok::<_, String>(parse(&buf, head_only))
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Outcome::Broken(e),
        Err(_) => Outcome::Broken(format!("no answer within {limit:?}")),
    }
}

/// Writes the payload, ignoring write errors (the answer, if any, tells what happened).
async fn write_payload(
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    payload: Payload,
) -> tokio::net::tcp::OwnedWriteHalf {
    match payload {
        Payload::Whole(bytes) => {
            let _ = wr.write_all(&bytes).await;
        }
        Payload::ThenHangUp(bytes) => {
            let _ = wr.write_all(&bytes).await;
            let _ = wr.shutdown().await;
        }
        Payload::Chunked { head, total } => {
            if wr.write_all(&head).await.is_err() {
                return wr;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                let mut frame = format!("{n:x}\r\n").into_bytes();
                frame.extend_from_slice(&chunk[..n]);
                frame.extend_from_slice(b"\r\n");
                if wr.write_all(&frame).await.is_err() {
                    return wr;
                }
                sent += n;
            }
            let _ = wr.write_all(b"0\r\n\r\n").await;
        }
    }
    wr
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A chunked body's payload; an error when it ends before the last chunk.
pub fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("chunk size line not terminated")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]).into_owned();
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|e| format!("{size_text:?}: {e}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunk truncated".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Parses everything the server sent. `head_only`: the request was a HEAD (no body follows).
pub fn parse(raw: &[u8], head_only: bool) -> Outcome {
    let Some(end) = find(raw, b"\r\n\r\n") else {
        return Outcome::Broken(format!(
            "no complete response head in {} bytes: {:?}",
            raw.len(),
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        ));
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let Some(status) = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return Outcome::Broken(format!("bad status line {status_line:?}"));
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body = if head_only || status == 204 || status == 304 {
        Ok(Vec::new())
    } else if chunked {
        dechunk(rest).map_err(|e| format!("broken chunked body: {e}"))
    } else if let Some(n) = length {
        if rest.len() < n {
            Err(format!("body truncated: {} of {n} bytes", rest.len()))
        } else {
            Ok(rest[..n].to_vec())
        }
    } else {
        Ok(rest.to_vec())
    };
    match body {
        Ok(body) => Outcome::Answer(RawResponse {
            status,
            headers,
            body,
        }),
        Err(error) => Outcome::Incomplete { status, error },
    }
}
