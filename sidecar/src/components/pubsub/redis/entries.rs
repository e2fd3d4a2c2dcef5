//! Reading Redis replies: the entries of `XREADGROUP` and `XAUTOCLAIM` answers, in RESP2 and RESP3
//! shapes, as plain functions over `redis::Value`.

use ::redis::Value;

/// One stream entry: its id and its `data` field (`None` when the entry has none).
#[derive(Debug, PartialEq)]
pub(super) struct Entry {
    pub(super) id: String,
    pub(super) data: Option<Vec<u8>>,
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

pub(super) fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => &[],
    }
}

/// `[id, [field, value, …]]` (RESP2) — or a fields map (RESP3).
pub(super) fn parse_entry(v: &Value) -> Option<Entry> {
    let [id, fields] = items(v) else {
        return None;
    };
    let id = text(id)?;
    let mut data = None;
    let mut take = |k: &Value, val: &Value| {
        if text(k).as_deref() == Some("data") {
            data = match val {
                Value::BulkString(b) => Some(b.clone()),
                Value::SimpleString(s) => Some(s.clone().into_bytes()),
                _ => None,
            };
        }
    };
    match fields {
        Value::Map(pairs) => pairs.iter().for_each(|(k, val)| take(k, val)),
        other => items(other)
            .chunks_exact(2)
            .for_each(|pair| take(&pair[0], &pair[1])),
    }
    Some(Entry { id, data })
}

pub(super) fn parse_entries(v: &Value) -> Vec<Entry> {
    items(v).iter().filter_map(parse_entry).collect()
}

/// The entries of an `XREADGROUP` reply for one stream (nil when the block timed out).
pub(super) fn parse_read(v: &Value) -> Vec<Entry> {
    match v {
        Value::Map(streams) => streams
            .iter()
            .flat_map(|(_, entries)| parse_entries(entries))
            .collect(),
        other => items(other)
            .iter()
            .flat_map(|stream| match items(stream) {
                [_, entries] => parse_entries(entries),
                _ => Vec::new(),
            })
            .collect(),
    }
}

/// The claimed entries of an `XAUTOCLAIM` reply: `[next, [entries…], [deleted…]]`.
pub(super) fn parse_claim(v: &Value) -> Vec<Entry> {
    match items(v) {
        [_, entries, ..] => parse_entries(entries),
        _ => Vec::new(),
    }
}
