//! The `DAPR_API_TOKEN` gate of the gRPC port. daprd checks the `dapr-api-token` metadata in an
//! interceptor that every service on its API server shares (reflection included; it serves no
//! gRPC health service there), so nothing on this port is exempt. The compare is constant-time,
//! and the metadata is removed so it never travels further (an invoked app never sees it).

use super::Shared;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;
use tandem_crds::annotations::headers::API_TOKEN;
use tonic::Status;

/// Why a call was refused, in daprd's words; `None` when it may pass.
pub fn refusal(presented: Option<&[u8]>, expected: Option<&str>) -> Option<&'static str> {
    let expected = expected?;
    match presented {
        None => Some("missing api token in request metadata"),
        Some(token) if !bool::from(token.ct_eq(expected.as_bytes())) => {
            Some("authentication error: api token mismatch")
        }
        Some(_) => None,
    }
}

pub async fn require_token(State(sc): State<Shared>, mut req: Request, next: Next) -> Response {
    let presented = req.headers().get(API_TOKEN).map(|v| v.as_bytes());
    if let Some(message) = refusal(presented, sc.api_token()) {
        return Status::unauthenticated(message).into_http();
    }
    req.headers_mut().remove(API_TOKEN);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_required_only_when_configured() {
        assert_eq!(refusal(None, None), None);
        assert_eq!(refusal(Some(b"anything"), None), None);
        assert_eq!(refusal(Some(b"secret"), Some("secret")), None);
        assert_eq!(
            refusal(None, Some("secret")),
            Some("missing api token in request metadata")
        );
        for wrong in [&b"secreT"[..], b"secre", b"", b"secret2"] {
            assert_eq!(
                refusal(Some(wrong), Some("secret")),
                Some("authentication error: api token mismatch"),
                "{wrong:?}"
            );
        }
    }
}
