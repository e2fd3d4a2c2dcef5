//! Malformed secrets, metadata and invocation requests, wrong routes, odd headers.

use super::{Bad, alnum, garbage, pick};
use crate::common::raw_http::request;
use rand::Rng;
use rand::rngs::StdRng;

/// Secrets: unknown stores, non-UTF-8 keys, wrong methods.
pub fn secrets_bad(rng: &mut StdRng) -> Bad {
    let (method, target, label) = match rng.random_range(0..4) {
        0 => (
            "GET",
            format!(
                "/v1.0/secrets/{}/HOME",
                pick(rng, &["nostore", "SECRETSTORE", "%FF", "statestore"])
            ),
            "secrets: unknown store",
        ),
        1 => (
            "GET",
            format!(
                "/v1.0/secrets/{}/bulk",
                pick(rng, &["nostore", "statestore", "x"])
            ),
            "secrets: unknown store",
        ),
        2 => (
            "GET",
            format!(
                "/v1.0/secrets/secretstore/{}",
                pick(rng, &["%FF", "%C3%28", "a%FEb"])
            ),
            "secrets: non-UTF-8 key",
        ),
        _ => (
            *pick(rng, &["POST", "PUT", "DELETE", "PATCH"]),
            "/v1.0/secrets/secretstore/HOME".to_owned(),
            "secrets: wrong method",
        ),
    };
    Bad::new(label, method, request(method, &target, &[], b""))
}

/// Metadata: non-UTF-8 values and keys, wrong methods.
pub fn metadata_bad(rng: &mut StdRng, fresh: &str) -> Bad {
    match rng.random_range(0..3) {
        0 => {
            let mut body = garbage(rng, 100);
            body.push(0xff);
            Bad::new(
                "metadata: non-UTF-8 value",
                "PUT",
                request("PUT", &format!("/v1.0/metadata/{fresh}"), &[], &body),
            )
        }
        1 => {
            let key = pick(rng, &["%FF", "%C3%28", "a%FE"]);
            Bad::new(
                "metadata: non-UTF-8 key",
                "PUT",
                request("PUT", &format!("/v1.0/metadata/{key}"), &[], b"v"),
            )
        }
        _ => {
            let method = *pick(rng, &["POST", "DELETE", "PATCH"]);
            Bad::new(
                "metadata: wrong method",
                method,
                request(method, "/v1.0/metadata", &[], b""),
            )
        }
    }
}

/// An invocation of an app id nobody has (Dapr: 500 `ERR_DIRECT_INVOKE`).
pub fn invoke_unknown_app(rng: &mut StdRng) -> Bad {
    let method = *pick(rng, &["GET", "POST", "PUT", "DELETE", "PATCH"]);
    let id = format!("nobody-{}", alnum(rng, 8));
    let bytes = if rng.random_bool(0.5) {
        request(method, &format!("/v1.0/invoke/{id}/method/x"), &[], b"")
    } else {
        request(
            method,
            &format!("/{}", alnum(rng, 6)),
            &[("dapr-app-id", id.into_bytes())],
            b"",
        )
    };
    Bad::new("invoke: unknown app id", method, bytes).invoke_500()
}

/// An invocation of an app id that cannot be one.
pub fn invoke_invalid_app_id(rng: &mut StdRng) -> Bad {
    let long = "a".repeat(59);
    let ids = [
        "a.b.c",
        "bad$id",
        "-x",
        "x-",
        long.as_str(),
        "%FF",
        "%2e%2e",
        ".",
        "a..b",
        "",
        "caf%C3%A9",
        "a%00b",
    ];
    let id = *pick(rng, &ids);
    Bad::new(
        "invoke: invalid app id",
        "POST",
        request("POST", &format!("/v1.0/invoke/{id}/method/x"), &[], b"{}"),
    )
    .invoke_500()
}

/// An invocation whose method path carries forbidden characters.
pub fn invoke_forbidden_method_chars(rng: &mut StdRng) -> Bad {
    let method_path = *pick(
        rng,
        &[
            "a%2F..%2Fb",
            "x%00y",
            "x%0D%0Ay",
            "a%23b",
            "a%3Fb",
            "a%5Cb",
            "x%0Ay",
            "x%7Fy",
            "ok/%2F/x",
            "%2f",
        ],
    );
    let method = *pick(rng, &["GET", "POST", "PUT", "DELETE"]);
    Bad::new(
        "invoke: forbidden method chars",
        method,
        request(
            method,
            &format!("/v1.0/invoke/echo/method/{method_path}"),
            &[],
            b"",
        ),
    )
}

