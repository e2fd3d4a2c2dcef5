//! `/v1.0/state/*`: save, get, delete, bulk get and transactions, with Dapr's status codes.

use super::body::JsonBody;
use super::object::Obj;
use super::path::ApiPath as Path;
use super::state_request::*;
use crate::components::Registry;
use crate::components::registry::{Lookup, StateHandle};
use crate::components::state::{Feature, KeyPrefix, StoreError};
use crate::error::ApiError;
use crate::runtime::SharedRuntime;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Instant;

fn lookup<'a>(registry: &'a Registry, store: &str) -> Result<StateHandle<'a>, ApiError> {
    registry.state(store).map_err(|why| match why {
        Lookup::NoneConfigured => ApiError::internal(
            "ERR_STATE_STORE_NOT_CONFIGURED",
            "state store is not configured",
        )
        .with_reason("DAPR_STATE_NOT_CONFIGURED"),
        Lookup::NotFound => ApiError::bad_request(
            "ERR_STATE_STORE_NOT_FOUND",
            format!("state store {store} is not found"),
        )
        .with_reason("DAPR_STATE_NOT_FOUND"),
        Lookup::NotReady(status) => ApiError::internal(
            "ERR_STATE_STORE_NOT_CONFIGURED",
            format!("state store {store} is not ready: {status:?}"),
        )
        .with_reason("DAPR_STATE_NOT_CONFIGURED"),
    })
}

fn scope<'a>(rt: &'a SharedRuntime, handle: &'a StateHandle<'a>) -> KeyScope<'a> {
    KeyScope {
        prefix: handle.key_prefix,
        app_id: &rt.app_id,
        store: handle.name,
        namespace: rt.namespace.as_deref(),
    }
}

