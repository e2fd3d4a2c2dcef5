//! gRPC proxying, daprd's way of invoking a gRPC app: a client calls any service of the target
//! app on the sidecar's gRPC port with `dapr-app-id: <target>` metadata, and the call — unary
//! or streaming, metadata, messages, status and trailers as they are — goes through the peer
//! channel to the target's sidecar and from there, unchanged, to its app's gRPC server. The
//! hop between sidecars is marked with [`PROXIED`], so the callee hands the call to the app
//! instead of treating it as an HTTP invocation.

use super::headers::{CallIdentity, proxy_headers};
use super::target::parse_target;
use super::{InvokeBlock, invoke_error};
use crate::blocks::error::{BlockError, Code};
use crate::channels::peer::PeerCall;
use crate::metrics::invocation::CallType;
use crate::security::acl::Operation;
use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, Response};

/// The gRPC code of an answer whose status is in its headers (trailers-only); a streamed answer
/// carries it in trailers that come later, and counts as OK here.
fn grpc_code(headers: &http::HeaderMap) -> &str {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
}

/// Marks a proxied gRPC call on the internal port.
pub const PROXIED: &str = "tandem-grpc-proxy";

impl InvokeBlock<'_> {
    /// The caller's side: sends a gRPC call (its path is `/package.Service/Method`) to the app
    /// `target` (`app` or `app.namespace`).
    pub async fn proxy_grpc(
        &self,
        target: &str,
        request: Request<Body>,
    ) -> Result<Response<Body>, BlockError> {
        let sc = self.sidecar;
        let target = parse_target(target).map_err(|e| invoke_error(target, e))?;
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        proxy_headers(
            &mut parts.headers,
            &CallIdentity {
                caller_app_id: sc.app_id(),
                caller_namespace: sc.namespace(),
                callee_app_id: &target.app_id,
            },
        );
        parts.headers.remove(http::header::HOST);
        crate::traces::context::inject_grpc(&opentelemetry::Context::current(), &mut parts.headers);
        let own_namespace =
            target.namespace.is_none() || target.namespace.as_deref() == sc.namespace();
        if target.app_id == sc.app_id() && own_namespace {
            return self.to_app(Request::from_parts(parts, body)).await;
        }
        parts.headers.insert(
            HeaderName::from_static(PROXIED),
            HeaderValue::from_static("1"),
        );
        let invocations = sc.metrics().invocation();
        invocations.request_sent(&target.app_id, CallType::Unary);
        let started = std::time::Instant::now();
        let answer = sc
            .peers()
            .call(PeerCall {
                app_id: target.app_id.clone(),
                namespace: target.namespace,
                method: Method::POST,
                path_and_query: path,
                headers: parts.headers,
                body,
                wire: crate::channels::peer::Wire::Http2,
            })
            .await;
        let status = answer.as_ref().map_or("", |r| grpc_code(r.headers()));
        invocations.response_received(&target.app_id, status, CallType::Unary, started.elapsed());
        answer.map_err(|e| invoke_error(&target.app_id, e))
    }

    /// The callee's side, on the internal port: a proxied call meant for this app goes to it.
    pub async fn serve_grpc_proxy(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<Body>, BlockError> {
        self.check_callee(&request)?;
        // gRPC methods are matched as they are, with no verb (Dapr's rules for gRPC).
        let path = request.uri().path().to_owned();
        self.admit(
            &request,
            Operation {
                path: &path,
                verb: None,
            },
        )?;
        request.headers_mut().remove(PROXIED);
        crate::traces::context::inject_grpc(
            &opentelemetry::Context::current(),
            request.headers_mut(),
        );
        let caller = super::caller_of(&request);
        let answer = self.to_app(request).await;
        let status = match &answer {
            Ok(response) => grpc_code(response.headers()),
            Err(_) => "13",
        };
        self.sidecar
            .metrics()
            .invocation()
            .response_sent(&caller, status);
        answer
    }

    async fn to_app(&self, request: Request<Body>) -> Result<Response<Body>, BlockError> {
        let sc = self.sidecar;
        let app = sc.app().ok_or_else(|| {
            BlockError::new(
                Code::DirectInvoke,
                format!("app {} has no app port to proxy to", sc.app_id()),
            )
        })?;
        app.proxy_grpc(request).await.map_err(|e| {
            BlockError::new(
                Code::DirectInvoke,
                format!("failed to proxy to app {}: {e}", sc.app_id()),
            )
        })
    }
}
