//! `bindings.http`: an output binding that sends one HTTP request per call, as Dapr's does.
//!
//! The operation is the method (`create` is POST); request metadata `path` is appended to the
//! configured `url`; request metadata whose name starts with a capital letter becomes a header,
//! and the trace headers the runtime adds (`traceparent`, `tracestate`, `baggage`) are passed
//! on. The answer carries the body as data and `statusCode`, `status` and every response header
//! (Go's canonical spelling, values joined with `, `) as metadata, also when a non-2xx status
//! is turned into an error (`errorIfNot2XX`, default true).
//!
//! The client is reqwest: like Go's `http.Client`, which Dapr uses, it follows redirects, pools
//! connections and bounds a whole exchange with one timeout, which hyper's bare client leaves
//! to the caller. Tandem has no TLS client yet, so `https://` URLs and the `MTLS*` fields are
//! refused when the component loads rather than failing on every call.

use super::{BindingError, InvokeRequest, InvokeResponse, OutputBinding};
use crate::components::bindings::Binding;
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError, is_truthy};
use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Dapr's default cap on a response body.
const DEFAULT_MAX_RESPONSE_BODY: u64 = 100 << 20;
/// Dapr's dial timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const OPERATIONS: &[&str] = &[
    "create", "get", "head", "post", "put", "patch", "delete", "options", "trace",
];
const MTLS_FIELDS: &[&str] = &[
    "MTLSRootCA",
    "MTLSClientCert",
    "MTLSClientKey",
    "MTLSRenegotiation",
];
/// Lower-case request metadata that still becomes a header: the runtime's trace context.
const TRACE_HEADERS: &[&str] = &["traceparent", "tracestate", "baggage"];
const JSON: &str = "application/json; charset=utf-8";

/// Validated settings of a `bindings.http` component.
#[derive(Clone, PartialEq)]
pub struct HttpConfig {
    /// `http://…`; request metadata `path` is appended to it.
    pub url: String,
    /// Bounds a whole exchange, body included; `None` waits as long as the server takes.
    pub response_timeout: Option<Duration>,
    /// Longer bodies are cut at this many bytes, as Dapr does; `None` reads them whole.
    pub max_response_body: Option<u64>,
    /// `securityTokenHeader: securityToken`, sent with every request.
    pub security_token: Option<(HeaderName, HeaderValue)>,
    pub error_if_not_2xx: bool,
}

// By hand so a logged config never shows the token.
impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("url", &self.url)
            .field("response_timeout", &self.response_timeout)
            .field("max_response_body", &self.max_response_body)
            .field(
                "security_token_header",
                &self.security_token.as_ref().map(|(h, _)| h),
            )
            .field("error_if_not_2xx", &self.error_if_not_2xx)
            .finish()
    }
}

fn refuse(field: &str, value: &str, reason: impl Into<String>) -> MetadataError {
    MetadataError {
        field: field.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

impl HttpConfig {
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        let url = md.require("url")?;
        let parsed = Url::parse(url).map_err(|e| refuse("url", url, e.to_string()))?;
        match parsed.scheme() {
            "http" => {}
            "https" => {
                return Err(refuse(
                    "url",
                    url,
                    "https is not supported yet (the sidecar has no TLS client)",
                ));
            }
            _ => return Err(refuse("url", url, "expected an http:// URL")),
        }
        if let Some(field) = MTLS_FIELDS.iter().find(|f| md.get(f).is_some()) {
            return Err(refuse(field, "<redacted>", "mTLS is not supported yet"));
        }
        let response_timeout = md.duration("responseTimeout")?;
        if response_timeout.is_some_and(|t| t.is_zero()) {
            return Err(refuse("responseTimeout", "0", "must be more than zero"));
        }
        let max_response_body = match md.get("maxResponseBodySize") {
            None => Some(DEFAULT_MAX_RESPONSE_BODY),
            Some(_) => md.byte_size("maxResponseBodySize")?,
        };
        let security_token = match (md.get("securityToken"), md.get("securityTokenHeader")) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(refuse(
                    "securityTokenHeader",
                    "",
                    "required when securityToken is set",
                ));
            }
            (Some(token), Some(header)) => Some((
                HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| refuse("securityTokenHeader", header, "not a header name"))?,
                HeaderValue::from_str(token).map_err(|_| {
                    refuse("securityToken", "<redacted>", "not a valid header value")
                })?,
            )),
        };
        Ok(HttpConfig {
            url: url.to_owned(),
            response_timeout,
            max_response_body,
            security_token,
            error_if_not_2xx: md.get("errorIfNot2XX").is_none_or(is_truthy),
        })
    }
}

