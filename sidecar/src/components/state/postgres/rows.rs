//! How requests become rows: the statements, value encoding (jsonb or base64), ETags as
//! `xmin`, and requests validated before any SQL runs.

use super::super::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The statements, built once for the configured table. `$1` key, `$2` value (JSON text),
/// `$3` isbinary, `$4` seconds to live (NULL: forever), `$5` ETag.
pub(super) struct Sql {
    pub(super) get: String,
    pub(super) upsert: String,
    pub(super) insert_new: String,
    pub(super) update_if: String,
    pub(super) delete: String,
    pub(super) delete_if: String,
    pub(super) lock: String,
    pub(super) sweep: String,
    pub(super) scan: String,
}

const LIVE: &str = "(expiredate IS NULL OR expiredate > now())";
const EXPIRY: &str = "now() + $4::bigint * interval '1 second'";

impl Sql {
    pub(super) fn new(t: &str) -> Sql {
        let insert = format!(
            "INSERT INTO {t} AS cur (key, value, isbinary, expiredate) VALUES ($1, $2::text::jsonb, $3, {EXPIRY})
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, isbinary = EXCLUDED.isbinary"
        );
        Sql {
            get: format!(
                "SELECT CASE WHEN isbinary THEN value #>> '{{}}' ELSE value::text END, isbinary, xmin::text, expiredate
                 FROM {t} WHERE key = $1 AND {LIVE}"
            ),
            upsert: format!("{insert}, updatedate = now(), expiredate = EXCLUDED.expiredate"),
            // An expired row counts as absent: it is replaced as if new.
            insert_new: format!(
                "{insert}, insertdate = now(), updatedate = NULL, expiredate = EXCLUDED.expiredate
                 WHERE cur.expiredate IS NOT NULL AND cur.expiredate <= now()"
            ),
            update_if: format!(
                "UPDATE {t} SET value = $2::text::jsonb, isbinary = $3, updatedate = now(), expiredate = {EXPIRY}
                 WHERE key = $1 AND xmin = $5::text::xid AND {LIVE}"
            ),
            delete: format!("DELETE FROM {t} WHERE key = $1"),
            delete_if: format!("DELETE FROM {t} WHERE key = $1 AND xmin = $2::text::xid AND {LIVE}"),
            lock: format!("SELECT key, xmin::text FROM {t} WHERE key = ANY($1) AND {LIVE} ORDER BY key FOR UPDATE"),
            sweep: format!("DELETE FROM {t} WHERE expiredate IS NOT NULL AND expiredate <= now()"),
            scan: format!(
                "SELECT CASE WHEN isbinary THEN value #>> '{{}}' ELSE value::text END, isbinary, xmin::text, expiredate, key
                 FROM {t} WHERE starts_with(key, $1) AND key COLLATE \"C\" > $2 AND {LIVE}
                 ORDER BY key COLLATE \"C\" LIMIT $3"
            ),
        }
    }
}

/// An ETag is an `xmin`, a 32-bit transaction id; returned in canonical form.
pub(super) fn xmin(etag: &str) -> StoreResult<String> {
    etag.trim()
        .parse::<u32>()
        .map(|n| n.to_string())
        .map_err(|_| StoreError::EtagInvalid(etag.to_owned()))
}

/// JSON goes in as jsonb, anything else as a base64 JSON string. `\u0000` is valid JSON that
/// jsonb refuses, so such values are stored as binary too.
pub(super) fn encode(value: &[u8]) -> (String, bool) {
    let json = serde_json::from_slice::<serde_json::Value>(value).is_ok()
        && !value.windows(6).any(|w| w == br"\u0000");
    match std::str::from_utf8(value) {
        Ok(text) if json => (text.to_owned(), false),
        _ => (format!("\"{}\"", BASE64.encode(value)), true),
    }
}

/// jsonb prints `{"a": 1, "b": [1, 2]}`; apps get the compact form back, as they usually sent
/// it. Only whitespace outside strings is removed.
pub(super) fn compact_json(text: &str) -> Vec<u8> {
    let (mut out, mut in_string, mut escaped) = (Vec::with_capacity(text.len()), false, false);
    for &b in text.as_bytes() {
        if in_string {
            (escaped, in_string) = (!escaped && b == b'\\', in_string && (escaped || b != b'"'));
        } else if b == b'"' {
            in_string = true;
        } else if b.is_ascii_whitespace() {
            continue;
        }
        out.push(b);
    }
    out
}

/// One write, validated and encoded before any SQL runs.
pub(super) struct Write<'a> {
    pub(super) key: &'a str,
    pub(super) value: String,
    pub(super) binary: bool,
    pub(super) ttl: Option<i64>,
    pub(super) etag: Option<String>,
    pub(super) first_write: bool,
}

impl<'a> Write<'a> {
    pub(super) fn new(r: &'a SetRequest) -> StoreResult<Self> {
        let (value, binary) = encode(&r.value);
        Ok(Write {
            key: &r.key,
            value,
            binary,
            ttl: expiry_seconds(r.ttl),
            etag: r.etag.as_deref().map(xmin).transpose()?,
            first_write: r.etag.is_none() && r.concurrency == Concurrency::FirstWrite,
        })
    }
}

/// One operation of a transaction, validated.
pub(super) enum Op<'a> {
    Set(Write<'a>),
    Delete {
        key: &'a str,
        etag: Option<String>,
    },
    /// A fence: the key must exist with this ETag; nothing is written.
    Check {
        key: &'a str,
        etag: Option<String>,
    },
}

impl<'a> Op<'a> {
    pub(super) fn new(op: &'a TxOperation) -> StoreResult<Self> {
        Ok(match op {
            TxOperation::Upsert(r) => Op::Set(Write::new(r)?),
            TxOperation::Delete(r) => Op::Delete {
                key: &r.key,
                etag: r.etag.as_deref().map(xmin).transpose()?,
            },
            TxOperation::Check(r) => Op::Check {
                key: &r.key,
                etag: Some(xmin(&r.etag)?),
            },
        })
    }

    pub(super) fn key(&self) -> &'a str {
        match self {
            Op::Set(w) => w.key,
            Op::Delete { key, .. } | Op::Check { key, .. } => key,
        }
    }

    pub(super) fn etag(&self) -> Option<&String> {
        match self {
            Op::Set(w) => w.etag.as_ref(),
            Op::Delete { etag, .. } | Op::Check { etag, .. } => etag.as_ref(),
        }
    }
}
