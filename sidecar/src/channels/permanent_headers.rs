//! The HTTP header names daprd treats as "permanent" (IANA-registered): when headers become
//! gRPC metadata (an HTTP invocation of a gRPC app, a gRPC app's answer to an HTTP caller)
//! these travel prefixed `dapr-`, so they cannot clash with the transport's own.

use http::HeaderName;

/// Headers daprd prefixes with `dapr-` when they cross between HTTP and gRPC.
pub const PERMANENT_HEADERS: &[&str] = &[
    "accept",
    "accept-charset",
    "accept-language",
    "accept-ranges",
    "cache-control",
    "content-type",
    "cookie",
    "date",
    "expect",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-schedule-tag-match",
    "if-unmodified-since",
    "max-forwards",
    "origin",
    "pragma",
    "referer",
    "via",
    "warning",
];

/// A name prefixed `dapr-`.
pub fn dapr_prefixed(name: &HeaderName) -> Option<HeaderName> {
    HeaderName::from_bytes(format!("dapr-{name}").as_bytes()).ok()
}

/// Whether daprd prefixes this header with `dapr-` between HTTP and gRPC.
pub fn is_permanent(name: &HeaderName) -> bool {
    PERMANENT_HEADERS.contains(&name.as_str())
}
