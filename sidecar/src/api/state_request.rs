//! The state API's request shapes and their translation into store requests: pure functions,
//! table-tested. Key prefixing, TTL and concurrency options are decided here.

use super::object::Obj;
use crate::components::state::{Concurrency, DeleteRequest, KeyPrefix, SetRequest, TxOperation};
use crate::error::ApiError;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Who is asking, for key prefixes.
#[derive(Debug, Clone, Copy)]
pub struct KeyScope<'a> {
    pub prefix: &'a KeyPrefix,
    pub app_id: &'a str,
    pub store: &'a str,
    pub namespace: Option<&'a str>,
}

impl KeyScope<'_> {
    pub fn key(&self, key: &str) -> Result<String, ApiError> {
        if key.is_empty() {
            return Err(ApiError::bad_request(
                "ERR_MALFORMED_REQUEST",
                "\"key\" is a required field",
            ));
        }
        self.prefix
            .apply(key, self.app_id, self.store, self.namespace)
            .map_err(|e| {
                ApiError::bad_request("ERR_MALFORMED_REQUEST", e.to_string())
                    .with_reason("DAPR_STATE_ILLEGAL_KEY")
            })
    }
}

/// `options` of a state item.
#[derive(Debug, Default, Deserialize)]
pub struct StateOptions {
    #[serde(default)]
    pub concurrency: Option<String>,
    #[serde(default)]
    pub consistency: Option<String>,
}

/// One item of a save request, or the `request` of a transaction operation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateItem {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<Box<RawValue>>,
    #[serde(default)]
    pub etag: Option<Value>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub options: Option<StateOptions>,
    #[serde(default)]
    pub content_type: Option<String>,
}

/// A transaction request.
#[derive(Debug, Deserialize)]
pub struct TransactionRequest {
    #[serde(default)]
    pub operations: Vec<Obj<TransactionOperation>>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Deserialize)]
pub struct TransactionOperation {
    pub operation: String,
    pub request: Obj<StateItem>,
}

/// A bulk get request.
#[derive(Debug, Deserialize)]
pub struct BulkGetRequest {
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub parallelism: Option<usize>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, Value>>,
}

/// A JSON scalar as the string Dapr reads it.
pub fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn parse_concurrency(v: Option<&str>) -> Result<Concurrency, ApiError> {
    match v.map(str::trim) {
        None | Some("") | Some("last-write") => Ok(Concurrency::LastWrite),
        Some("first-write") => Ok(Concurrency::FirstWrite),
        Some(other) => Err(ApiError::bad_request(
            "ERR_MALFORMED_REQUEST",
            format!("invalid concurrency {other:?}: expected first-write or last-write"),
        )),
    }
}

pub fn check_consistency(v: Option<&str>) -> Result<(), ApiError> {
    match v.map(str::trim) {
        None | Some("") | Some("strong") | Some("eventual") => Ok(()),
        Some(other) => Err(ApiError::bad_request(
            "ERR_MALFORMED_REQUEST",
            format!("invalid consistency {other:?}: expected strong or eventual"),
        )),
    }
}

/// `ttlInSeconds` from item metadata, else from the request-level (query) metadata.
pub fn parse_ttl(
    item: Option<&BTreeMap<String, Value>>,
    request: &BTreeMap<String, String>,
) -> Result<Option<i64>, ApiError> {
    let raw = item
        .and_then(|m| m.get("ttlInSeconds"))
        .map(scalar_string)
        .or_else(|| request.get("ttlInSeconds").cloned());
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if n >= -1 => Ok(Some(n)),
        _ => Err(ApiError::bad_request(
            "ERR_MALFORMED_REQUEST",
            format!("metadata ttlInSeconds {raw:?} must be an integer of -1 or more"),
        )),
    }
}

fn etag_of(item: &StateItem) -> Option<String> {
    item.etag
        .as_ref()
        .filter(|v| !v.is_null())
        .map(scalar_string)
}

/// A save item (or transaction upsert) as a store write.
pub fn to_set(
    item: StateItem,
    scope: &KeyScope<'_>,
    query_md: &BTreeMap<String, String>,
) -> Result<SetRequest, ApiError> {
    let key = scope.key(item.key.as_deref().unwrap_or_default())?;
    let options = item.options.as_ref();
    let concurrency = parse_concurrency(options.and_then(|o| o.concurrency.as_deref()))?;
    check_consistency(options.and_then(|o| o.consistency.as_deref()))?;
    let ttl = parse_ttl(item.metadata.as_ref(), query_md)?;
    let etag = etag_of(&item);
    let value = match &item.value {
        Some(raw) => Bytes::copy_from_slice(raw.get().as_bytes()),
        None => Bytes::from_static(b"null"),
    };
    Ok(SetRequest {
        key,
        value,
        etag,
        concurrency,
        ttl,
    })
}

/// A transaction delete as a store delete.
pub fn to_delete(item: StateItem, scope: &KeyScope<'_>) -> Result<DeleteRequest, ApiError> {
    let key = scope.key(item.key.as_deref().unwrap_or_default())?;
    let concurrency =
        parse_concurrency(item.options.as_ref().and_then(|o| o.concurrency.as_deref()))?;
    Ok(DeleteRequest {
        key,
        etag: etag_of(&item),
        concurrency,
    })
}

