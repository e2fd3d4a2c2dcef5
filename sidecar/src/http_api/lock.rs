//! `/v1.0-alpha1/lock/{store}` and `/v1.0-alpha1/unlock/{store}` over [`crate::blocks::lock`].
//! Bodies are read as daprd reads them (protojson): camelCase or proto field names, unknown
//! fields ignored, an empty body or a `null` field the default; answers always carry their field
//! (`{"success":false}`, `{"status":0}`), the unlock status as a number.

use super::Shared;
use super::body::RawBody;
use super::path::ApiPath as Path;
use crate::blocks::error::BlockError;
use crate::blocks::lock::{TryLockRequest, UnlockRequest};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The body of `POST /v1.0-alpha1/lock/{store}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TryLockBody {
    #[serde(default, alias = "resource_id")]
    resource_id: Option<String>,
    #[serde(default, alias = "lock_owner")]
    lock_owner: Option<String>,
    #[serde(default, alias = "expiry_in_seconds")]
    expiry_in_seconds: Option<i32>,
}

/// The body of `POST /v1.0-alpha1/unlock/{store}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnlockBody {
    #[serde(default, alias = "resource_id")]
    resource_id: Option<String>,
    #[serde(default, alias = "lock_owner")]
    lock_owner: Option<String>,
}

/// An empty body is every field's default, as in daprd; anything else must be the JSON object.
fn read<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, BlockError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(BlockError::malformed)
}

/// `POST /v1.0-alpha1/lock/{store}`: 200 `{"success": bool}`.
pub async fn try_lock(
    State(sc): State<Shared>,
    Path(store): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, BlockError> {
    let body: TryLockBody = read(&body)?;
    let success = sc
        .lock()
        .try_lock(TryLockRequest {
            store,
            resource_id: body.resource_id.unwrap_or_default(),
            lock_owner: body.lock_owner.unwrap_or_default(),
            expiry_in_seconds: body.expiry_in_seconds.unwrap_or_default(),
        })
        .await?;
    Ok(Json(json!({ "success": success })))
}

/// `POST /v1.0-alpha1/unlock/{store}`: 200 `{"status": 0|1|2|3}`.
pub async fn unlock(
    State(sc): State<Shared>,
    Path(store): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, BlockError> {
    let body: UnlockBody = read(&body)?;
    let status = sc
        .lock()
        .unlock(UnlockRequest {
            store,
            resource_id: body.resource_id.unwrap_or_default(),
            lock_owner: body.lock_owner.unwrap_or_default(),
        })
        .await?;
    Ok(Json(json!({ "status": status.code() })))
}