/// The binding: its settings and a pooled client.
#[derive(Debug)]
pub struct HttpBinding {
    config: HttpConfig,
    client: reqwest::Client,
}

/// Go's `CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`.
fn canonical_header(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// `statusCode`, `status` and the response headers, as Dapr reports them.
fn response_metadata(status: reqwest::StatusCode, headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    metadata.insert("statusCode".to_owned(), status.as_u16().to_string());
    let reason = status.canonical_reason().unwrap_or_default();
    metadata.insert(
        "status".to_owned(),
        format!("{} {reason}", status.as_u16())
            .trim_end()
            .to_owned(),
    );
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        metadata.insert(canonical_header(name.as_str()), values.join(", "));
    }
    metadata
}

impl HttpBinding {
    pub fn new(config: &HttpConfig) -> Result<Self, String> {
        let client = crate::http_client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(HttpBinding {
            config: config.clone(),
            client,
        })
    }

    /// The request headers: defaults, the security token, capitalised metadata, trace context.
    fn headers(
        &self,
        metadata: &BTreeMap<String, String>,
        has_body: bool,
    ) -> Result<HeaderMap, BindingError> {
        let mut headers = HeaderMap::new();
        if has_body && !metadata.contains_key("Content-Type") {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
        }
        if !metadata.contains_key("Accept") {
            headers.insert(ACCEPT, HeaderValue::from_static(JSON));
        }
        if let Some((name, value)) = &self.config.security_token {
            headers.insert(name.clone(), value.clone());
        }
        let passed = metadata.iter().filter(|(k, v)| {
            k.starts_with(|c: char| c.is_ascii_uppercase())
                || (TRACE_HEADERS.contains(&k.as_str()) && !v.is_empty())
        });
        for (key, value) in passed {
            let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
                BindingError::BadRequest(format!("metadata {key:?} is not a valid header name"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                BindingError::BadRequest(format!("metadata {key:?} is not a valid header value"))
            })?;
            headers.insert(name, value);
        }
        Ok(headers)
    }

    /// Reads the body, cut at the configured size as Go's `LimitReader` does.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
        let limit = self
            .config
            .max_response_body
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            let room = limit - body.len();
            if chunk.len() >= room {
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait]
impl OutputBinding for HttpBinding {
    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse, BindingError> {
        let InvokeRequest {
            operation,
            data,
            metadata,
        } = request;
        let method = match operation.as_str() {
            "create" | "post" => Method::POST,
            "get" => Method::GET,
            "head" => Method::HEAD,
            "put" => Method::PUT,
            "patch" => Method::PATCH,
            "delete" => Method::DELETE,
            "options" => Method::OPTIONS,
            "trace" => Method::TRACE,
            other => return Err(BindingError::unsupported(other, OPERATIONS)),
        };
        let has_body = matches!(method, Method::POST | Method::PUT | Method::PATCH);
        let url = match metadata.get("path").filter(|p| !p.is_empty()) {
            None => self.config.url.clone(),
            Some(path) => format!(
                "{}/{}",
                self.config.url.trim_end_matches('/'),
                path.trim_start_matches('/')
            ),
        };
        let url = Url::parse(&url).map_err(|e| {
            BindingError::BadRequest(format!(
                "metadata \"path\" gives an invalid URL {url:?}: {e}"
            ))
        })?;
        let error_if_not_2xx = metadata
            .get("errorIfNot2XX")
            .filter(|v| !v.is_empty())
            .map_or(self.config.error_if_not_2xx, |v| is_truthy(v));

        let mut builder = self
            .client
            .request(method.clone(), url)
            .headers(self.headers(&metadata, has_body)?);
        if has_body {
            builder = builder.body(data);
        }
        if let Some(timeout) = self.config.response_timeout {
            builder = builder.timeout(timeout);
        }
        let failed =
            |e: reqwest::Error| BindingError::backend(format!("{method} request failed: {e}"));
        let response = builder.send().await.map_err(failed)?;
        let status = response.status();
        let metadata = response_metadata(status, response.headers());
        let body = self.read_body(response).await.map_err(failed)?;
        if error_if_not_2xx && !status.is_success() {
            return Err(BindingError::Backend {
                message: format!("received status code {}", status.as_u16()),
                metadata,
            });
        }
        Ok(InvokeResponse {
            data: (!body.is_empty()).then(|| Bytes::from(body)),
            metadata,
        })
    }
}

#[cfg(test)]
mod tests;

#[async_trait]
impl Settings for HttpConfig {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::Binding(Binding::output(Arc::new(
            HttpBinding::new(self)?,
        ))))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(HttpConfig::from_metadata(md)?))
}
