//! What the HTTP app channel decides without I/O: the headers a request to the app carries, and
//! Dapr's reading of the app's answers to events and binding probes. Pure functions, table-tested.

use super::Outcome;
use crate::channels::header_names as names;
use crate::channels::hop_by_hop::strip_hop_by_hop;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::collections::BTreeMap;

/// Copies event metadata onto request headers (entries that cannot be headers are left out) and
/// drops any `content-length` among them: the body sets its own.
pub(super) fn metadata_headers(headers: &mut HeaderMap, metadata: &BTreeMap<String, String>) {
    for (k, v) in metadata {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.insert(name, value);
        }
    }
    headers.remove(http::header::CONTENT_LENGTH);
}

/// The app gets a request minus hop-by-hop headers and any token a caller sent; the app's own
/// token is added here, on the last hop to the sidecar's own app, and nowhere else.
pub fn to_app_headers(headers: &mut HeaderMap, app_token: Option<&HeaderValue>) {
    strip_hop_by_hop(headers);
    headers.remove(&names::API_TOKEN);
    if let Some(token) = app_token {
        headers.insert(names::API_TOKEN.clone(), token.clone());
    }
}

/// A subscription route as a request path.
pub(super) fn route_uri(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// Dapr's reading of the app's answer to an event (reference 1.6).
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    match status {
        200..=299 => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => match map.get("status").and_then(Value::as_str) {
                None | Some("") => Outcome::Success,
                Some(s) if s.eq_ignore_ascii_case("SUCCESS") => Outcome::Success,
                Some(s) if s.eq_ignore_ascii_case("DROP") => Outcome::Drop,
                Some(_) => Outcome::Retry,
            },
            _ => Outcome::Success, // empty or non-JSON body
        },
        404 => Outcome::NoRoute,
        _ => Outcome::Retry,
    }
}

/// Whether the app's answer to `OPTIONS /<route>` means it takes the binding's events: any 2xx,
/// or 405 (a route that exists but has no OPTIONS handler), as in Dapr.
pub fn probe_accepts(status: u16) -> bool {
    (200..300).contains(&status) || status == 405
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_answers_mean_what_dapr_says() {
        let cases: &[(u16, &str, Outcome)] = &[
            (200, "", Outcome::Success),
            (200, r#"{"status":"SUCCESS"}"#, Outcome::Success),
            (204, "", Outcome::Success),
            (200, r#"{"status":""}"#, Outcome::Success),
            (200, "not json", Outcome::Success),
            (200, r#"{"status":"RETRY"}"#, Outcome::Retry),
            (200, r#"{"status":"DROP"}"#, Outcome::Drop),
            (200, r#"{"status":"MAYBE"}"#, Outcome::Retry),
            (404, "", Outcome::NoRoute),
            (500, r#"{"status":"SUCCESS"}"#, Outcome::Retry),
            (503, "", Outcome::Retry),
        ];
        for (status, body, want) in cases {
            assert_eq!(classify(*status, body.as_bytes()), *want, "{status} {body}");
        }
    }

    #[test]
    fn probe_accepts_2xx_and_405_only() {
        for status in [200, 204, 299, 405] {
            assert!(probe_accepts(status), "{status}");
        }
        for status in [301, 400, 404, 500, 503] {
            assert!(!probe_accepts(status), "{status}");
        }
    }

    #[test]
    fn app_token_only_on_the_last_hop() {
        let mut h = HeaderMap::new();
        h.insert("dapr-api-token", HeaderValue::from_static("caller-token"));
        to_app_headers(&mut h, None);
        assert!(h.get("dapr-api-token").is_none());
        let mut h = HeaderMap::new();
        h.insert("dapr-api-token", HeaderValue::from_static("caller-token"));
        to_app_headers(&mut h, Some(&HeaderValue::from_static("app-token")));
        assert_eq!(
            h.get("dapr-api-token").map(|v| v.as_bytes()),
            Some(&b"app-token"[..])
        );
    }
}