/// A non-API path without a usable `dapr-app-id`.
pub fn invoke_no_app_id(rng: &mut StdRng) -> Bad {
    let headers: Vec<(&str, Vec<u8>)> = match rng.random_range(0..3) {
        0 => vec![],
        1 => vec![("dapr-app-id", b"\xff\xfe".to_vec())],
        _ => vec![("dapr-app-id", Vec::new())],
    };
    let method = *pick(rng, &["GET", "POST", "OPTIONS", "PROPFIND"]);
    Bad::new(
        "invoke: no usable app id",
        method,
        request(
            method,
            &format!("/{}/{}", alnum(rng, 5), alnum(rng, 5)),
            &headers,
            b"",
        ),
    )
}

/// A known route with the wrong method, or no route at all.
pub fn wrong_method_or_route(rng: &mut StdRng) -> Bad {
    let (method, target) = *pick(
        rng,
        &[
            ("PATCH", "/v1.0/state/statestore"),
            ("GET", "/v1.0/state/statestore"),
            ("DELETE", "/v1.0/state/statestore"),
            ("PATCH", "/v1.0/state/statestore/k"),
            ("PUT", "/v1.0/state/statestore/k"),
            ("GET", "/v1.0/state/statestore/transaction/x"),
            ("PUT", "/v1.0/healthz"),
            ("POST", "/v1.0/healthz/outbound"),
            ("GET", "/v1.0/shutdown"),
            ("DELETE", "/v1.0/shutdown"),
            ("HEAD", "/v1.0/shutdown"),
            ("HEAD", "/v1.0/state/statestore"),
            ("HEAD", "/v1.0/state/statestore/%FF"),
            ("TRACE", "/v1.0/metadata"),
            ("GET", "/v2.0/state/statestore/k"),
            ("GET", "/v1.0-alpha1/state/statestore/query"),
        ],
    );
    Bad::new(
        "wrong method or route",
        method,
        request(method, target, &[], b""),
    )
}

/// Non-ASCII bytes in well-known header values, with a bad body.
pub fn obs_text_headers(rng: &mut StdRng) -> Bad {
    let values: &[(&str, &[u8])] = &[
        ("traceparent", b"\xff\xfe garbage"),
        ("traceparent", b"00-zz-zz-zz"),
        ("tracestate", b"=,=,="),
        ("baggage", b"\xff=\xfe"),
        ("content-type", b"\xff"),
        ("dapr-app-id", b"\xc3\x28"),
        ("metadata.ttlInSeconds", b"\xff"),
        ("x-forwarded-for", b"\xff\xff"),
        ("accept", b"\x80\x81"),
        ("dapr-api-token", b"\xff"),
    ];
    let (name, value) = *pick(rng, values);
    let body = garbage(rng, 50);
    Bad::new(
        "obs-text header values",
        "POST",
        request(
            "POST",
            "/v1.0/state/statestore",
            &[(name, value.to_vec())],
            &body,
        ),
    )
}

/// Many junk headers (fewer than hyper's limit of 100), some with obs-text.
pub fn many_headers(rng: &mut StdRng) -> Bad {
    let n = rng.random_range(50..95);
    let headers: Vec<(&str, Vec<u8>)> = (0..n)
        .map(|i| {
            let name: &'static str = Box::leak(format!("x-junk-{i}").into_boxed_str());
            let mut v = {
                let n = rng.random_range(0..40);
                alnum(rng, n)
            }
            .into_bytes();
            if i % 7 == 0 {
                v.push(0xff);
            }
            (name, v)
        })
        .collect();
    Bad::new(
        "many headers (< 100)",
        "PUT",
        request("PUT", "/v1.0/state/statestore", &headers, b"{"),
    )
}

/// A header value with a bare LF, with a bad body.
pub fn lf_injected_header(rng: &mut StdRng) -> Bad {
    // A legal-looking header that smuggles an extra line (bare LF is a line end to
    // lenient parsers): the request is still malformed JSON and must get a JSON 400.
    let value = format!("a\nX-Injected-{}: yes", alnum(rng, 4)).into_bytes();
    Bad::new(
        "LF-injected header + bad body",
        "POST",
        request("POST", "/v1.0/state/statestore", &[("X-Note", value)], b"{"),
    )
}
