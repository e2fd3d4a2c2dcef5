//! The `DAPR_API_TOKEN` gate. Only exactly `GET /v1.0/healthz` and `GET /v1.0/healthz/outbound`
//! pass without the token: the raw path is compared whole, so `//v1.0//healthz`,
//! `/v1.0/healthz/../state/x` or `?x=/healthz` tricks need the token like any other route. The
//! compare is constant-time, and the header is removed so it never travels further.

use super::Shared;
use crate::blocks::error::{BlockError, Code};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tandem_crds::annotations::headers::API_TOKEN;

/// Whether a request may skip the token.
pub fn exempt(method: &Method, path: &str) -> bool {
    method == Method::GET && matches!(path, "/v1.0/healthz" | "/v1.0/healthz/outbound")
}

/// Whether the presented token equals the expected one, in time independent of where they differ.
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    presented.ct_eq(expected).into()
}

pub async fn require_token(State(sc): State<Shared>, mut req: Request, next: Next) -> Response {
    let Some(expected) = sc.api_token() else {
        req.headers_mut().remove(API_TOKEN);
        return next.run(req).await;
    };
    if !exempt(req.method(), req.uri().path()) {
        let presented = req
            .headers()
            .get(API_TOKEN)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !token_matches(presented, expected.as_bytes()) {
            return BlockError::new(Code::Unauthorized, "invalid api token").into_response();
        }
    }
    req.headers_mut().remove(API_TOKEN);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_health_gets_are_exempt() {
        assert!(exempt(&Method::GET, "/v1.0/healthz"));
        assert!(exempt(&Method::GET, "/v1.0/healthz/outbound"));
        for path in [
            "//v1.0//healthz",
            "/v1.0/healthz/",
            "/v1.0/healthz/../state/s",
            "/v1.0/%68ealthz",
            "/V1.0/healthz",
            "/v1.0/healthzz",
        ] {
            assert!(!exempt(&Method::GET, path), "{path}");
        }
        assert!(!exempt(&Method::POST, "/v1.0/healthz"));
        assert!(!exempt(&Method::HEAD, "/v1.0/healthz"));
    }

    #[test]
    fn token_compare() {
        assert!(token_matches(b"secret", b"secret"));
        assert!(!token_matches(b"secreT", b"secret"));
        assert!(!token_matches(b"secre", b"secret"));
        assert!(!token_matches(b"", b"secret"));
    }
}
