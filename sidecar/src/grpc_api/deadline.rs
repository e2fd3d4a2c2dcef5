//! Deadlines: a call's `grpc-timeout` bounds the work it starts. When it passes, the adapter's
//! future is dropped (cancelling what it awaits: a store call, a peer or app invocation) and the
//! caller gets DEADLINE_EXCEEDED, as from daprd (grpc-go derives the handler's context from it).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Duration;
use tonic::Status;

/// A `grpc-timeout` value: 1–8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`), per the gRPC
/// HTTP/2 protocol. Anything else is no deadline.
pub fn parse_timeout(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

pub async fn enforce_deadline(req: Request, next: Next) -> Response {
    let timeout = req
        .headers()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_timeout);
    let Some(timeout) = timeout else {
        return next.run(req).await;
    };
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            Status::deadline_exceeded(format!("deadline of {timeout:?} exceeded")).into_http()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt;

    #[test]
    fn timeouts_parse_as_the_protocol_spells_them() {
        for (value, expected) in [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("5S", Some(Duration::from_secs(5))),
            ("250m", Some(Duration::from_millis(250))),
            ("99999999u", Some(Duration::from_micros(99_999_999))),
            ("7n", Some(Duration::from_nanos(7))),
            ("", None),
            ("S", None),
            ("5", None),
            ("5s", None),
            ("-5S", None),
            ("123456789S", None),
            ("1.5S", None),
            ("5Sx", None),
        ] {
            assert_eq!(parse_timeout(value), expected, "{value:?}");
        }
    }

    async fn status_after(timeout: &str, work: Duration) -> Option<String> {
        let slow = move || async move {
            tokio::time::sleep(work).await;
            "done"
        };
        let router = Router::new()
            .route("/svc/Call", post(slow))
            .layer(axum::middleware::from_fn(enforce_deadline));
        let req = http::Request::post("/svc/Call")
            .header("grpc-timeout", timeout)
            .body(Body::empty())
            .expect("request");
        let response = router.oneshot(req).await.expect("infallible");
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    #[tokio::test]
    async fn work_past_the_deadline_is_deadline_exceeded() {
        let started = std::time::Instant::now();
        let code = status_after("50m", Duration::from_secs(5)).await;
        assert_eq!(code.as_deref(), Some("4"), "DEADLINE_EXCEEDED");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(status_after("5S", Duration::from_millis(10)).await, None);
        assert_eq!(status_after("junk", Duration::from_millis(10)).await, None);
    }
}
