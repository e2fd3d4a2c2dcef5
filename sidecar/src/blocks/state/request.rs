//! The state block's requests and their translation into store requests: pure functions,
//! table-tested. Key prefixing, TTL and concurrency options are decided here, once for every
//! front end.

use crate::blocks::error::{BlockError, Code};
use crate::components::state::{Concurrency, DeleteRequest, KeyPrefix, SetRequest, TxOperation};
use bytes::Bytes;
use std::collections::BTreeMap;

/// One item to save, or the item of a transaction operation, as any front end reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SaveItem {
    pub key: String,
    /// The stored bytes (the HTTP API stores the item's JSON `value` as written).
    pub value: Bytes,
    pub etag: Option<String>,
    /// Item metadata (`ttlInSeconds`, …).
    pub metadata: BTreeMap<String, String>,
    pub concurrency: Option<String>,
    pub consistency: Option<String>,
}

/// A delete of one key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteItem {
    pub key: String,
    pub etag: Option<String>,
    pub concurrency: Option<String>,
    pub consistency: Option<String>,
}

/// One operation of a transaction: `operation` is Dapr's `upsert` or `delete`.
#[derive(Debug, Clone, PartialEq)]
pub struct TxRequest {
    pub operation: String,
    pub item: SaveItem,
}

/// Who is asking, for key prefixes.
#[derive(Debug, Clone, Copy)]
pub struct KeyScope<'a> {
    pub prefix: &'a KeyPrefix,
    pub app_id: &'a str,
    pub store: &'a str,
    pub namespace: Option<&'a str>,
}

impl KeyScope<'_> {
    pub fn key(&self, key: &str) -> Result<String, BlockError> {
        if key.is_empty() {
            return Err(BlockError::new(
                Code::MalformedRequest,
                "\"key\" is a required field",
            ));
        }
        self.prefix
            .apply(key, self.app_id, self.store, self.namespace)
            .map_err(|e| BlockError::new(Code::StateIllegalKey, e.to_string()))
    }
}

pub fn parse_concurrency(v: Option<&str>) -> Result<Concurrency, BlockError> {
    match v.map(str::trim) {
        None | Some("") | Some("last-write") => Ok(Concurrency::LastWrite),
        Some("first-write") => Ok(Concurrency::FirstWrite),
        Some(other) => Err(BlockError::new(
            Code::MalformedRequest,
            format!("invalid concurrency {other:?}: expected first-write or last-write"),
        )),
    }
}

pub fn check_consistency(v: Option<&str>) -> Result<(), BlockError> {
    match v.map(str::trim) {
        None | Some("") | Some("strong") | Some("eventual") => Ok(()),
        Some(other) => Err(BlockError::new(
            Code::MalformedRequest,
            format!("invalid consistency {other:?}: expected strong or eventual"),
        )),
    }
}

/// `ttlInSeconds` from item metadata, else from the request-level metadata.
pub fn parse_ttl(
    item: &BTreeMap<String, String>,
    request: &BTreeMap<String, String>,
) -> Result<Option<i64>, BlockError> {
    let raw = item
        .get("ttlInSeconds")
        .or_else(|| request.get("ttlInSeconds"));
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if n >= -1 => Ok(Some(n)),
        _ => Err(BlockError::new(
            Code::MalformedRequest,
            format!("metadata ttlInSeconds {raw:?} must be an integer of -1 or more"),
        )),
    }
}

/// Dapr's rule for a save: the request's metadata (`?metadata.k=v`) is merged into every item,
/// overriding the item's own keys.
pub fn with_request_metadata(
    mut item: SaveItem,
    request_md: &BTreeMap<String, String>,
) -> SaveItem {
    for (k, v) in request_md {
        item.metadata.insert(k.clone(), v.clone());
    }
    item
}

/// A save item (or transaction upsert) as a store write.
pub fn to_set(
    item: SaveItem,
    scope: &KeyScope<'_>,
    request_md: &BTreeMap<String, String>,
) -> Result<SetRequest, BlockError> {
    let key = scope.key(&item.key)?;
    let concurrency = parse_concurrency(item.concurrency.as_deref())?;
    check_consistency(item.consistency.as_deref())?;
    let ttl = parse_ttl(&item.metadata, request_md)?;
    Ok(SetRequest {
        key,
        value: item.value,
        etag: item.etag,
        concurrency,
        ttl,
    })
}

/// A delete as a store delete.
pub fn to_delete(item: DeleteItem, scope: &KeyScope<'_>) -> Result<DeleteRequest, BlockError> {
    let key = scope.key(&item.key)?;
    let concurrency = parse_concurrency(item.concurrency.as_deref())?;
    Ok(DeleteRequest {
        key,
        etag: item.etag,
        concurrency,
    })
}

