//! `/v1.0/state/*`: Dapr's JSON shapes in, [`crate::blocks::state`] called, Dapr's answers out.

use super::Shared;
use super::body::JsonBody;
use super::object::Obj;
use super::path::ApiPath as Path;
use super::query::{query_metadata, query_param};
use crate::blocks::error::{BlockError, Code};
use crate::blocks::state::{DeleteItem, SaveItem, TxRequest};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;

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
    /// Read so that a body of the wrong shape is refused as in Dapr; no store uses it.
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "validates Dapr's request shape; no store reads it"
    )]
    pub metadata: Option<BTreeMap<String, Value>>,
}

/// A JSON scalar as the string Dapr reads it.
fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl From<StateItem> for SaveItem {
    fn from(item: StateItem) -> SaveItem {
        let options = item.options.unwrap_or_default();
        SaveItem {
            key: item.key.unwrap_or_default(),
            value: match &item.value {
                Some(raw) => Bytes::copy_from_slice(raw.get().as_bytes()),
                None => Bytes::from_static(b"null"),
            },
            etag: item
                .etag
                .filter(|v| !v.is_null())
                .as_ref()
                .map(scalar_string),
            metadata: item
                .metadata
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| (k.clone(), scalar_string(v)))
                .collect(),
            concurrency: options.concurrency,
            consistency: options.consistency,
        }
    }
}

/// `POST|PUT /v1.0/state/{store}`
pub async fn save(
    State(sc): State<Shared>,
    Path(store): Path<String>,
    uri: Uri,
    JsonBody(items): JsonBody<Vec<Obj<StateItem>>>,
) -> Result<StatusCode, BlockError> {
    let items = items.into_iter().map(|Obj(item)| item.into()).collect();
    sc.state()
        .save(&store, items, &query_metadata(uri.query()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1.0/state/{store}/{key}`: the raw value, its ETag, and when it expires.
pub async fn get(
    State(sc): State<Shared>,
    Path((store, key)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, BlockError> {
    let consistency = query_param(uri.query(), "consistency");
    let Some(item) = sc.state().get(&store, &key, consistency.as_deref()).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(etag) = item
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        headers.insert(http::header::ETAG, etag);
    }
    if let Some(at) = item.expires_at {
        let formatted =
            time::OffsetDateTime::from(at).format(&time::format_description::well_known::Rfc3339);
        if let Ok(value) = formatted
            .map_err(|_| ())
            .and_then(|s| HeaderValue::from_str(&s).map_err(|_| ()))
        {
            headers.insert(HeaderName::from_static("metadata.ttlexpiretime"), value);
        }
    }
    Ok((StatusCode::OK, headers, item.data).into_response())
}

/// `DELETE /v1.0/state/{store}/{key}`; an `If-Match` header (even empty) is the etag.
pub async fn delete(
    State(sc): State<Shared>,
    Path((store, key)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<StatusCode, BlockError> {
    let etag = match headers.get(http::header::IF_MATCH) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    BlockError::new(Code::StateDeleteEtagInvalid, "If-Match is not valid text")
                })?
                .trim_matches('"')
                .to_owned(),
        ),
        None => None,
    };
    let item = DeleteItem {
        key,
        etag,
        concurrency: query_param(uri.query(), "concurrency"),
        consistency: query_param(uri.query(), "consistency"),
    };
    sc.state().delete(&store, item).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stored bytes in a JSON answer: as JSON when they are, else as a string.
fn data_value(data: &[u8]) -> Value {
    serde_json::from_slice(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()))
}

/// `POST|PUT /v1.0/state/{store}/bulk`
pub async fn bulk_get(
    State(sc): State<Shared>,
    Path(store): Path<String>,
    JsonBody(Obj(req)): JsonBody<Obj<BulkGetRequest>>,
) -> Result<axum::Json<Value>, BlockError> {
    let items = sc
        .state()
        .bulk_get(&store, &req.keys, req.parallelism)
        .await?;
    let answers = items
        .into_iter()
        .map(|item| match item.result {
            Ok(Some(stored)) => {
                let mut v = json!({ "key": item.key, "data": data_value(&stored.data) });
                if let Some(etag) = stored.etag {
                    v["etag"] = Value::String(etag);
                }
                v
            }
            Ok(None) => json!({ "key": item.key }),
            Err(e) => json!({ "key": item.key, "error": e }),
        })
        .collect();
    Ok(axum::Json(Value::Array(answers)))
}

/// `POST|PUT /v1.0/state/{store}/transaction`
pub async fn transaction(
    State(sc): State<Shared>,
    Path(store): Path<String>,
    uri: Uri,
    JsonBody(Obj(req)): JsonBody<Obj<TransactionRequest>>,
) -> Result<StatusCode, BlockError> {
    let mut md = query_metadata(uri.query());
    for (k, v) in req.metadata.unwrap_or_default() {
        md.insert(k, scalar_string(&v));
    }
    let ops = req
        .operations
        .into_iter()
        .map(|Obj(op)| TxRequest {
            operation: op.operation,
            item: op.request.0.into(),
        })
        .collect();
    sc.state().transact(&store, ops, &md).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_items_read_as_dapr_does() {
        let item: StateItem = serde_json::from_str(
            r#"{"key":"k","value":{"a":1},"etag":7,"options":{"concurrency":"first-write"},"metadata":{"ttlInSeconds":10}}"#,
        )
        .expect("valid");
        let save = SaveItem::from(item);
        assert_eq!(save.key, "k");
        assert_eq!(save.value, Bytes::from_static(br#"{"a":1}"#));
        assert_eq!(save.etag.as_deref(), Some("7"));
        assert_eq!(save.concurrency.as_deref(), Some("first-write"));
        assert_eq!(save.metadata["ttlInSeconds"], "10");
        let bare: StateItem = serde_json::from_str(r#"{"key":"k","etag":null}"#).expect("valid");
        let bare = SaveItem::from(bare);
        assert_eq!(bare.value, Bytes::from_static(b"null"));
        assert_eq!(bare.etag, None);
    }
}
