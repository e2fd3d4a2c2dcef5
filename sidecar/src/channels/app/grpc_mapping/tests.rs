use super::*;

fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(()).expect("request").into_parts().0
}

#[test]
fn an_invocation_carries_verb_query_content_type_and_headers_as_daprd_sends_them() {
    let p = parts(
        Method::PATCH,
        "/orders/a%20b?x=1&y=2",
        &[
            ("content-type", "text/plain"),
            ("accept", "text/plain"),
            ("x-custom", "v"),
            ("connection", "keep-alive"),
            ("grpc-timeout", "1S"),
            ("trace-bin", "AAEC"),
        ],
    );
    let (req, md) = invoke_request(&p, Bytes::from_static(b"body"));
    assert_eq!(req.method, "orders/a b");
    assert_eq!(req.content_type, "text/plain");
    assert_eq!(req.data.expect("data").value, b"body");
    let ext = req.http_extension.expect("extension");
    assert_eq!(ext.verb, common::http_extension::Verb::Patch as i32);
    assert_eq!(ext.querystring, "x=1&y=2");
    assert_eq!(md.get("x-custom").and_then(|v| v.to_str().ok()), Some("v"));
    assert_eq!(
        md.get("dapr-accept").and_then(|v| v.to_str().ok()),
        Some("text/plain"),
        "permanent headers are prefixed"
    );
    assert!(md.get("accept").is_none());
    assert!(
        md.get("connection").is_none(),
        "hop-by-hop headers stay behind"
    );
    assert!(md.get("grpc-timeout").is_none());
    assert_eq!(
        md.get_bin("trace-bin")
            .and_then(|v| v.to_bytes().ok())
            .map(|b| b.to_vec()),
        Some(vec![0, 1, 2])
    );
}

#[test]
fn app_errors_get_daprds_http_status_and_the_status_as_json() {
    let cases = [
        (tonic::Code::NotFound, 404),
        (tonic::Code::InvalidArgument, 400),
        (tonic::Code::FailedPrecondition, 400),
        (tonic::Code::Aborted, 409),
        (tonic::Code::Unimplemented, 501),
        (tonic::Code::Cancelled, 408),
        (tonic::Code::Unknown, 500),
        (tonic::Code::ResourceExhausted, 429),
    ];
    for (code, want) in cases {
        let response = invoke_response(Err(tonic::Status::new(code, "nope")));
        assert_eq!(response.status().as_u16(), want, "{code:?}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
    let ok = invoke_response(Ok(tonic::Response::new(common::InvokeResponse {
        data: Some(prost_types::Any {
            type_url: String::new(),
            value: b"hi".to_vec(),
        }),
        content_type: "text/plain".into(),
    })));
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers()[header::CONTENT_TYPE], "text/plain");
}

fn delivery(body: &Value) -> rt::TopicEventRequest {
    let metadata = BTreeMap::new();
    topic_request(&EventDelivery {
        path: "orders",
        pubsub: "pubsub",
        topic: "orders",
        body: Bytes::from(body.to_string()),
        metadata: &metadata,
        traceparent: None,
    })
}

#[test]
fn a_cloudevent_is_split_into_topic_event_fields() {
    let req = delivery(&serde_json::json!({
        "id": "1", "source": "app", "type": "com.dapr.event.sent", "specversion": "1.0",
        "datacontenttype": "application/json", "data": {"n": 1}, "topic": "orders",
        "pubsubname": "pubsub", "traceid": "t", "custom": 5
    }));
    assert_eq!(req.id, "1");
    assert_eq!(req.spec_version, "1.0");
    assert_eq!(req.data, br#"{"n":1}"#);
    assert_eq!(req.topic, "orders");
    assert_eq!(req.pubsub_name, "pubsub");
    assert_eq!(req.path, "orders");
    let ext = req.extensions.expect("extensions");
    assert!(ext.fields.contains_key("custom") && ext.fields.contains_key("traceid"));
    assert!(!ext.fields.contains_key("data") && !ext.fields.contains_key("id"));

    let text = delivery(&serde_json::json!({
        "id": "2", "datacontenttype": "text/plain", "data": "hello", "topic": "t"
    }));
    assert_eq!(text.data, b"hello");
    let raw = delivery(&serde_json::json!({
        "id": "3", "datacontenttype": "application/octet-stream", "data_base64": "AAEC", "topic": "t"
    }));
    assert_eq!(raw.data, [0, 1, 2]);
}
