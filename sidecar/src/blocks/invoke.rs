//! Service invocation, both sides. The caller side ([`InvokeBlock::call`]) parses the target
//! and method, stamps the caller/callee identity, and sends the call to the local app (the
//! target is this app) or through the peer channel. The callee side ([`InvokeBlock::serve`])
//! accepts only calls meant for this app and hands them to the app channel. Bodies stream
//! through; nothing is buffered whole.
//!
//! The invocation message is an `http::Request`: Dapr's invocation carries HTTP semantics (verb,
//! query string, headers) on every transport, so this is the message type, not a front end's.

pub mod headers;
pub mod method;
pub mod proxy;
pub mod target;
pub mod trace;

use super::Sidecar;
use super::error::{BlockError, Code};
use crate::channels::header_names as names;
use crate::channels::peer::PeerCall;
use crate::metrics::invocation::CallType;
use crate::security::PeerIdentity;
use crate::security::acl::Operation;
use axum::body::Body;
use headers::{CallIdentity, outbound_headers};
use http::{Request, Response, Uri};
use method::normalize_method;
use opentelemetry::context::FutureExt;
use target::parse_target;

/// An invocation as the caller's app asked for it.
pub struct Invocation {
    /// `app` or `app.namespace`, unparsed.
    pub target: String,
    /// The method path, unnormalised.
    pub method: String,
    /// The request: verb, query, headers and body (its path is ignored).
    pub request: Request<Body>,
}

