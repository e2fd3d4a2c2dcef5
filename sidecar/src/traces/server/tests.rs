use super::*;

fn attr(named: &Named, key: &str) -> Option<String> {
    named
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// (method, path, `dapr-app-id`, span name, attributes).
type Case<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a [(&'a str, &'a str)],
);

#[test]
fn http_api_span_names_follow_daprd() {
    let cases: &[Case<'_>] = &[
        (
            "POST",
            "/v1.0/invoke/orders/method/neworder/7",
            None,
            "CallLocal/orders/neworder/7",
            &[
                ("net.peer.name", "orders"),
                ("dapr.invoke_method", "neworder/7"),
                ("rpc.service", "ServiceInvocation"),
            ],
        ),
        (
            "GET",
            "/neworder",
            Some("orders"),
            "CallLocal/orders/neworder",
            &[("net.peer.name", "orders")],
        ),
        (
            "POST",
            "/v1.0/actors/Cart/c1/method/add",
            None,
            "CallActor/Cart/add",
            &[("dapr.actor", "Cart.c1")],
        ),
        (
            "GET",
            "/v1.0/actors/Cart/c1/state/k",
            None,
            "state/Cart",
            &[("db.system", "state")],
        ),
        (
            "POST",
            "/v1.0/state/store",
            None,
            "/v1.0/state/store",
            &[("db.system", "state"), ("db.name", "store")],
        ),
        (
            "POST",
            "/v1.0/publish/bus/orders/eu",
            None,
            "/v1.0/publish/bus/orders/eu",
            &[
                ("messaging.system", "pubsub"),
                ("messaging.destination.name", "orders/eu"),
            ],
        ),
        (
            "POST",
            "/v1.0/bindings/out",
            None,
            "/v1.0/bindings/out",
            &[("db.system", "bindings")],
        ),
        (
            "GET",
            "/v1.0/secrets/vault/k",
            None,
            "/v1.0/secrets/vault/k",
            &[("db.system", "secrets")],
        ),
        (
            "GET",
            "/v1.0/metadata",
            None,
            "/v1.0/metadata",
            &[
                ("dapr.api", "GET /v1.0/metadata"),
                ("dapr.protocol", "http"),
            ],
        ),
    ];
    for (method, path, app_id, name, attrs) in cases {
        assert!(is_traced(path), "{path}");
        let named = http_api_span(method, path, *app_id);
        assert_eq!(named.name, *name, "{path}");
        for (k, v) in *attrs {
            assert_eq!(attr(&named, k).as_deref(), Some(*v), "{path} {k}");
        }
    }
    assert!(!is_traced("/v1.0/healthz"), "health checks are not traced");
}

#[test]
fn internal_and_grpc_span_names() {
    let mut h = HeaderMap::new();
    h.insert("dapr-callee-app-id", "b".parse().expect("ascii"));
    h.insert("dapr-caller-app-id", "a".parse().expect("ascii"));
    let named = internal_span("/orders/42", &h);
    assert_eq!(named.name, "CallLocal/b/orders/42");
    assert_eq!(attr(&named, "dapr.caller_app_id").as_deref(), Some("a"));
    assert_eq!(attr(&named, "dapr.callee_app_id").as_deref(), Some("b"));
    let named = internal_span("/v1.0/actors/Cart/c1/method/add", &h);
    assert_eq!(named.name, "CallActor/Cart/add");
    let named = grpc_api_span("/dapr.proto.runtime.v1.Dapr/GetState");
    assert_eq!(named.name, "/dapr.proto.runtime.v1.Dapr/GetState");
    assert_eq!(attr(&named, "rpc.method").as_deref(), Some("GetState"));
}