/// A transaction's operations as store operations.
pub fn to_transaction(
    req: TransactionRequest,
    scope: &KeyScope<'_>,
    query_md: &BTreeMap<String, String>,
) -> Result<Vec<TxOperation>, ApiError> {
    let mut md = query_md.clone();
    for (k, v) in req.metadata.unwrap_or_default() {
        md.insert(k, scalar_string(&v));
    }
    req.operations
        .into_iter()
        .map(|Obj(op)| match op.operation.as_str() {
            "upsert" => to_set(op.request.0, scope, &md).map(TxOperation::Upsert),
            "delete" => to_delete(op.request.0, scope).map(TxOperation::Delete),
            other => Err(ApiError::bad_request(
                "ERR_NOT_SUPPORTED_STATE_OPERATION",
                format!("operation type {other} not supported"),
            )),
        })
        .collect()
}

/// `metadata.<k>=<v>` query parameters as component metadata.
pub fn query_metadata(query: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in query.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        if let Some(name) = decode(k).strip_prefix("metadata.") {
            out.insert(name.to_owned(), decode(v));
        }
    }
    out
}

/// One query parameter.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query.unwrap_or_default().split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> KeyScope<'static> {
        KeyScope {
            prefix: &KeyPrefix::AppId,
            app_id: "app",
            store: "s",
            namespace: None,
        }
    }

    fn item(json: &str) -> StateItem {
        serde_json::from_str(json).expect("valid item")
    }

    #[test]
    fn save_items_become_prefixed_writes() {
        let set = to_set(
            item(r#"{"key":"k","value":{"a":1},"etag":"7","options":{"concurrency":"first-write"},"metadata":{"ttlInSeconds":"10"}}"#),
            &scope(),
            &BTreeMap::new(),
        )
        .expect("valid");
        assert_eq!(set.key, "app||k");
        assert_eq!(set.value, Bytes::from_static(br#"{"a":1}"#));
        assert_eq!(set.etag.as_deref(), Some("7"));
        assert_eq!(set.concurrency, Concurrency::FirstWrite);
        assert_eq!(set.ttl, Some(10));
    }

    #[test]
    fn bad_items_are_400s_with_dapr_codes() {
        let cases = [
            (r#"{"value":1}"#, "ERR_MALFORMED_REQUEST"),
            (r#"{"key":"a||b","value":1}"#, "ERR_MALFORMED_REQUEST"),
            (
                r#"{"key":"k","value":1,"options":{"concurrency":"sometimes"}}"#,
                "ERR_MALFORMED_REQUEST",
            ),
            (
                r#"{"key":"k","value":1,"options":{"consistency":"maybe"}}"#,
                "ERR_MALFORMED_REQUEST",
            ),
            (
                r#"{"key":"k","value":1,"metadata":{"ttlInSeconds":"soon"}}"#,
                "ERR_MALFORMED_REQUEST",
            ),
            (
                r#"{"key":"k","value":1,"metadata":{"ttlInSeconds":"-5"}}"#,
                "ERR_MALFORMED_REQUEST",
            ),
        ];
        for (json, code) in cases {
            let err = to_set(item(json), &scope(), &BTreeMap::new()).expect_err(json);
            assert_eq!((err.status.as_u16(), err.code), (400, code), "{json}");
        }
        let illegal =
            to_set(item(r#"{"key":"a||b"}"#), &scope(), &BTreeMap::new()).expect_err("||");
        assert_eq!(illegal.reason, Some("DAPR_STATE_ILLEGAL_KEY"));
    }

    #[test]
    fn transactions_map_operations_and_refuse_unknown_ones() {
        let req: TransactionRequest = serde_json::from_str(
            r#"{"operations":[{"operation":"upsert","request":{"key":"a","value":"x"}},{"operation":"delete","request":{"key":"b","etag":3}}],"metadata":{"ttlInSeconds":"5"}}"#,
        )
        .expect("valid");
        let ops = to_transaction(req, &scope(), &BTreeMap::new()).expect("valid");
        assert!(matches!(&ops[0], TxOperation::Upsert(s) if s.key == "app||a" && s.ttl == Some(5)));
        assert!(
            matches!(&ops[1], TxOperation::Delete(d) if d.key == "app||b" && d.etag.as_deref() == Some("3"))
        );
        let bad: TransactionRequest =
            serde_json::from_str(r#"{"operations":[{"operation":"merge","request":{"key":"a"}}]}"#)
                .expect("valid");
        let err = to_transaction(bad, &scope(), &BTreeMap::new()).expect_err("merge");
        assert_eq!(err.code, "ERR_NOT_SUPPORTED_STATE_OPERATION");
    }

    #[test]
    fn query_metadata_is_decoded() {
        let md = query_metadata(Some("metadata.ttlInSeconds=30&x=1&metadata.a%20b=c%2Fd"));
        assert_eq!(md.get("ttlInSeconds").map(String::as_str), Some("30"));
        assert_eq!(md.get("a b").map(String::as_str), Some("c/d"));
        assert_eq!(md.len(), 2);
        assert_eq!(
            query_param(Some("consistency=strong&y"), "consistency").as_deref(),
            Some("strong")
        );
    }
}
