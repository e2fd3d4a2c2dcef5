//! Valid invocations through two sidecars after the abuse: they must still echo byte for byte.

use crate::common;
use crate::generate::{alnum, pick};
use futures_util::StreamExt;
use rand::Rng;
use rand::rngs::StdRng;
use tandem_sidecar::testing::sidecar::Sidecar;

/// 1,000 random valid invocations `fuzz` → `echo` → app: random methods, path segments, query
/// and bodies (0–64 KiB); answers must echo the body byte for byte, the method and the path.
pub async fn valid_echoes(s: &Sidecar, rng: &mut StdRng) -> (usize, Vec<String>) {
    let client = common::client();
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
    let encoded = ["%20", "%C3%A9", "%FF", "%25", "%2B", "%7E", "%E2%82%AC"];
    let mut calls = Vec::new();
    for i in 0..1000 {
        let segments: Vec<String> = (0..rng.random_range(1..=5))
            .map(|_| {
                let mut seg = {
                    let n = rng.random_range(1..12);
                    alnum(rng, n)
                };
                if rng.random_bool(0.3) {
                    seg.push_str(pick::<&str>(rng, &encoded));
                }
                if rng.random_bool(0.2) {
                    seg.push_str(pick::<&str>(
                        rng,
                        &[
                            "-", "_", "~", "!", "$", "'", "(", ")", "*", "+", ",", ";", "=", ":",
                            "@",
                        ],
                    ));
                }
                seg
            })
            .collect();
        let path = segments.join("/");
        let query = rng
            .random_bool(0.4)
            .then(|| format!("q={}&x=%2F{}", alnum(rng, 5), alnum(rng, 3)));
        let len = if rng.random_bool(0.1) {
            0
        } else {
            rng.random_range(0..=64 * 1024)
        };
        let body: Vec<u8> = (0..len).map(|_| rng.random::<u8>()).collect();
        let method = *pick(rng, &methods);
        calls.push((i, method, path, query, body));
    }
    let client = &client;
    let port = s.http_port;
    let results: Vec<Result<(), String>> = futures_util::stream::iter(calls)
        .map(|(i, method, path, query, body)| async move {
            let q = query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let request = if i % 2 == 0 {
                client.request(method.clone(), format!("http://127.0.0.1:{port}/v1.0/invoke/echo/method/{path}{q}"))
            } else {
                client
                    .request(method.clone(), format!("http://127.0.0.1:{port}/{path}{q}"))
                    .header("dapr-app-id", "echo")
            };
            let response = request
                .header("content-type", "application/octet-stream")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| format!("#{i} {method} {path}: {e}"))?;
            let status = response.status().as_u16();
            let seen_method = response.headers().get("x-echo-method").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let seen_uri = response.headers().get("x-echo-uri").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let echoed = response.bytes().await.map_err(|e| format!("#{i} body: {e}"))?;
            let want_uri = format!("/{path}{q}");
            if status != 200
                || echoed.as_ref() != body.as_slice()
                || seen_method.as_deref() != Some(method.as_str())
                || seen_uri.as_deref() != Some(want_uri.as_str())
            {
                return Err(format!(
                    "#{i} {method} {want_uri}: status {status}, body {} vs {} bytes (equal: {}), app saw {seen_method:?} {seen_uri:?}",
                    echoed.len(),
                    body.len(),
                    echoed.as_ref() == body.as_slice()
                ));
            }
            Ok(())
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().cloned())
        .collect();
    (results.len() - failures.len(), failures)
}
