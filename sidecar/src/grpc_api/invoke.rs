//! `InvokeService` over [`crate::blocks::invoke`], mapped as daprd maps it. The request becomes
//! an HTTP invocation: the verb from `http_extension` (POST when NONE), its query string, the
//! message's content type and data, and the call's metadata as headers (`grpc-*` renamed
//! `dapr-grpc-*`). The app's answer comes back as `InvokeResponse` with its headers as response
//! metadata (IANA-permanent names prefixed `dapr-`) plus `dapr-http-status`; a non-2xx answer is
//! an error status from the standard HTTP→gRPC mapping, whose `ErrorInfo` holds `http.code` and
//! the start of the body (`http.error_message`). The answer's body is read up to
//! `--max-body-size`.

use super::Shared;
use super::error::status_with_error_info;
use crate::blocks::error::{BlockError, Code as BlockCode};
use crate::blocks::invoke::Invocation;
use crate::channels::hop_by_hop::strip_hop_by_hop;
use crate::channels::permanent_headers::{dapr_prefixed, is_permanent};
use axum::body::Body;
use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as runtime;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::collections::HashMap;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

/// daprd's limit for an `ErrorInfo` metadata value.
const MAX_ERROR_DETAIL: usize = 63;

/// The call's metadata as the invocation's headers.
pub fn request_headers(metadata: MetadataMap, content_type: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in metadata.into_headers().iter() {
        let name = match name.as_str() {
            "content-type" | "content-length" | "host" => continue,
            n if n.starts_with("grpc-") => match dapr_prefixed(name) {
                Some(prefixed) => prefixed,
                None => continue,
            },
            _ => name.clone(),
        };
        headers.append(name, value.clone());
    }
    if let Ok(value) = HeaderValue::from_str(content_type)
        && !content_type.is_empty()
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers
}

/// The HTTP verb of a message: POST when none is given.
pub fn verb(message: &common::InvokeRequest) -> Method {
    use common::http_extension::Verb;
    match message.http_extension.as_ref().map(|e| e.verb()) {
        None | Some(Verb::None) => Method::POST,
        Some(verb) => Method::from_bytes(verb.as_str_name().as_bytes()).unwrap_or(Method::POST),
    }
}

fn invocation(
    target: String,
    metadata: MetadataMap,
    message: common::InvokeRequest,
) -> Result<Invocation, Status> {
    let method = verb(&message);
    let query = message
        .http_extension
        .as_ref()
        .map(|e| e.querystring.as_str());
    let uri = match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("/?{q}"),
        None => "/".to_owned(),
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(
            message.data.map(|d| d.value).unwrap_or_default(),
        ))
        .map_err(|e| Status::invalid_argument(format!("invalid invocation request: {e}")))?;
    *request.headers_mut() = request_headers(metadata, &message.content_type);
    Ok(Invocation {
        target,
        method: message.method,
        request,
    })
}

/// The app's headers as response metadata, with `dapr-http-status`.
pub fn response_metadata(mut headers: HeaderMap, status: StatusCode) -> MetadataMap {
    strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    let mut out = HeaderMap::new();
    for (name, value) in headers.iter() {
        let reserved = name.as_str().starts_with("grpc-")
            || is_permanent(name)
            || name.as_str().ends_with("-bin");
        let name = if reserved {
            dapr_prefixed(name)
        } else {
            Some(name.clone())
        };
        if let Some(name) = name {
            out.append(name, value.clone());
        }
    }
    out.insert(
        HeaderName::from_static("dapr-http-status"),
        HeaderValue::from(status.as_u16()),
    );
    MetadataMap::from_headers(out)
}

/// daprd's HTTP status → gRPC code (`CodeFromHTTPStatus`).
pub fn code_from_http(status: StatusCode) -> Code {
    match status.as_u16() {
        200..=299 => Code::Ok,
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        408 => Code::Cancelled,
        409 => Code::AlreadyExists,
        429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ => Code::Unknown,
    }
}

/// The first bytes of an error body, cut at a character boundary.
fn error_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(MAX_ERROR_DETAIL);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// A non-2xx answer of the app as daprd reports it.
pub fn http_error(status: StatusCode, body: &[u8], metadata: MetadataMap) -> Status {
    let text = status.canonical_reason().unwrap_or("Unknown");
    let info = HashMap::from([
        ("http.code".to_owned(), status.as_u16().to_string()),
        ("http.error_message".to_owned(), error_detail(body)),
    ]);
    let status = status_with_error_info(code_from_http(status), text, text, info);
    let (code, message, details) = (status.code(), status.message().to_owned(), status.details());
    Status::with_details_and_metadata(code, message, details.to_vec().into(), metadata)
}

/// Why the app's answer could not be read whole.
fn answer_error(target: &str, limit: usize, err: &(dyn std::error::Error + 'static)) -> BlockError {
    if err.is::<LengthLimitError>() {
        BlockError::new(
            BlockCode::BodyTooLarge,
            format!("the answer of app {target} exceeds the limit of {limit} bytes"),
        )
    } else {
        BlockError::new(
            BlockCode::DirectInvoke,
            format!("failed to invoke, id: {target}, err: reading the answer: {err}"),
        )
    }
}

pub async fn invoke(
    sc: &Shared,
    request: Request<runtime::InvokeServiceRequest>,
) -> Result<Response<common::InvokeResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    let target = req.id.clone();
    if let Some(message) = &req.message {
        // daprd names the server span of InvokeService after the call, not the RPC.
        crate::traces::server::name_invocation(&target, &message.method);
    }
    let invocation = invocation(req.id, metadata, req.message.unwrap_or_default())?;
    let answer = sc.invoke().call(invocation).await?;
    let (parts, body) = answer.into_parts();
    let limit = usize::try_from(sc.max_body_size()).unwrap_or(usize::MAX);
    let body = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| answer_error(&target, limit, &*e))?
        .to_bytes();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let metadata = response_metadata(parts.headers, parts.status);
    if code_from_http(parts.status) != Code::Ok {
        return Err(http_error(parts.status, &body, metadata));
    }
    let message = common::InvokeResponse {
        data: Some(prost_types::Any {
            type_url: String::new(),
            value: body.to_vec(),
        }),
        content_type,
    };
    let mut response = Response::new(message);
    *response.metadata_mut() = metadata;
    Ok(response)
}

#[cfg(test)]
mod tests;
