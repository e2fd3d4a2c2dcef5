//! The `DAPR_API_TOKEN` gate. Only exactly `GET /v1.0/healthz` and `GET /v1.0/healthz/outbound`
//! pass without the token: the raw path is compared whole, so `//v1.0//healthz`,
//! `/v1.0/healthz/../state/x` or `?x=/healthz` tricks need the token like any other route. The
//! compare is the one token rule (`blocks::api_token`), and the header is removed so it never travels further.

use super::Shared;
use crate::blocks::error::{BlockError, Code};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tandem_crds::annotations::headers::API_TOKEN;

/// Whether a request may skip the token.
pub fn exempt(method: &Method, path: &str) -> bool {
    method == Method::GET && matches!(path, "/v1.0/healthz" | "/v1.0/healthz/outbound")
}

pub async fn require_token(State(sc): State<Shared>, mut req: Request, next: Next) -> Response {
    if !exempt(req.method(), req.uri().path()) {
        let presented = req.headers().get(API_TOKEN).map(|v| v.as_bytes());
        if sc.check_api_token(presented).is_err() {
            // Dapr's HTTP API answers every refusal alike.
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
}
