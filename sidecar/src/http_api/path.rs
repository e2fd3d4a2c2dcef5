//! Path parameters with Dapr's JSON errors: axum's own `Path` rejection is plain text.

use super::Shared;
use crate::blocks::error::{BlockError, Code};
use axum::extract::{FromRequestParts, Path};
use http::request::Parts;
use serde::de::DeserializeOwned;

/// Like `axum::extract::Path`, but a bad segment (for example invalid UTF-8 after
/// percent-decoding) is a JSON `400 ERR_MALFORMED_REQUEST`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Shared> for ApiPath<T> {
    type Rejection = BlockError;

    async fn from_request_parts(parts: &mut Parts, rt: &Shared) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, rt).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(BlockError::new(
                Code::MalformedRequest,
                format!("invalid path parameter: {}", rejection.body_text()),
            )),
        }
    }
}
