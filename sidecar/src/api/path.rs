//! Path parameters with Dapr's JSON errors: axum's own `Path` rejection is plain text.

use crate::error::ApiError;
use crate::runtime::SharedRuntime;
use axum::extract::{FromRequestParts, Path};
use http::request::Parts;
use serde::de::DeserializeOwned;

/// Like `axum::extract::Path`, but a bad segment (for example invalid UTF-8 after
/// percent-decoding) is a JSON `400 ERR_MALFORMED_REQUEST`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<SharedRuntime> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        rt: &SharedRuntime,
    ) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, rt).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::bad_request(
                "ERR_MALFORMED_REQUEST",
                format!("invalid path parameter: {}", rejection.body_text()),
            )),
        }
    }
}
