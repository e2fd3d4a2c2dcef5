//! The binding against a real HTTP server on a loopback port, which records what it received
//! and answers by path.

use super::*;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn answer(State(log): State<Log>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    if let Ok(mut log) = log.lock() {
        log.push(Seen {
            method: parts.method.to_string(),
            path: path.clone(),
            headers: parts.headers.clone(),
            body: body.clone(),
        });
    }
    match path.as_str() {
        "/missing" => (reqwest::StatusCode::NOT_FOUND, "nope").into_response(),
        "/big" => vec![b'x'; 1000].into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            "late".into_response()
        }
        _ => {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert("x-reply", HeaderValue::from_static("a"));
            headers.append("x-multi", HeaderValue::from_static("1"));
            headers.append("x-multi", HeaderValue::from_static("2"));
            (headers, [b"got:".as_slice(), &body].concat()).into_response()
        }
    }
}

/// A recording server on a free port; its base URL and log.
async fn server() -> (String, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log = Log::default();
    let app = axum::Router::new().fallback(answer).with_state(log.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), log)
}

fn binding(url: &str, extra: &[(&str, &str)]) -> HttpBinding {
    let mut fields = vec![("url".to_owned(), url.to_owned())];
    fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = HttpConfig::from_metadata(&Metadata::new(fields)).expect("config");
    HttpBinding::new(&config).expect("client")
}

