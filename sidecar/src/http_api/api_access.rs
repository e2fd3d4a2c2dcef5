//! `spec.api` on the HTTP API: a group the Configuration does not allow is not there (404
//! `ERR_NOT_FOUND`, as daprd, which never registers its routes).

use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};

/// Whether the Configuration's `spec.api` lets `path` through.
pub fn check(sc: &Sidecar, path: &str) -> Result<(), BlockError> {
    let permitted = match sc.security().api_access(&sc.config()) {
        Ok(None) => true,
        Ok(Some(access)) => access.http_permits(path),
        Err(e) => {
            tracing::warn!(error = %e, "spec.api is invalid; refusing the API");
            false
        }
    };
    match permitted {
        true => Ok(()),
        false => Err(BlockError::new(
            Code::RouteNotFound,
            format!("{path} is not available (spec.api)"),
        )),
    }
}
