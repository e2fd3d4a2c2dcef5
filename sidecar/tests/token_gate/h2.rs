//! The gate over HTTP/2 (prior knowledge), where the path comes in `:path`.

use crate::Cluster;
use crate::common::raw_http::RawResponse;
use crate::judge::{Tally, judge};
use crate::matrix::{BASES, Case, path_variants};
use crate::tok::{INVALID_TOKS, Tok};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

type H2Client = Client<HttpConnector, Empty<bytes::Bytes>>;

/// The refused-token cases of the matrix for HTTP/2 (origin-form targets, fewer methods).
fn cases(c: &Cluster) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut n = 0usize;
    for base in BASES {
        for target in path_variants(base, 0) {
            if target.starts_with("http://") {
                continue;
            }
            for method in ["GET", "POST", "DELETE", "HEAD"] {
                n += 1;
                let (name, port, right, other) = if n.is_multiple_of(2) {
                    ("a", c.a.http_port, "tok-a", "tok-b")
                } else {
                    ("b", c.b.http_port, "tok-b", "tok-a")
                };
                let tok = INVALID_TOKS[n % INVALID_TOKS.len()];
                if tok == Tok::WrongThenRight {
                    continue; // hyper's client would send both; same as HTTP/1, already covered
                }
                let (mut headers, target) = tok.apply(&target, right, other, n);
                headers.push(("dapr-app-id".into(), "b".into()));
                // HTTP/2 header names are lower case on the wire.
                for h in &mut headers {
                    h.0 = h.0.to_ascii_lowercase();
                }
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
    cases
}

async fn send(client: &H2Client, case: &Case) -> Result<RawResponse, String> {
    let mut builder = http::Request::builder()
        .method(case.method)
        .uri(format!("http://127.0.0.1:{}{}", case.port, case.target));
    for (k, v) in &case.headers {
        builder = builder.header(k, v);
    }
    let request = builder.body(Empty::new()).map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(15), client.request(request))
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| format!("h2 request: {e}"))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// The same refusals over HTTP/2, judged like the HTTP/1.1 matrix.
pub async fn run_h2(c: &Cluster, tally: &mut Tally) {
    let client: H2Client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let cases = cases(c);
    let client = &client;
    let results: Vec<(usize, Result<RawResponse, String>)> =
        futures_util::stream::iter(cases.iter().enumerate())
            .map(|(i, case)| async move { (i, send(client, case).await) })
            .buffer_unordered(12)
            .collect()
            .await;
    for (i, result) in results {
        judge(&cases[i], result, tally);
    }
}
