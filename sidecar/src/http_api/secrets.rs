//! `/v1.0/secrets/*` over [`crate::blocks::secrets`].

use super::Shared;
use super::path::ApiPath as Path;
use crate::blocks::error::BlockError;
use crate::blocks::secrets::Secret;
use axum::Json;
use axum::extract::State;
use std::collections::BTreeMap;

/// `GET /v1.0/secrets/{store}/{key}`
pub async fn get(
    State(sc): State<Shared>,
    Path((store, key)): Path<(String, String)>,
) -> Result<Json<Secret>, BlockError> {
    Ok(Json(sc.secrets().get(&store, &key).await?))
}

/// `GET /v1.0/secrets/{store}/bulk`: secrets the scope policy hides are left out.
pub async fn bulk(
    State(sc): State<Shared>,
    Path(store): Path<String>,
) -> Result<Json<BTreeMap<String, Secret>>, BlockError> {
    Ok(Json(sc.secrets().bulk(&store).await?))
}
