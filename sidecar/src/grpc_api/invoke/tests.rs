use super::*;
use tonic_types::StatusExt;

fn message(verb: i32, query: &str) -> common::InvokeRequest {
    common::InvokeRequest {
        method: "orders/7".into(),
        data: Some(prost_types::Any {
            type_url: "type.googleapis.com/google.protobuf.StringValue".into(),
            value: b"{\"n\":1}".to_vec(),
        }),
        content_type: "application/json".into(),
        http_extension: Some(common::HttpExtension {
            verb,
            querystring: query.into(),
        }),
    }
}

#[test]
fn verbs_default_to_post() {
    use common::http_extension::Verb;
    assert_eq!(verb(&message(Verb::Get as i32, "")), Method::GET);
    assert_eq!(verb(&message(Verb::Patch as i32, "")), Method::PATCH);
    assert_eq!(verb(&message(Verb::None as i32, "")), Method::POST);
    assert_eq!(verb(&message(99, "")), Method::POST);
    assert_eq!(verb(&common::InvokeRequest::default()), Method::POST);
}

#[test]
fn the_message_becomes_an_http_invocation() {
    let mut md = MetadataMap::new();
    md.insert("x-custom", "kept".parse().expect("ascii"));
    md.insert("grpc-timeout", "5S".parse().expect("ascii"));
    md.insert("content-type", "application/grpc".parse().expect("ascii"));
    let inv = invocation("callee".into(), md, message(1, "a=1&b=two")).expect("valid");
    assert_eq!(inv.target, "callee");
    assert_eq!(inv.method, "orders/7");
    assert_eq!(inv.request.method(), Method::GET);
    assert_eq!(inv.request.uri().query(), Some("a=1&b=two"));
    let h = inv.request.headers();
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["x-custom"], "kept");
    assert_eq!(h["dapr-grpc-timeout"], "5S");
    assert!(h.get("grpc-timeout").is_none());
}

#[test]
fn a_query_that_is_no_uri_is_refused() {
    let err = invocation("callee".into(), MetadataMap::new(), message(1, "a b"))
        .err()
        .expect("a space is no URI");
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[test]
fn answer_headers_become_metadata_with_the_http_status() {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.insert("content-length", HeaderValue::from_static("5"));
    headers.insert("connection", HeaderValue::from_static("close"));
    headers.insert("x-app", HeaderValue::from_static("1"));
    headers.insert("grpc-status", HeaderValue::from_static("0"));
    let md = response_metadata(headers, StatusCode::CREATED);
    assert_eq!(
        md.get("dapr-http-status").map(|v| v.to_str().ok()),
        Some(Some("201"))
    );
    assert_eq!(
        md.get("dapr-content-type").map(|v| v.to_str().ok()),
        Some(Some("text/plain"))
    );
    assert_eq!(md.get("x-app").map(|v| v.to_str().ok()), Some(Some("1")));
    for gone in [
        "content-type",
        "content-length",
        "connection",
        "grpc-status",
    ] {
        assert!(md.get(gone).is_none(), "{gone}");
    }
    assert!(md.get("dapr-grpc-status").is_some());
}

#[test]
fn http_statuses_map_as_daprd_maps_them() {
    for (http, grpc) in [
        (200, Code::Ok),
        (204, Code::Ok),
        (400, Code::Internal),
        (404, Code::NotFound),
        (409, Code::AlreadyExists),
        (418, Code::Unknown),
        (500, Code::Unknown),
        (503, Code::Unavailable),
        (302, Code::Unknown),
    ] {
        let status = StatusCode::from_u16(http).expect("status");
        assert_eq!(code_from_http(status), grpc, "{http}");
    }
}

#[test]
fn app_errors_carry_the_code_and_the_start_of_the_body() {
    let body = "é".repeat(40);
    let status = http_error(StatusCode::NOT_FOUND, body.as_bytes(), MetadataMap::new());
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "Not Found");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "Not Found");
    assert_eq!(info.metadata["http.code"], "404");
    let detail = &info.metadata["http.error_message"];
    assert!(
        detail.len() <= MAX_ERROR_DETAIL && detail.starts_with("éé"),
        "{detail}"
    );
}
