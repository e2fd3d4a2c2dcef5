//! Header rewriting on the invocation path: pure functions over `HeaderMap`s.

use crate::channels::header_names as names;
use crate::channels::hop_by_hop::strip_hop_by_hop;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::TraceContextExt;

/// Headers a client may not set itself, because the sidecars vouch for them.
static SIDECAR_OWNED: [&HeaderName; 6] = [
    &names::CALLER_APP_ID,
    &names::CALLER_NAMESPACE,
    &names::CALLEE_APP_ID,
    &names::APP_ID,
    &names::API_TOKEN,
    &names::DESTINATION_APP_ID,
];

/// Who is calling whom, added by the caller's sidecar.
#[derive(Debug, Clone)]
pub struct CallIdentity<'a> {
    pub caller_app_id: &'a str,
    pub caller_namespace: Option<&'a str>,
    pub callee_app_id: &'a str,
}

/// Prepares a client's request headers for the hop to the callee: drops hop-by-hop headers and
/// any sidecar-owned header the client sent, then adds the caller/callee identity and a child
/// `traceparent`.
pub fn outbound_headers(headers: &mut HeaderMap, id: &CallIdentity<'_>) {
    strip_hop_by_hop(headers);
    headers.retain_bin_free();
    stamp_identity(headers, id);
}

/// Prepares a proxied gRPC call's metadata for the hop to the callee: as
/// [`outbound_headers`], except that binary (`-bin`) metadata passes and `te: trailers`
/// stays, as gRPC needs.
pub fn proxy_headers(headers: &mut HeaderMap, id: &CallIdentity<'_>) {
    strip_hop_by_hop(headers);
    stamp_identity(headers, id);
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
}

fn stamp_identity(headers: &mut HeaderMap, id: &CallIdentity<'_>) {
    // One pass over the request's names; a client rarely sends any of these.
    if headers.keys().any(|k| SIDECAR_OWNED.contains(&k)) {
        for name in SIDECAR_OWNED {
            headers.remove(name);
        }
    }
    insert(headers, &names::CALLER_APP_ID, id.caller_app_id);
    if let Some(ns) = id.caller_namespace {
        insert(headers, &names::CALLER_NAMESPACE, ns);
    }
    insert(headers, &names::CALLEE_APP_ID, id.callee_app_id);
    // The hop's context is the current span's (the caller's client span, or the front end's
    // server span); without one (a unit test), a child of what the client sent.
    let cx = opentelemetry::Context::current();
    if cx.span().span_context().is_valid() {
        crate::traces::context::inject_http(&cx, headers);
    } else {
        let parent = headers
            .get(&names::TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let trace = super::trace::child_traceparent(parent.as_deref());
        insert(headers, &names::TRACEPARENT, &trace);
    }
}

fn insert(headers: &mut HeaderMap, name: &HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name.clone(), value);
    }
}

/// `*-bin` headers are gRPC binary metadata; Dapr drops them on the HTTP path.
trait RetainBinFree {
    fn retain_bin_free(&mut self);
}

impl RetainBinFree for HeaderMap {
    fn retain_bin_free(&mut self) {
        let bin: Vec<HeaderName> = self
            .keys()
            .filter(|k| k.as_str().ends_with("-bin"))
            .cloned()
            .collect();
        for name in bin {
            self.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn outbound_strips_spoofed_identity_and_hop_headers() {
        let mut h = map(&[
            ("connection", "x-private, keep-alive"),
            ("x-private", "1"),
            ("keep-alive", "5"),
            ("dapr-caller-app-id", "spoofed"),
            ("dapr-api-token", "secret"),
            ("grpc-trace-bin", "zz"),
            ("x-custom", "kept"),
        ]);
        outbound_headers(
            &mut h,
            &CallIdentity {
                caller_app_id: "a",
                caller_namespace: Some("ns"),
                callee_app_id: "b",
            },
        );
        assert_eq!(
            h.get("dapr-caller-app-id").map(|v| v.as_bytes()),
            Some(&b"a"[..])
        );
        assert_eq!(
            h.get("dapr-caller-namespace").map(|v| v.as_bytes()),
            Some(&b"ns"[..])
        );
        assert_eq!(
            h.get("dapr-callee-app-id").map(|v| v.as_bytes()),
            Some(&b"b"[..])
        );
        assert_eq!(h.get("x-custom").map(|v| v.as_bytes()), Some(&b"kept"[..]));
        for gone in [
            "connection",
            "x-private",
            "keep-alive",
            "dapr-api-token",
            "grpc-trace-bin",
        ] {
            assert!(h.get(gone).is_none(), "{gone} must be removed");
        }
        assert!(h.get("traceparent").is_some());
    }
}