/// The calling app, as its sidecar (or, with mTLS, its certificate) named it.
fn caller_of<B>(req: &Request<B>) -> String {
    req.headers()
        .get(&names::CALLER_APP_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `/{method}` and the query, if any (one allocation: a `format!` cost each call ~500
/// instructions).
fn path_and_query(method: &str, query: Option<&str>) -> String {
    let mut out = String::with_capacity(2 + method.len() + query.map_or(0, str::len));
    out.push('/');
    out.push_str(method);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn invoke_error(app_id: &str, err: impl std::fmt::Display) -> BlockError {
    BlockError::new(
        Code::DirectInvoke,
        format!("failed to invoke, id: {app_id}, err: {err}"),
    )
}

/// The invocation block of one sidecar.
pub struct InvokeBlock<'a> {
    sidecar: &'a Sidecar,
}

impl Sidecar {
    pub fn invoke(&self) -> InvokeBlock<'_> {
        InvokeBlock { sidecar: self }
    }
}

impl InvokeBlock<'_> {
    /// Sends an invocation to the target app's sidecar, or straight to the local app when the
    /// target is this app.
    pub async fn call(&self, invocation: Invocation) -> Result<Response<Body>, BlockError> {
        let sc = self.sidecar;
        let Invocation {
            target,
            method,
            request,
        } = invocation;
        let target = parse_target(&target).map_err(|e| invoke_error(&target, e))?;
        let method = normalize_method(&method).map_err(|e| {
            BlockError::new(Code::DirectInvokeBadMethod, format!("invalid method: {e}"))
        })?;
        let path_and_query = path_and_query(&method, request.uri().query());
        // The client span: its id is the one the callee's sidecar sees as its parent.
        let cx = crate::traces::spans::invocation_client(
            &opentelemetry::Context::current(),
            &target.app_id,
            &method,
            sc.app_id(),
        );
        let result = self
            .send(target, path_and_query, request)
            .with_context(cx.clone())
            .await;
        match &result {
            Ok(response) => crate::traces::spans::finish_http(&cx, response.status().as_u16()),
            Err(e) => crate::traces::spans::finish(&cx, Err(&e.message)),
        }
        result
    }

    async fn send(
        &self,
        target: target::Target,
        path_and_query: String,
        request: Request<Body>,
    ) -> Result<Response<Body>, BlockError> {
        let sc = self.sidecar;
        let (mut parts, body) = request.into_parts();
        outbound_headers(
            &mut parts.headers,
            &CallIdentity {
                caller_app_id: sc.app_id(),
                caller_namespace: sc.namespace(),
                callee_app_id: &target.app_id,
            },
        );
        parts.headers.remove(http::header::HOST);
        let own_namespace =
            target.namespace.is_none() || target.namespace.as_deref() == sc.namespace();
        if target.app_id == sc.app_id() && own_namespace {
            let app = sc
                .app()
                .ok_or_else(|| invoke_error(&target.app_id, "this app has no app port"))?;
            parts.uri = path_and_query
                .parse::<Uri>()
                .map_err(|e| invoke_error(&target.app_id, e))?;
            return app
                .invoke(Request::from_parts(parts, body))
                .await
                .map_err(|e| {
                    let cause = e
                        .source
                        .as_deref()
                        .map(|s| crate::channels::peer::errors::describe(s))
                        .unwrap_or(e.message);
                    invoke_error(&target.app_id, cause)
                });
        }
        let invocations = sc.metrics().invocation();
        invocations.request_sent(&target.app_id, CallType::Unary);
        let started = std::time::Instant::now();
        let call = PeerCall {
            app_id: target.app_id.clone(),
            namespace: target.namespace,
            method: parts.method,
            path_and_query,
            headers: parts.headers,
            body,
            wire: crate::channels::peer::Wire::Http1,
        };
        let answer = sc.peers().call(call).await;
        let status = answer.as_ref().ok().map(|r| r.status());
        let status = status.as_ref().map_or("", http::StatusCode::as_str);
        invocations.response_received(&target.app_id, status, CallType::Unary, started.elapsed());
        answer.map_err(|e| invoke_error(&target.app_id, e))
    }

    /// The callee side, on the internal port: a call meant for this app reaches it with the
    /// app's own token (added by the app channel); any other is refused.
    pub async fn serve(&self, req: Request<Body>) -> Result<Response<Body>, BlockError> {
        let sc = self.sidecar;
        self.check_callee(&req)?;
        // The access-control policy and the app see the same, normalised method.
        let method = normalize_method(req.uri().path()).map_err(|e| {
            BlockError::new(Code::DirectInvokeBadMethod, format!("invalid method: {e}"))
        })?;
        let operation = Operation {
            path: &method,
            verb: Some(req.method().as_str()),
        };
        self.admit(&req, operation)?;
        let (mut parts, body) = req.into_parts();
        let path_and_query = path_and_query(&method, parts.uri.query());
        parts.uri = path_and_query
            .parse::<Uri>()
            .map_err(|e| invoke_error(sc.app_id(), e))?;
        let mut req = Request::from_parts(parts, body);
        let app = sc.app().ok_or_else(|| {
            BlockError::new(
                Code::DirectInvoke,
                format!("app {} has no app port to invoke", sc.app_id()),
            )
        })?;
        // The app's parent is this sidecar's server span.
        crate::traces::context::inject_http(&opentelemetry::Context::current(), req.headers_mut());
        let caller = caller_of(&req);
        let answer = app.invoke(req).await.map_err(|e| {
            BlockError::new(
                Code::DirectInvoke,
                format!("failed to invoke app {}: {e}", sc.app_id()),
            )
        });
        let status = match &answer {
            Ok(response) => response.status(),
            Err(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        };
        sc.metrics()
            .invocation()
            .response_sent(&caller, status.as_str());
        answer
    }

    /// A call on the internal port must be meant for this sidecar's app.
    fn check_callee(&self, req: &Request<Body>) -> Result<(), BlockError> {
        let app_id = self.sidecar.app_id();
        let callee = req
            .headers()
            .get(&names::CALLEE_APP_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if callee != app_id {
            return Err(BlockError::new(
                Code::DirectInvoke,
                format!("this sidecar serves app {app_id:?}, not {callee:?}"),
            ));
        }
        Ok(())
    }

    /// The callee's gate after [`Self::check_callee`]: the access-control policy allows
    /// `operation` for the caller (its certificate over mTLS, else its header), and the call is
    /// counted by caller.
    fn admit(&self, req: &Request<Body>, operation: Operation<'_>) -> Result<(), BlockError> {
        let sc = self.sidecar;
        let peer = req.extensions().get::<PeerIdentity>();
        sc.security()
            .authorize(&sc.config(), peer, req.headers(), operation)?;
        sc.metrics().invocation().request_received(&caller_of(req));
        Ok(())
    }
}
