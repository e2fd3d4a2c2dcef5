//! Requests the HTTP parser itself refuses (or should), and header blocks it accepts but the
//! sidecar must refuse for their size.

use crate::common::raw_http::request;
use crate::generate::Bad;

/// Requests the HTTP parser itself refuses (or should): framing garbage, control bytes in
/// headers, too many or too large headers, broken request lines. Fixed, not random.
pub fn protocol_garbage() -> Vec<Bad> {
    let save =
        |headers: &[(&str, Vec<u8>)]| request("POST", "/v1.0/state/statestore", headers, b"{");
    let mut out = Vec::new();
    let mut push = |label: &'static str, bytes: Vec<u8>| out.push(Bad::new(label, "POST", bytes));
    for ctl in [0x00u8, 0x01, 0x08, 0x0b, 0x0c, b'\r', 0x1b, 0x1f, 0x7f] {
        push(
            "control byte in header value",
            save(&[("X-A", vec![b'a', ctl, b'b'])]),
        );
        push(
            "control byte in dapr-api-token",
            save(&[("dapr-api-token", vec![b't', ctl])]),
        );
    }
    push(
        "CRLF then a line without a colon",
        save(&[("X-A", b"a\r\nno colon here".to_vec())]),
    );
    push(
        "obs-fold header",
        save(&[("X-A", b"a\r\n folded".to_vec())]),
    );
    push("space before colon", b"POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nX-A : v\r\nConnection: close\r\nContent-Length: 1\r\n\r\n{".to_vec());
    push("header name with space", save(&[("X A", b"v".to_vec())]));
    push("header name with (", save(&[("X(A)", b"v".to_vec())]));
    push("empty header name", save(&[("", b"v".to_vec())]));
    push(
        "non-ASCII header name",
        save(&[("X-\u{e9}", b"v".to_vec())]),
    );
    for n in [101, 150, 300, 1000] {
        let headers: Vec<(&str, Vec<u8>)> = (0..n).map(|_| ("X-Many", b"v".to_vec())).collect();
        push("too many headers", save(&headers));
    }
    push("1 MiB header", save(&[("X-Big", vec![b'a'; 1 << 20])]));
    push("duplicate differing Content-Length", b"POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}".to_vec());
    push("Content-Length not a number", b"POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: abc\r\n\r\n{".to_vec());
    push("negative Content-Length", b"POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -1\r\n\r\n{".to_vec());
    push("Content-Length overflows u64", b"POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 99999999999999999999999\r\n\r\n{".to_vec());
    push("Transfer-Encoding not ending in chunked", b"POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: gzip\r\n\r\n{".to_vec());
    push("Transfer-Encoding chunked, gzip", b"POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked, gzip\r\n\r\n1\r\n{\r\n0\r\n\r\n".to_vec());
    push("bad chunk size", b"POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{\r\n0\r\n\r\n".to_vec());
    push(
        "request line with two spaces",
        b"GET  /v1.0/state/statestore/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    );
    push(
        "HTTP/9.9",
        b"GET /v1.0/state/statestore/k HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    );
    push(
        "lower-case version",
        b"GET /v1.0/state/statestore/k http/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    );
    push(
        "no version",
        b"GET /v1.0/state/statestore/k\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    );
    push(
        "method with (",
        b"GE(T /v1.0/state/statestore/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    );
    push(
        "raw 0xFF in the path",
        b"GET /v1.0/state/statestore/\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            .to_vec(),
    );
    push(
        "raw space in the path",
        b"GET /v1.0/state/state store/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    );
    push(
        "path without a leading slash",
        b"GET v1.0/state/statestore/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    );
    let long = format!(
        "GET /v1.0/state/statestore/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "k".repeat(70_000)
    );
    push("70 KB URI", long.into_bytes());
    push("NUL request line", b"\0\0\0\0\r\n\r\n".to_vec());
    push(
        "TLS hello on the HTTP port",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec(),
    );
    out
}

/// The statuses a protocol-level refusal may have. hyper answers these itself, before any
/// handler runs, so they carry no JSON body.
pub fn refusal_statuses(label: &str) -> &'static [u16] {
    match label {
        "too many headers" | "1 MiB header" => &[431],
        "70 KB URI" => &[414],
        // hyper calls a length it cannot represent "too large" and answers that with 431.
        "Content-Length u64::MAX" => &[413, 431],
        _ => &[400],
    }
}

/// `count` headers `X-Block-{i}` whose values total `total` bytes.
fn header_block(count: usize, total: usize) -> Vec<(&'static str, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let name: &'static str = Box::leak(format!("X-Block-{i}").into_boxed_str());
            let len = total / count + usize::from(i < total % count);
            (name, vec![b'h'; len])
        })
        .collect()
}

/// Requests whose header block hyper accepts (fewer than 100 headers, well under its buffer
/// limit) on a read, a write and both invocation forms; `kib` KiB of header values in
/// `count` headers. Labels say the size.
pub fn header_size_cases(label: &'static str, count: usize, kib: usize) -> Vec<Bad> {
    let block = header_block(count, kib << 10);
    let with = |extra: &[(&'static str, Vec<u8>)]| {
        let mut headers = block.clone();
        headers.extend_from_slice(extra);
        headers
    };
    let save = br#"[{"key":"header-block","value":1}]"#;
    vec![
        Bad::new(
            label,
            "GET",
            request("GET", "/v1.0/state/statestore/k", &with(&[]), b""),
        ),
        Bad::new(
            label,
            "POST",
            request("POST", "/v1.0/state/statestore", &with(&[]), save),
        ),
        Bad::new(
            label,
            "POST",
            request("POST", "/v1.0/invoke/echo/method/hdr", &with(&[]), b"hi"),
        ),
        Bad::new(
            label,
            "POST",
            request(
                "POST",
                "/hdr",
                &with(&[("dapr-app-id", b"echo".to_vec())]),
                b"hi",
            ),
        ),
    ]
}
