use super::*;

#[test]
fn path_labels_by_cardinality_and_patterns() {
    let patterns = vec![
        "/orders/{id}".to_owned(),
        "/items/".to_owned(),
        "/orders/special".to_owned(),
    ];
    // (increasedCardinality, pathMatching, path, label)
    let cases: &[(bool, bool, &str, &str)] = &[
        (false, false, "/v1.0/state/statestore/k1", ""),
        (false, false, "/v1.0/invoke/app/method/orders/42", ""),
        (false, false, "/dapr/subscribe", "/dapr/subscribe"),
        (false, false, "/healthz", "/healthz"),
        (
            true,
            false,
            "/v1.0/state/statestore/k1",
            "/v1.0/state/statestore",
        ),
        (
            true,
            false,
            "/v1.0/secrets/vault/db-password",
            "/v1.0/secrets/vault",
        ),
        (
            true,
            false,
            "/v1.0/actors/Cart/42/method/add",
            "/v1.0/actors/Cart/{id}/method",
        ),
        (
            true,
            false,
            "/actors/Cart/42/method/add",
            "actors/Cart/{id}/method/add",
        ),
        (
            true,
            false,
            "/v1.0/invoke/app/method/orders/42",
            "/v1.0/invoke/app/method/orders/42",
        ),
        (true, false, "//v1.0//publish/p/t", "/v1.0/publish/p/t"),
        (false, true, "/orders/42", "/orders/{id}"),
        (false, true, "/orders/special", "/orders/special"),
        (false, true, "/orders/42/lines", ""),
        (false, true, "/items/a/b/c", "/items/"),
        (
            false,
            true,
            "/v1.0/invoke/shop/method/orders/7",
            "/v1.0/invoke/{app_id}/method/orders/{id}",
        ),
        (false, true, "/other", ""),
        (true, true, "/other/1", "/other/1"),
        (true, true, "/orders/1", "/orders/{id}"),
    ];
    for (increased, with_patterns, path, want) in cases {
        let rules = PathRules::new(*increased, if *with_patterns { &patterns } else { &[] });
        assert_eq!(
            rules.label(path).as_str(),
            *want,
            "increased={increased} patterns={with_patterns} {path}"
        );
    }
}

#[test]
fn rest_wildcards_match_everything_below() {
    let rules = PathRules::new(false, &["/files/{path...}".to_owned()]);
    assert_eq!(rules.label("/files/a/b/c").as_str(), "/files/{path...}");
    assert_eq!(rules.label("/file").as_str(), "");
}

#[test]
fn method_labels() {
    let cases = [
        ("GET", false, "GET"),
        ("POST", false, "POST"),
        ("BREW", false, "UNKNOWN"),
        ("GET", true, ""),
    ];
    for (method, exclude, want) in cases {
        assert_eq!(method_label(method, exclude), want, "{method} {exclude}");
    }
}

#[test]
fn grpc_labels_are_bounded() {
    let cases = [
        (
            "/dapr.proto.runtime.v1.Dapr/GetState",
            0,
            "/dapr.proto.runtime.v1.Dapr/GetState",
        ),
        (
            "/dapr.proto.runtime.v1.Dapr/GetState",
            5,
            "/dapr.proto.runtime.v1.Dapr/GetState",
        ),
        ("/dapr.proto.runtime.v1.Dapr/MadeUp", 12, "unknown"),
        ("/no-slash", 0, "unknown"),
        ("/a/b/c", 0, "unknown"),
        ("/svc/m\u{0}", 0, "unknown"),
    ];
    for (path, code, want) in cases {
        assert_eq!(grpc_method_label(path, code), want, "{path} {code}");
    }
    assert_eq!(grpc_status_name(0), "OK");
    assert_eq!(grpc_status_name(5), "NotFound");
    assert_eq!(grpc_status_name(16), "Unauthenticated");
    assert_eq!(grpc_status_name(99), "Unknown");
}
