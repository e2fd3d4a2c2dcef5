use super::*;
use serde_json::json;

fn id(app: &str) -> SpiffeId {
    SpiffeId::new("public", "default", app)
}

fn spec(value: serde_json::Value) -> AccessControlSpec {
    serde_json::from_value(value).expect("the shape of spec.accessControl")
}

fn acl(value: serde_json::Value) -> Acl {
    Acl::compile(Some(&spec(value)))
        .expect("a valid spec")
        .expect("something to enforce")
}

fn http<'a>(path: &'a str, verb: &'a str) -> Operation<'a> {
    Operation {
        path,
        verb: Some(verb),
    }
}

fn grpc(path: &str) -> Operation<'_> {
    Operation { path, verb: None }
}

#[test]
fn no_spec_or_empty_spec_enforces_nothing() {
    assert!(Acl::compile(None).expect("ok").is_none());
    assert!(Acl::compile(Some(&spec(json!({})))).expect("ok").is_none());
}

#[test]
fn policies_without_a_global_default_deny() {
    let a = acl(
        json!({"policies": [{"appId": "app1", "trustDomain": "public", "namespace": "default", "defaultAction": "allow"}]}),
    );
    assert_eq!(
        a.decide(Some(&id("app1")), http("x", "GET")),
        (true, Decided::App)
    );
    assert_eq!(
        a.decide(Some(&id("app2")), http("x", "GET")),
        (false, Decided::Global)
    );
}

#[test]
fn incomplete_policies_are_refused() {
    for value in [
        json!({"policies": [{"appId": "a", "namespace": "default"}]}),
        json!({"policies": [{"appId": "a", "trustDomain": "public"}]}),
        json!({"policies": [{"trustDomain": "public", "namespace": "default"}]}),
        json!({"defaultAction": "maybe"}),
    ] {
        assert!(Acl::compile(Some(&spec(value.clone()))).is_err(), "{value}");
    }
}

/// Dapr's documented scenario 1: deny everyone but app1 (public/default).
#[test]
fn scenario_deny_all_but_one_app() {
    let a = acl(json!({
        "defaultAction": "deny", "trustDomain": "public",
        "policies": [{"appId": "app1", "defaultAction": "allow", "trustDomain": "public", "namespace": "default"}]
    }));
    let cases = [
        (id("app1"), true),
        (id("app2"), false),
        (SpiffeId::new("public", "other", "app1"), false),
        (SpiffeId::new("other", "default", "app1"), false),
    ];
    for (caller, want) in cases {
        assert_eq!(
            a.decide(Some(&caller), http("op1", "POST")).0,
            want,
            "{caller}"
        );
    }
    assert!(
        !a.decide(None, http("op1", "POST")).0,
        "unknown callers get the global default"
    );
}

/// Dapr's documented scenario 2: app1 may only POST/GET /op1 (HTTP).
#[test]
fn scenario_one_operation_and_verbs() {
    let a = acl(json!({
        "defaultAction": "deny", "trustDomain": "public",
        "policies": [{"appId": "app1", "defaultAction": "deny", "trustDomain": "public", "namespace": "default",
            "operations": [{"name": "/op1", "httpVerb": ["POST", "GET"], "action": "allow"}]}]
    }));
    let cases = [
        ("op1", "POST", true),
        ("/op1", "GET", true),
        ("OP1", "get", true),
        ("op1", "PUT", false),
        ("op2", "POST", false),
        ("op1/sub", "POST", false),
    ];
    for (path, verb, want) in cases {
        assert_eq!(
            a.decide(Some(&id("app1")), http(path, verb)).0,
            want,
            "{verb} {path}"
        );
    }
}

/// Dapr's documented scenario 3: gRPC, app1 may only call /op1; verbs do not apply.
#[test]
fn scenario_grpc_operation() {
    let a = acl(json!({
        "defaultAction": "deny", "trustDomain": "public",
        "policies": [{"appId": "app1", "defaultAction": "deny", "trustDomain": "public", "namespace": "default",
            "operations": [{"name": "/pkg.Svc/Allowed", "httpVerb": ["POST"], "action": "allow"}]}]
    }));
    assert!(a.decide(Some(&id("app1")), grpc("/pkg.Svc/Allowed")).0);
    assert!(
        !a.decide(Some(&id("app1")), grpc("/pkg.Svc/allowed")).0,
        "gRPC is case-sensitive"
    );
    assert!(!a.decide(Some(&id("app1")), grpc("/pkg.Svc/Other")).0);
}

/// Dapr's documented wildcard examples: allow by default, deny some subtrees.
#[test]
fn scenario_wildcards() {
    let a = acl(json!({
        "defaultAction": "deny", "trustDomain": "public",
        "policies": [{"appId": "app1", "defaultAction": "allow", "trustDomain": "public", "namespace": "default",
            "operations": [
                {"name": "/op1/*", "httpVerb": ["*"], "action": "deny"},
                {"name": "/op2/**", "httpVerb": ["*"], "action": "deny"},
                {"name": "/op2/public", "httpVerb": ["GET"], "action": "allow"},
                {"name": "/op3/a*", "httpVerb": ["*"], "action": "deny"}
            ]}]
    }));
    let cases = [
        ("op1/x", "GET", false),
        ("op1/x/y", "GET", true),
        ("op1", "GET", true),
        ("op2", "GET", false),
        ("op2/x/y/z", "DELETE", false),
        ("op2/public", "GET", true),
        // The most specific rule decides; a verb it does not list falls to the app default.
        ("op2/public", "POST", true),
        ("op3/abc", "GET", false),
        ("op3/bcd", "GET", true),
        ("elsewhere", "GET", true),
    ];
    for (path, verb, want) in cases {
        assert_eq!(
            a.decide(Some(&id("app1")), http(path, verb)).0,
            want,
            "{verb} {path}"
        );
    }
}

#[test]
fn app_default_missing_falls_back_to_global() {
    let a = acl(json!({
        "defaultAction": "allow",
        "policies": [{"appId": "app1", "trustDomain": "public", "namespace": "default",
            "operations": [{"name": "/admin/**", "httpVerb": ["*"], "action": "deny"}]}]
    }));
    assert_eq!(
        a.decide(Some(&id("app1")), http("orders", "GET")),
        (true, Decided::Global)
    );
    assert_eq!(
        a.decide(Some(&id("app1")), http("admin/x", "GET")),
        (false, Decided::App)
    );
}