fn request(op: &str, data: &str, metadata: &[(&str, &str)]) -> InvokeRequest {
    InvokeRequest {
        operation: op.to_owned(),
        data: Bytes::copy_from_slice(data.as_bytes()),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn last(log: &Log) -> Seen {
    log.lock()
        .expect("log")
        .last()
        .cloned()
        .expect("the server saw a request")
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn create_posts_the_data_with_path_headers_and_trace_context() {
    let (url, log) = server().await;
    let http = binding(&format!("{url}/base/"), &[]);
    let metadata = [
        ("path", "/items"),
        ("X-Custom", "v"),
        ("lower", "not a header"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
    ];
    let answer = http
        .invoke(request("create", r#"{"a":1}"#, &metadata))
        .await
        .expect("create");

    let seen = last(&log);
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/base/items")
    );
    assert_eq!(seen.body.as_ref(), br#"{"a":1}"#);
    assert_eq!(header(&seen, "x-custom"), Some("v"));
    assert_eq!(header(&seen, "lower"), None);
    assert_eq!(header(&seen, "traceparent"), Some(metadata[3].1));
    assert_eq!(header(&seen, "content-type"), Some(JSON));
    assert_eq!(header(&seen, "accept"), Some(JSON));

    assert_eq!(answer.data.as_deref(), Some(&br#"got:{"a":1}"#[..]));
    let md = |k: &str| answer.metadata.get(k).map(String::as_str);
    assert_eq!(md("statusCode"), Some("200"));
    assert_eq!(md("status"), Some("200 OK"));
    assert_eq!(md("X-Reply"), Some("a"));
    assert_eq!(md("X-Multi"), Some("1, 2"));
    assert_eq!(md("Content-Length"), Some("11"));
}

#[tokio::test]
async fn each_operation_is_its_method_and_only_writes_send_a_body() {
    let (url, log) = server().await;
    let http = binding(
        &url,
        &[
            ("securityToken", "s3cret"),
            ("securityTokenHeader", "X-Token"),
        ],
    );
    let cases = [
        ("get", "GET", false),
        ("head", "HEAD", false),
        ("post", "POST", true),
        ("put", "PUT", true),
        ("patch", "PATCH", true),
        ("delete", "DELETE", false),
        ("options", "OPTIONS", false),
        ("trace", "TRACE", false),
    ];
    for (op, method, sends_body) in cases {
        let metadata = [("Content-Type", "text/plain"), ("Accept", "text/plain")];
        http.invoke(request(op, "payload", &metadata))
            .await
            .expect(op);
        let seen = last(&log);
        assert_eq!(seen.method, method);
        assert_eq!(!seen.body.is_empty(), sends_body, "{op}");
        assert_eq!(header(&seen, "x-token"), Some("s3cret"), "{op}");
        // Headers given in the metadata replace the JSON defaults.
        assert_eq!(header(&seen, "accept"), Some("text/plain"), "{op}");
    }
    let err = http
        .invoke(request("connect", "", &[]))
        .await
        .expect_err("connect");
    assert!(
        matches!(err, BindingError::UnsupportedOperation { .. }),
        "{err}"
    );
    assert!(!format!("{:?}", http.config).contains("s3cret"));
}

#[tokio::test]
async fn non_2xx_is_an_error_carrying_the_metadata_unless_switched_off() {
    let (url, _log) = server().await;
    let strict = binding(&url, &[]);
    let err = strict
        .invoke(request("get", "", &[("path", "missing")]))
        .await
        .expect_err("404 is an error by default");
    let md = err.metadata().expect("metadata survives the error");
    assert_eq!(md.get("statusCode").map(String::as_str), Some("404"));
    assert_eq!(md.get("status").map(String::as_str), Some("404 Not Found"));
    assert!(err.to_string().contains("404"), "{err}");

    // Per request, and per component.
    let answer = strict
        .invoke(request(
            "get",
            "",
            &[("path", "missing"), ("errorIfNot2XX", "false")],
        ))
        .await
        .expect("switched off for this request");
    assert_eq!(
        answer.metadata.get("statusCode").map(String::as_str),
        Some("404")
    );
    let lenient = binding(&url, &[("errorIfNot2XX", "false")]);
    let answer = lenient
        .invoke(request("get", "", &[("path", "missing")]))
        .await
        .expect("switched off for the component");
    assert_eq!(answer.data.as_deref(), Some(&b"nope"[..]));
}

#[tokio::test]
async fn bodies_are_cut_and_slow_answers_time_out() {
    let (url, _log) = server().await;
    let http = binding(
        &url,
        &[("maxResponseBodySize", "100"), ("responseTimeout", "300ms")],
    );
    let answer = http
        .invoke(request("get", "", &[("path", "big")]))
        .await
        .expect("big");
    assert_eq!(answer.data.map(|d| d.len()), Some(100));
    let err = http
        .invoke(request("get", "", &[("path", "slow")]))
        .await
        .expect_err("slow");
    assert!(matches!(err, BindingError::Backend { .. }), "{err}");

    // Nobody listening: a backend error, not a panic.
    let port = crate::testing::free_port();
    let nobody = binding(&format!("http://127.0.0.1:{port}"), &[]);
    let err = nobody
        .invoke(request("get", "", &[]))
        .await
        .expect_err("refused");
    assert!(matches!(err, BindingError::Backend { .. }), "{err}");
}

#[test]
fn bad_metadata_names_the_field() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "url"),
        (&[("url", "not a url")], "url"),
        (&[("url", "ftp://host/x")], "url"),
        (&[("url", "https://host/x")], "url"),
        (
            &[("url", "http://h"), ("MTLSRootCA", "-----BEGIN")],
            "MTLSRootCA",
        ),
        (
            &[("url", "http://h"), ("maxResponseBodySize", "lots")],
            "maxResponseBodySize",
        ),
        (
            &[("url", "http://h"), ("responseTimeout", "soon")],
            "responseTimeout",
        ),
        (
            &[("url", "http://h"), ("responseTimeout", "0s")],
            "responseTimeout",
        ),
        (
            &[("url", "http://h"), ("securityToken", "t")],
            "securityTokenHeader",
        ),
        (
            &[
                ("url", "http://h"),
                ("securityToken", "t"),
                ("securityTokenHeader", "bad header"),
            ],
            "securityTokenHeader",
        ),
    ];
    for (pairs, field) in cases {
        let md = Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let err = HttpConfig::from_metadata(&md).expect_err(field);
        assert_eq!(err.field, *field, "{pairs:?}: {err}");
    }
    let md = Metadata::new([
        ("url".to_owned(), "http://h".to_owned()),
        ("maxResponseBodySize".to_owned(), "1Gi".to_owned()),
        ("errorIfNot2XX".to_owned(), "no".to_owned()),
    ]);
    let config = HttpConfig::from_metadata(&md).expect("valid");
    assert_eq!(config.max_response_body, Some(1 << 30));
    assert!(!config.error_if_not_2xx);
    let defaults =
        HttpConfig::from_metadata(&Metadata::new([("url".to_owned(), "http://h".to_owned())]))
            .expect("valid");
    assert_eq!(defaults.max_response_body, Some(100 << 20));
    assert!(defaults.error_if_not_2xx && defaults.response_timeout.is_none());
}

#[tokio::test]
async fn the_component_type_builds_an_output_binding() {
    use crate::components::factory::{self, Instance};
    let md = Metadata::new([("url".to_owned(), "http://127.0.0.1:1/".to_owned())]);
    let config =
        factory::settings("bindings.http", &md, std::path::Path::new(".")).expect("config");
    let Ok(Instance::Binding(binding)) = config.init().await else {
        panic!("bindings.http did not build a binding");
    };
    assert!(binding.input.is_none());
    let output = binding.output.expect("output side");
    assert_eq!(output.operations(), OPERATIONS);
}
