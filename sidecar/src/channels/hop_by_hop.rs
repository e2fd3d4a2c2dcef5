//! Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and never travel past it,
//! whichever channel carries the request or its answer.

use http::header::{
    CONNECTION, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName};

/// Whether `name` is hop-by-hop in itself (those `Connection` names are found separately).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    // Standard names compare as enum values; the three others by their text.
    *name == CONNECTION
        || *name == TRANSFER_ENCODING
        || *name == UPGRADE
        || *name == TE
        || *name == TRAILER
        || *name == PROXY_AUTHORIZATION
        || *name == PROXY_AUTHENTICATE
        || matches!(
            name.as_str(),
            "keep-alive" | "proxy-connection" | "http2-settings"
        )
}

/// Removes hop-by-hop headers, including those named in `Connection`. One pass over the names
/// the request has (a handful) instead of a hashed lookup per hop-by-hop name: most requests
/// carry none, and this runs on every hop in both directions.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let mut gone: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    gone.extend(headers.keys().filter(|k| is_hop_by_hop(k)).cloned());
    for name in gone {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::strip_hop_by_hop;
    use http::{HeaderMap, HeaderName, HeaderValue};

    type Headers = &'static [(&'static str, &'static str)];

    fn names(pairs: Headers) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
        left.sort();
        left
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        // (headers in, names left)
        let cases: &[(Headers, &[&str])] = &[
            (
                &[("content-type", "a"), ("x-app", "1")],
                &["content-type", "x-app"],
            ),
            (
                &[
                    ("connection", "keep-alive, x-private"),
                    ("keep-alive", "timeout=5"),
                    ("x-private", "secret"),
                    ("x-app", "1"),
                ],
                &["x-app"],
            ),
            (
                &[
                    ("transfer-encoding", "chunked"),
                    ("te", "trailers"),
                    ("trailer", "x"),
                    ("upgrade", "h2c"),
                    ("http2-settings", "AAA"),
                    ("proxy-connection", "close"),
                    ("proxy-authorization", "Basic x"),
                    ("proxy-authenticate", "Basic"),
                    ("authorization", "Bearer t"),
                ],
                &["authorization"],
            ),
        ];
        for &(given, left) in cases {
            assert_eq!(names(given), left, "{given:?}");
        }
    }
}
