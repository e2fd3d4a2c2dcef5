//! Request bodies: the size limit (413 with a JSON error, by `Content-Length` up front and by
//! counting while streaming) and reading JSON bodies with Dapr's `ERR_MALFORMED_REQUEST`.

use super::Shared;
use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

/// Largest header block accepted (names and values together). hyper itself refuses more than
/// 100 headers; this bounds their size with a JSON 431 instead of buffering arbitrarily much.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Refuses oversize header blocks (431) and bodies over `--max-body-size` (413): at once when
/// `Content-Length` says so, otherwise when the streamed body passes the limit (the request
/// given back reads its body through that limit).
pub fn limit(rt: &Sidecar, req: Request) -> Result<Request, Box<Response>> {
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(Box::new(
            BlockError::new(
                Code::HeadersTooLarge,
                format!(
                    "request headers total {header_bytes} bytes; the limit is {MAX_HEADER_BYTES}"
                ),
            )
            .into_response(),
        ));
    }
    let limit = rt.max_body_size();
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        // The body is not read, so the connection cannot carry another request: say so, as
        // daprd does, or a keep-alive client writes its next request into a closed socket.
        let mut refused = BlockError::body_too_large(limit).into_response();
        refused.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        return Err(Box::new(refused));
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(req.map(|body| Body::new(Limited::new(body, limit_usize))))
}

/// Maps a body read failure: over the limit is 413, anything else `ERR_BODY_READ`.
pub fn read_error(err: &axum::Error, limit: u64) -> BlockError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return BlockError::body_too_large(limit);
        }
        source = e.source();
    }
    BlockError::new(
        Code::BodyRead,
        format!("failed reading request body: {err}"),
    )
}

/// The whole body.
pub struct RawBody(pub Bytes);

impl FromRequest<Shared> for RawBody {
    type Rejection = BlockError;

    async fn from_request(req: Request, rt: &Shared) -> Result<Self, Self::Rejection> {
        let collected = req
            .into_body()
            .collect()
            .await
            .map_err(|e| read_error(&e, rt.max_body_size()))?;
        Ok(RawBody(collected.to_bytes()))
    }
}

/// A JSON body; malformed JSON is `400 ERR_MALFORMED_REQUEST`, whatever the Content-Type says
/// (Dapr does not insist on one).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Shared> for JsonBody<T> {
    type Rejection = BlockError;

    async fn from_request(req: Request, rt: &Shared) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, rt).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(BlockError::malformed)
    }
}
