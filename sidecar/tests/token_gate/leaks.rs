//! Token travel: which `dapr-api-token` values reach the apps behind the sidecars.

use crate::Cluster;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use tandem_sidecar::testing::echo_app::EchoApp;

/// One leg of calls: through which sidecar, to which app id, with which client token, and what
/// the app behind the target must see.
pub struct Leg<'a> {
    pub label: &'a str,
    /// The calling sidecar's HTTP port.
    pub port: u16,
    /// The target app id.
    pub target: &'a str,
    /// The client's `dapr-api-token`.
    pub token: Option<&'a str>,
    pub n: usize,
    pub app: &'a EchoApp,
    /// The `dapr-api-token` values the app must see on every call.
    pub want: &'a [String],
}

pub fn legs<'a>(c: &'a Cluster, app_b: &'a [String], none: &'a [String]) -> Vec<Leg<'a>> {
    let leg = |label, port, target, token, n, app, want| Leg {
        label,
        port,
        target,
        token: Some(token),
        n,
        app,
        want,
    };
    vec![
        leg(
            "a-to-b",
            c.a.http_port,
            "b",
            "tok-a",
            1_000,
            &c.b_app,
            app_b,
        ),
        leg("b-to-b", c.b.http_port, "b", "tok-b", 200, &c.b_app, app_b),
        leg(
            "c-to-b",
            c.c.http_port,
            "b",
            "client-junk",
            100,
            &c.b_app,
            app_b,
        ),
        leg("a-to-c", c.a.http_port, "c", "tok-a", 100, &c.c_app, none),
        leg("b-to-c", c.b.http_port, "c", "tok-b", 100, &c.c_app, none),
        leg(
            "c-to-c",
            c.c.http_port,
            "c",
            "client-junk",
            100,
            &c.c_app,
            none,
        ),
    ]
}

/// The number of requests seen, each `dapr-api-token` value list with its count, and the leaks.
type Seen = (usize, BTreeMap<Vec<String>, usize>, Vec<String>);

/// Every `dapr-api-token` value an app saw since `from`, and any header anywhere carrying a
/// client or sidecar API token.
pub fn seen_tokens(app: &EchoApp, from: usize) -> Seen {
    let seen = app.seen();
    let mut by_value = BTreeMap::new();
    let mut leaks = Vec::new();
    for s in &seen[from..] {
        let values: Vec<String> = s
            .headers
            .get_all("dapr-api-token")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        *by_value.entry(values).or_default() += 1;
        for (name, value) in &s.headers {
            let v = String::from_utf8_lossy(value.as_bytes());
            if ["tok-a", "tok-b", "client-junk"]
                .iter()
                .any(|t| v.contains(t))
            {
                leaks.push(format!("{} {}: {name}: {v}", s.method, s.uri));
            }
        }
    }
    (seen.len() - from, by_value, leaks)
}

/// `n` invocations of `target` through the sidecar on `port`; how many answered 200.
pub async fn calls(
    client: &reqwest::Client,
    port: u16,
    target: &str,
    token: Option<&str>,
    n: usize,
    label: &str,
) -> usize {
    let methods = [
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ];
    let oks: Vec<bool> = futures_util::stream::iter(0..n)
        .map(|i| {
            let method = methods[i % methods.len()].clone();
            // Half through the invoke path, half through the dapr-app-id header.
            let mut request = if i % 2 == 0 {
                client.request(
                    method,
                    format!("http://127.0.0.1:{port}/v1.0/invoke/{target}/method/{label}/{i}"),
                )
            } else {
                client
                    .request(method, format!("http://127.0.0.1:{port}/{label}/{i}"))
                    .header("dapr-app-id", target)
            };
            if let Some(t) = token {
                request = request.header("dapr-api-token", t);
            }
            async move {
                match request.body(format!("body {i}")).send().await {
                    Ok(r) if r.status() == 200 => true,
                    Ok(r) => {
                        eprintln!("{label} #{i}: {}", r.status());
                        false
                    }
                    Err(e) => {
                        eprintln!("{label} #{i}: {e}");
                        false
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    oks.into_iter().filter(|ok| *ok).count()
}
