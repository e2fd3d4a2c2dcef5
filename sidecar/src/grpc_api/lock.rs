//! `TryLockAlpha1` and `UnlockAlpha1` over [`crate::blocks::lock`]: the same checks, keys and
//! error codes as the HTTP routes; a failed call is a status (with `ErrorInfo`), never an
//! `INTERNAL_ERROR` unlock answer.

use super::Shared;
use crate::blocks::lock::{TryLockRequest, UnlockRequest};
use dapr::dapr::proto::runtime::v1 as runtime;
use tonic::{Request, Response, Status};

pub async fn try_lock(
    sc: &Shared,
    request: Request<runtime::TryLockRequest>,
) -> Result<Response<runtime::TryLockResponse>, Status> {
    let req = request.into_inner();
    let success = sc
        .lock()
        .try_lock(TryLockRequest {
            store: req.store_name,
            resource_id: req.resource_id,
            lock_owner: req.lock_owner,
            expiry_in_seconds: req.expiry_in_seconds,
        })
        .await?;
    Ok(Response::new(runtime::TryLockResponse { success }))
}

pub async fn unlock(
    sc: &Shared,
    request: Request<runtime::UnlockRequest>,
) -> Result<Response<runtime::UnlockResponse>, Status> {
    let req = request.into_inner();
    let status = sc
        .lock()
        .unlock(UnlockRequest {
            store: req.store_name,
            resource_id: req.resource_id,
            lock_owner: req.lock_owner,
        })
        .await?;
    Ok(Response::new(runtime::UnlockResponse {
        status: status.code(),
    }))
}