/// A transaction's operations as store operations; `request_md` is the transaction's metadata.
pub fn to_transaction(
    ops: Vec<TxRequest>,
    scope: &KeyScope<'_>,
    request_md: &BTreeMap<String, String>,
) -> Result<Vec<TxOperation>, BlockError> {
    ops.into_iter()
        .map(|op| match op.operation.as_str() {
            "upsert" => to_set(op.item, scope, request_md).map(TxOperation::Upsert),
            "delete" => {
                let SaveItem {
                    key,
                    etag,
                    concurrency,
                    consistency,
                    ..
                } = op.item;
                let item = DeleteItem {
                    key,
                    etag,
                    concurrency,
                    consistency,
                };
                to_delete(item, scope).map(TxOperation::Delete)
            }
            other => Err(BlockError::new(
                Code::StateOperationNotSupported,
                format!("operation type {other} not supported"),
            )),
        })
        .collect()
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

    fn item(key: &str) -> SaveItem {
        SaveItem {
            key: key.into(),
            value: Bytes::from_static(b"1"),
            ..SaveItem::default()
        }
    }

    fn md(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn save_items_become_prefixed_writes() {
        let set = to_set(
            SaveItem {
                etag: Some("7".into()),
                concurrency: Some("first-write".into()),
                metadata: md(&[("ttlInSeconds", "10")]),
                ..item("k")
            },
            &scope(),
            &BTreeMap::new(),
        )
        .expect("valid");
        assert_eq!(set.key, "app||k");
        assert_eq!(set.etag.as_deref(), Some("7"));
        assert_eq!(set.concurrency, Concurrency::FirstWrite);
        assert_eq!(set.ttl, Some(10));
    }

    #[test]
    fn bad_items_are_400s_with_dapr_codes() {
        let cases = [
            item(""),
            item("a||b"),
            SaveItem {
                concurrency: Some("sometimes".into()),
                ..item("k")
            },
            SaveItem {
                consistency: Some("maybe".into()),
                ..item("k")
            },
            SaveItem {
                metadata: md(&[("ttlInSeconds", "soon")]),
                ..item("k")
            },
            SaveItem {
                metadata: md(&[("ttlInSeconds", "-5")]),
                ..item("k")
            },
        ];
        for case in cases {
            let err = to_set(case.clone(), &scope(), &BTreeMap::new()).expect_err("invalid");
            let spec = err.spec();
            assert_eq!(
                (spec.http, spec.error_code),
                (400, "ERR_MALFORMED_REQUEST"),
                "{case:?}"
            );
        }
        let illegal = to_set(item("a||b"), &scope(), &BTreeMap::new()).expect_err("||");
        assert_eq!(illegal.spec().reason, Some("DAPR_STATE_ILLEGAL_KEY"));
    }

    #[test]
    fn a_saves_request_metadata_overrides_its_items() {
        let item = SaveItem {
            metadata: md(&[("ttlInSeconds", "1"), ("other", "x")]),
            ..item("k")
        };
        let merged = with_request_metadata(item, &md(&[("ttlInSeconds", "3")]));
        assert_eq!(
            merged.metadata,
            md(&[("ttlInSeconds", "3"), ("other", "x")])
        );
        let set = to_set(merged, &scope(), &BTreeMap::new()).expect("valid");
        assert_eq!(set.ttl, Some(3));
    }

    #[test]
    fn item_ttl_wins_over_the_request_ttl() {
        let request = md(&[("ttlInSeconds", "5")]);
        assert_eq!(parse_ttl(&BTreeMap::new(), &request).ok(), Some(Some(5)));
        let item_md = md(&[("ttlInSeconds", "-1")]);
        assert_eq!(parse_ttl(&item_md, &request).ok(), Some(Some(-1)));
        assert_eq!(
            parse_ttl(&md(&[("ttlInSeconds", "")]), &request).ok(),
            Some(None)
        );
    }

    #[test]
    fn transactions_map_operations_and_refuse_unknown_ones() {
        let ops = vec![
            TxRequest {
                operation: "upsert".into(),
                item: item("a"),
            },
            TxRequest {
                operation: "delete".into(),
                item: SaveItem {
                    etag: Some("3".into()),
                    ..item("b")
                },
            },
        ];
        let ops = to_transaction(ops, &scope(), &md(&[("ttlInSeconds", "5")])).expect("valid");
        assert!(matches!(&ops[0], TxOperation::Upsert(s) if s.key == "app||a" && s.ttl == Some(5)));
        assert!(
            matches!(&ops[1], TxOperation::Delete(d) if d.key == "app||b" && d.etag.as_deref() == Some("3"))
        );
        let bad = vec![TxRequest {
            operation: "merge".into(),
            item: item("a"),
        }];
        let err = to_transaction(bad, &scope(), &BTreeMap::new()).expect_err("merge");
        assert_eq!(err.code.as_str(), "ERR_NOT_SUPPORTED_STATE_OPERATION");
    }
}
