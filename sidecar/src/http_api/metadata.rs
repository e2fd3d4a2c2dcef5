//! `/v1.0/metadata`: what the `@dapr/dapr` SDK polls at start-up, and `PUT /v1.0/metadata/{key}`.

use super::Shared;
use super::body::RawBody;
use super::path::ApiPath as Path;
use crate::blocks::error::{BlockError, Code};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

/// `GET /v1.0/metadata`
pub async fn get(State(sc): State<Shared>) -> Json<Value> {
    Json(sc.metadata().snapshot())
}

/// `PUT /v1.0/metadata/{key}`: the raw body becomes `extended[key]`.
pub async fn put(
    State(sc): State<Shared>,
    Path(key): Path<String>,
    RawBody(body): RawBody,
) -> Result<StatusCode, BlockError> {
    let value = String::from_utf8(body.to_vec()).map_err(|_| {
        BlockError::new(Code::MalformedRequest, "metadata values must be UTF-8 text")
    })?;
    sc.metadata().set(key, value)?;
    Ok(StatusCode::NO_CONTENT)
}
