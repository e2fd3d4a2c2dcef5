//! `/v1.0/secrets/*`, with the Configuration's secret scopes applied.

use super::path::ApiPath as Path;
use crate::components::registry::Lookup;
use crate::components::secrets::SecretStore;
use crate::error::ApiError;
use crate::runtime::SharedRuntime;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use std::collections::BTreeMap;
use std::sync::Arc;

fn lookup(rt: &SharedRuntime, store: &str) -> Result<Arc<dyn SecretStore>, ApiError> {
    rt.registry()
        .secrets(store)
        .map(Arc::clone)
        .map_err(|why| match why {
            Lookup::NoneConfigured => ApiError::internal(
                "ERR_SECRET_STORES_NOT_CONFIGURED",
                "secret store is not configured",
            ),
            // Dapr really answers 401 here.
            Lookup::NotFound => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "ERR_SECRET_STORE_NOT_FOUND",
                format!("failed finding secret store with key {store}"),
            ),
            Lookup::NotReady(status) => ApiError::internal(
                "ERR_SECRET_GET",
                format!("secret store {store} is not ready: {status:?}"),
            ),
        })
}

fn allowed(rt: &SharedRuntime, store: &str, key: &str) -> bool {
    let config = rt.config.current();
    let scopes = config
        .secrets
        .as_ref()
        .map(|s| s.scopes.as_slice())
        .unwrap_or_default();
    scopes
        .iter()
        .filter(|s| s.store_name == store)
        .all(|s| s.allows(key))
}

/// `GET /v1.0/secrets/{store}/{key}`
pub async fn get(
    State(rt): State<SharedRuntime>,
    Path((store, key)): Path<(String, String)>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let secrets = lookup(&rt, &store)?;
    if !allowed(&rt, &store, &key) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ERR_PERMISSION_DENIED",
            format!("access denied by policy to get {key:?} from {store:?}"),
        ));
    }
    match secrets.get(&key).await {
        Ok(Some(secret)) => Ok(Json(secret)),
        Ok(None) => Err(ApiError::internal(
            "ERR_SECRET_GET",
            format!(
                "failed getting secret with key {key} from secret store {store}: secret not found"
            ),
        )),
        Err(e) => Err(ApiError::internal(
            "ERR_SECRET_GET",
            format!("failed getting secret with key {key} from secret store {store}: {e}"),
        )),
    }
}

/// `GET /v1.0/secrets/{store}/bulk`: secrets the scope policy hides are left out.
pub async fn bulk(
    State(rt): State<SharedRuntime>,
    Path(store): Path<String>,
) -> Result<Json<BTreeMap<String, BTreeMap<String, String>>>, ApiError> {
    let secrets = lookup(&rt, &store)?;
    let all = secrets.bulk().await.map_err(|e| {
        ApiError::internal(
            "ERR_SECRET_GET",
            format!("failed getting secrets from secret store {store}: {e}"),
        )
    })?;
    Ok(Json(
        all.into_iter()
            .filter(|(name, _)| allowed(&rt, &store, name))
            .collect(),
    ))
}