/// Dapr's mapping of a store error on save/delete: etag mismatch 409, bad etag 400, else 500.
fn store_error(code: &'static str, verb: &str, store: &str, err: StoreError) -> ApiError {
    let status = match err {
        StoreError::EtagMismatch(_) => StatusCode::CONFLICT,
        StoreError::EtagInvalid(_) => StatusCode::BAD_REQUEST,
        StoreError::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(
        status,
        code,
        format!("failed {verb} state with key in state store {store}: {err}"),
    )
}

fn record<T, E>(rt: &SharedRuntime, store: &str, op: &str, started: Instant, r: &Result<T, E>) {
    rt.metrics.state_op(store, op, r.is_ok(), started.elapsed());
}

/// `POST|PUT /v1.0/state/{store}`
pub async fn save(
    State(rt): State<SharedRuntime>,
    Path(store): Path<String>,
    uri: Uri,
    JsonBody(items): JsonBody<Vec<Obj<StateItem>>>,
) -> Result<StatusCode, ApiError> {
    let registry = rt.registry();
    let handle = lookup(&registry, &store)?;
    let scope = scope(&rt, &handle);
    let query_md = query_metadata(uri.query());
    let requests = items
        .into_iter()
        .map(|Obj(item)| to_set(item, &scope, &query_md))
        .collect::<Result<Vec<_>, _>>()?;
    let mut first_error = None;
    for req in requests {
        let started = Instant::now();
        let result = handle.store.set(req).await;
        record(&rt, handle.name, "set", started, &result);
        if let Err(e) = result {
            first_error.get_or_insert(store_error("ERR_STATE_SAVE", "saving", &store, e));
        }
    }
    first_error.map_or(Ok(StatusCode::NO_CONTENT), Err)
}

/// `GET /v1.0/state/{store}/{key}`
pub async fn get(
    State(rt): State<SharedRuntime>,
    Path((store, key)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let registry = rt.registry();
    let handle = lookup(&registry, &store)?;
    check_consistency(query_param(uri.query(), "consistency").as_deref())?;
    let stored_key = scope(&rt, &handle).key(&key)?;
    let started = Instant::now();
    let result = handle.store.get(&stored_key).await;
    record(&rt, handle.name, "get", started, &result);
    let item = result.map_err(|e| {
        ApiError::internal(
            "ERR_STATE_GET",
            format!("fail to get {key} from state store {store}: {e}"),
        )
    })?;
    let Some(item) = item else {
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
    State(rt): State<SharedRuntime>,
    Path((store, key)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let registry = rt.registry();
    let handle = lookup(&registry, &store)?;
    let query = uri.query();
    let etag = match headers.get(http::header::IF_MATCH) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::bad_request("ERR_STATE_DELETE", "If-Match is not valid text")
                })?
                .trim_matches('"')
                .to_owned(),
        ),
        None => None,
    };
    let req = crate::components::state::DeleteRequest {
        key: scope(&rt, &handle).key(&key)?,
        etag,
        concurrency: parse_concurrency(query_param(query, "concurrency").as_deref())?,
    };
    check_consistency(query_param(query, "consistency").as_deref())?;
    let started = Instant::now();
    let result = handle.store.delete(req).await;
    record(&rt, handle.name, "delete", started, &result);
    result.map_err(|e| store_error("ERR_STATE_DELETE", "deleting", &store, e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stored bytes in a JSON answer: as JSON when they are, else as a string.
fn data_value(data: &[u8]) -> Value {
    serde_json::from_slice(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()))
}

/// `POST|PUT /v1.0/state/{store}/bulk`
pub async fn bulk_get(
    State(rt): State<SharedRuntime>,
    Path(store): Path<String>,
    JsonBody(Obj(req)): JsonBody<Obj<BulkGetRequest>>,
) -> Result<axum::Json<Value>, ApiError> {
    let registry = rt.registry();
    let handle = lookup(&registry, &store)?;
    let scope = scope(&rt, &handle);
    let keys = req
        .keys
        .iter()
        .map(|k| scope.key(k))
        .collect::<Result<Vec<_>, _>>()?;
    let parallelism = req.parallelism.unwrap_or(100).clamp(1, 1000);
    let store_ref = handle.store;
    let results: Vec<Value> = futures_util::stream::iter(keys)
        .map(|stored| async move {
            let key = KeyPrefix::original(&stored).to_owned();
            match store_ref.get(&stored).await {
                Ok(Some(item)) => {
                    let mut v = json!({ "key": key, "data": data_value(&item.data) });
                    if let Some(etag) = item.etag {
                        v["etag"] = Value::String(etag);
                    }
                    v
                }
                Ok(None) => json!({ "key": key }),
                Err(e) => json!({ "key": key, "error": e.to_string() }),
            }
        })
        .buffered(parallelism)
        .collect()
        .await;
    Ok(axum::Json(Value::Array(results)))
}

/// `POST|PUT /v1.0/state/{store}/transaction`
pub async fn transaction(
    State(rt): State<SharedRuntime>,
    Path(store): Path<String>,
    uri: Uri,
    JsonBody(Obj(req)): JsonBody<Obj<TransactionRequest>>,
) -> Result<StatusCode, ApiError> {
    let registry = rt.registry();
    let handle = lookup(&registry, &store)?;
    if !handle.store.features().contains(&Feature::Transactional) {
        return Err(ApiError::internal(
            "ERR_STATE_STORE_NOT_SUPPORTED",
            format!("state store {store} doesn't support transactions"),
        )
        .with_reason("DAPR_STATE_TRANSACTIONS_NOT_SUPPORTED"));
    }
    let ops = to_transaction(req, &scope(&rt, &handle), &query_metadata(uri.query()))?;
    if ops.is_empty() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let started = Instant::now();
    let result = handle.store.transact(ops).await;
    record(&rt, handle.name, "transaction", started, &result);
    result.map_err(|e| {
        ApiError::internal(
            "ERR_STATE_TRANSACTION",
            format!("error while executing state transaction: {e}"),
        )
    })?;
    Ok(StatusCode::NO_CONTENT)
}
