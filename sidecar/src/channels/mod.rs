//! The sidecar's two channels, one owner each. [`app`] is the only code that builds requests to
//! the sidecar's own app (and the only writer of its `dapr-api-token`); [`peer`] owns calls to
//! other sidecars: resolution, the connection pool, replay of unprocessed calls and the reading
//! of peer errors — where a TLS connector will plug in.

pub mod app;
pub mod header_names;
pub mod hop_by_hop;
pub mod peer;
pub mod permanent_headers;

use http::HeaderValue;

/// The `Host` header an HTTP client sends to `authority` (`host:port`) over `scheme`: without
/// the port when it is the scheme's default, as hyper-util's client writes it. A channel sets it
/// itself so that the client does not `format!` it for each request.
pub fn host_header(scheme: &str, authority: &str, port: u16) -> Option<HeaderValue> {
    let default_port = if scheme == "https" { 443 } else { 80 };
    let host = match authority.rsplit_once(':') {
        Some((host, _)) if port == default_port => host,
        _ => authority,
    };
    HeaderValue::from_str(host).ok()
}

#[cfg(test)]
mod tests {
    use super::host_header;

    #[test]
    fn host_header_leaves_out_only_the_default_port() {
        for (scheme, authority, port, host) in [
            ("http", "127.0.0.1:3000", 3000, "127.0.0.1:3000"),
            ("http", "127.0.0.1:80", 80, "127.0.0.1"),
            ("https", "app:443", 443, "app"),
            ("https", "app:80", 80, "app:80"),
            ("http", "[::1]:80", 80, "[::1]"),
            ("http", "[::1]:8080", 8080, "[::1]:8080"),
        ] {
            let got = host_header(scheme, authority, port).expect("a header value");
            assert_eq!(got, host, "{scheme} {authority}");
        }
    }
}
