//! The seeded generator of malformed API requests, one kind per call; the kinds are grouped by
//! what they hit: state saves, other state calls, and everything else.

mod routes;
mod save;
mod state;

use crate::common::raw_http::Payload;
use rand::Rng;
use rand::rngs::StdRng;

/// One malformed request and what may be said about it.
pub struct Bad {
    pub label: &'static str,
    pub method: String,
    pub send: Payload,
    /// Dapr answers 500 `ERR_DIRECT_INVOKE` when no app id resolves.
    pub allow_invoke_500: bool,
}

impl Bad {
    pub fn new(label: &'static str, method: &str, bytes: Vec<u8>) -> Bad {
        Bad {
            label,
            method: method.to_owned(),
            send: Payload::Whole(bytes),
            allow_invoke_500: false,
        }
    }

    fn invoke_500(mut self) -> Bad {
        self.allow_invoke_500 = true;
        self
    }

    pub fn bytes(&self) -> &[u8] {
        self.send.first_bytes()
    }
}

pub fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

pub fn alnum(rng: &mut StdRng, len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Bytes that can never be valid JSON (they start with a byte no JSON text starts with).
pub fn garbage(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let len = rng.random_range(1..=max);
    let mut out: Vec<u8> = (0..len).map(|_| rng.random::<u8>()).collect();
    out[0] = *pick(rng, &[b'}', b']', b')', 0xff, b'#', b'<', b'\'']);
    out
}

/// A Content-Type (as raw bytes) to go with a malformed body: Dapr does not insist on one.
pub fn content_type(rng: &mut StdRng) -> Vec<(&'static str, Vec<u8>)> {
    let types: &[&[u8]] = &[
        b"application/json",
        b"text/plain",
        b"application/xml",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=zzz",
        b"application/json; charset=utf-16",
        b"\xff\xfe/\xfd",
        b"",
        b";;;===",
    ];
    if rng.random_bool(0.2) {
        return vec![];
    }
    vec![("Content-Type", pick(rng, types).to_vec())]
}

pub fn nested(depth: usize, open: &str, close: &str, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

pub const UNKNOWN_STORES: &[&str] = &[
    "nostore",
    "statestore2",
    "STATESTORE",
    "state%20store",
    "%FF",
];

pub fn store(rng: &mut StdRng) -> &'static str {
    if rng.random_bool(0.85) {
        "statestore"
    } else {
        pick::<&str>(rng, UNKNOWN_STORES)
    }
}

/// Keys that must still be absent at the end: every request carrying them was refused.
pub struct Absent(pub Vec<String>);

/// One malformed API request; the keys of writes that must be refused go to `absent`.
pub fn malformed(rng: &mut StdRng, absent: &mut Absent) -> Bad {
    let write_method = *pick(rng, &["POST", "PUT"]);
    let fresh = format!("fz-{}", alnum(rng, 12));
    match rng.random_range(0..21) {
        0 => save::invalid_json(rng, write_method, &fresh),
        1 => save::wrong_shape(rng, absent, write_method, fresh),
        2 => save::illegal_key(rng, absent, write_method, fresh),
        3 => save::bad_ttl(rng, absent, write_method, fresh),
        4 => save::bad_options(rng, absent, write_method, fresh),
        5 => state::get_bad(rng, &fresh),
        6 => state::delete_bad(rng, &fresh),
        7 => state::bulk_wrong_shape(rng, write_method),
        8 => state::transaction_bad(rng, absent, write_method, fresh),
        9 => routes::secrets_bad(rng),
        10 => routes::metadata_bad(rng, &fresh),
        11 => routes::invoke_unknown_app(rng),
        12 => routes::invoke_invalid_app_id(rng),
        13 => routes::invoke_forbidden_method_chars(rng),
        14 => routes::invoke_no_app_id(rng),
        15 => routes::wrong_method_or_route(rng),
        16 => routes::obs_text_headers(rng),
        17 => routes::many_headers(rng),
        18 => state::unknown_state_store(rng, write_method),
        19 => state::invalid_utf8_in_json(rng),
        _ => routes::lf_injected_header(rng),
    }
}
