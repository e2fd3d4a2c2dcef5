//! The gate matrix: every route × method × path trick × token variant.

use crate::Cluster;
use crate::tok::{INVALID_TOKS, Tok};

pub const BASES: &[&str] = &[
    "/v1.0/state/statestore",
    "/v1.0/state/statestore/bulk",
    "/v1.0/state/statestore/transaction",
    "/v1.0/state/statestore/k",
    "/v1.0/secrets/secretstore/HOME",
    "/v1.0/secrets/secretstore/bulk",
    "/v1.0/metadata",
    "/v1.0/metadata/k",
    "/v1.0/healthz",
    "/v1.0/healthz/outbound",
    "/v1.0/shutdown",
    "/v1.0/invoke/b/method/echo",
    "/v1.0/invoke/b/method",
    "/some/arbitrary/path",
    "/v1.0/healthzz",
    "/v1.0-alpha1/healthz",
    "/",
];

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get", "PROPFIND",
];

/// Path tricks applied to one base path.
pub fn path_variants(base: &str, port: u16) -> Vec<String> {
    let mut out = vec![
        base.to_owned(),
        format!("{base}/"),
        format!("{base}//"),
        format!("/{base}"),
        format!("{base}?x=/v1.0/healthz"),
        format!("{base}?x=/healthz&y=/v1.0/healthz/outbound"),
        format!("{base};x=/v1.0/healthz"),
        format!("http://127.0.0.1:{port}{base}"),
    ];
    if let Some(rest) = base.strip_prefix("/v1.0/") {
        out.push(format!("/v1.0//{rest}"));
        out.push(format!("//v1.0//{rest}"));
        out.push(format!("/V1.0/{rest}"));
        out.push(format!("/v1.0/./{rest}"));
        out.push(format!("/v1.0%2F{rest}"));
        out.push(format!("/v1.0/healthz/../{rest}"));
        out.push(format!("/v1.0/healthz/%2e%2e/{rest}"));
        out.push(format!("/v1.0/healthz/outbound/../../{rest}"));
        // The first byte of the route percent-encoded: /v1.0/%68ealthz.
        let mut chars = rest.chars();
        if let Some(first) = chars.next() {
            out.push(format!("/v1.0/%{:02x}{}", first as u32, chars.as_str()));
        }
    } else {
        out.push(format!("/v1.0/healthz/..{base}"));
        out.push(format!("/v1.0/healthz/%2e%2e{base}"));
    }
    out
}

/// The path of a request target (origin or absolute form), without the query.
fn target_path(target: &str) -> &str {
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    path.split('?').next().unwrap_or_default()
}

/// The only requests that may pass without a token.
pub fn exempt(method: &str, target: &str) -> bool {
    method == "GET"
        && matches!(
            target_path(target),
            "/v1.0/healthz" | "/v1.0/healthz/outbound"
        )
}

pub struct Case {
    pub port: u16,
    pub sidecar: &'static str,
    pub method: &'static str,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub tok: Tok,
}

impl Case {
    pub fn describe(&self) -> String {
        format!(
            "{} {} {:?} on {} ({:?})",
            self.method, self.target, self.headers, self.sidecar, self.tok
        )
    }
}

/// Builds the matrix. `valid` picks the accepted-token cases (never sent to shutdown routes).
pub fn matrix(c: &Cluster, valid: bool) -> Vec<Case> {
    let sidecars = [
        ("a", c.a.http_port, "tok-a", "tok-b"),
        ("b", c.b.http_port, "tok-b", "tok-a"),
    ];
    let mut cases = Vec::new();
    let mut n = 0usize;
    for base in BASES {
        for (vi, _) in path_variants(base, 0).iter().enumerate() {
            for method in METHODS {
                n += 1;
                let (name, port, right, other) = sidecars[n % 2];
                let target = path_variants(base, port)[vi].clone();
                let mut extra = Vec::new();
                if !n.is_multiple_of(3) {
                    extra.push(("dapr-app-id".to_owned(), "b".to_owned()));
                }
                // Proxy-style overrides must not change what the gate looks at.
                if n.is_multiple_of(5) {
                    extra.push(("X-HTTP-Method-Override".to_owned(), "GET".to_owned()));
                    extra.push(("X-Original-URL".to_owned(), "/v1.0/healthz".to_owned()));
                    extra.push(("X-Forwarded-Prefix".to_owned(), "/v1.0/healthz".to_owned()));
                }
                let toks: Vec<Tok> = if valid {
                    if target.contains("hutdown") {
                        continue; // a valid token there would stop the sidecar
                    }
                    vec![if n.is_multiple_of(2) {
                        Tok::RightUpperName
                    } else {
                        Tok::RightMixedName
                    }]
                } else {
                    INVALID_TOKS.to_vec()
                };
                for tok in toks {
                    let (mut headers, target) = tok.apply(&target, right, other, n);
                    headers.extend(extra.iter().cloned());
                    cases.push(Case {
                        port,
                        sidecar: name,
                        method,
                        target,
                        headers,
                        tok,
                    });
                }
            }
        }
    }
    cases
}
