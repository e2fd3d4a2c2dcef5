//! The `DAPR_API_TOKEN` gate. Only exactly `GET /v1.0/healthz` and `GET /v1.0/healthz/outbound`
//! pass without the token: the raw path is compared whole, so `//v1.0//healthz`,
//! `/v1.0/healthz/../state/x` or `?x=/healthz` tricks need the token like any other route. The
//! compare is the one token rule (`blocks::api_token`), and the header is removed so it never travels further.

use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};
use crate::channels::header_names::API_TOKEN;
use axum::extract::Request;
use axum::http::Method;

/// Whether a request may skip the token.
pub fn exempt(method: &Method, path: &str) -> bool {
    method == Method::GET && matches!(path, "/v1.0/healthz" | "/v1.0/healthz/outbound")
}

/// Checks the token (unless [`exempt`]) and removes its header from the request.
pub fn check_token(sc: &Sidecar, req: &mut Request) -> Result<(), BlockError> {
    if !exempt(req.method(), req.uri().path()) {
        let presented = req.headers().get(&API_TOKEN).map(|v| v.as_bytes());
        if sc.check_api_token(presented).is_err() {
            // Dapr's HTTP API answers every refusal alike.
            return Err(BlockError::new(Code::Unauthorized, "invalid api token"));
        }
    }
    req.headers_mut().remove(&API_TOKEN);
    Ok(())
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
