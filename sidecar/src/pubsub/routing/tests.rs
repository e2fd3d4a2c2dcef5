#![allow(clippy::unwrap_used, reason = "a test fails on what it unwraps")]

use serde_json::{Value, json};

use super::{RouteTable, RoutingError};

fn rules(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect()
}

fn event(ty: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": "1",
        "source": "app",
        "type": ty,
        "topic": "orders-eu",
        "pubsubname": "pubsub",
        "datacontenttype": "application/json",
        "data": data,
    })
}

#[test]
fn routes_table() {
    struct Case {
        name: &'static str,
        rules: &'static [(&'static str, &'static str)],
        default: Option<&'static str>,
        event: Value,
        want: Option<&'static str>,
    }
    let type_a: &[(&str, &str)] = &[(r#"event.type == "a""#, "/a")];
    let cases = [
        Case {
            name: "type a matches its rule",
            rules: type_a,
            default: Some("/d"),
            event: event("a", json!({})),
            want: Some("/a"),
        },
        Case {
            name: "type b falls to the default",
            rules: type_a,
            default: Some("/d"),
            event: event("b", json!({})),
            want: Some("/d"),
        },
        Case {
            name: "nothing matches and no default",
            rules: type_a,
            default: None,
            event: event("b", json!({})),
            want: None,
        },
        Case {
            name: "first match wins",
            rules: &[
                (r#"event.type == "a""#, "/first"),
                (r#"event.source == "app""#, "/second"),
            ],
            default: Some("/d"),
            event: event("a", json!({})),
            want: Some("/first"),
        },
        Case {
            name: "second rule when the first doesn't match",
            rules: &[
                (r#"event.type == "x""#, "/first"),
                (r#"event.source == "app""#, "/second"),
            ],
            default: Some("/d"),
            event: event("a", json!({})),
            want: Some("/second"),
        },
        Case {
            name: "empty match always matches",
            rules: &[
                (r#"event.type == "x""#, "/x"),
                ("", "/catchall"),
                ("true", "/later"),
            ],
            default: Some("/d"),
            event: event("a", json!({})),
            want: Some("/catchall"),
        },
        Case {
            name: "nested data comparison true",
            rules: &[("event.data.size > 3", "/big")],
            default: Some("/small"),
            event: event("a", json!({"size": 4})),
            want: Some("/big"),
        },
        Case {
            name: "nested data comparison false",
            rules: &[("event.data.size > 3", "/big")],
            default: Some("/small"),
            event: event("a", json!({"size": 2})),
            want: Some("/small"),
        },
        Case {
            name: "exists macro over a list",
            rules: &[(r#"event.data.tags.exists(t, t == "x")"#, "/x")],
            default: Some("/d"),
            event: event("a", json!({"tags": ["w", "x"]})),
            want: Some("/x"),
        },
        Case {
            name: "exists macro, no element matches",
            rules: &[(r#"event.data.tags.exists(t, t == "x")"#, "/x")],
            default: Some("/d"),
            event: event("a", json!({"tags": ["w"]})),
            want: Some("/d"),
        },
        Case {
            name: "in operator over a list",
            rules: &[(r#""x" in event.data.tags"#, "/x")],
            default: None,
            event: event("a", json!({"tags": ["x"]})),
            want: Some("/x"),
        },
        Case {
            name: "has() on a present field",
            rules: &[("has(event.data.x)", "/has")],
            default: Some("/d"),
            event: event("a", json!({"x": 1})),
            want: Some("/has"),
        },
        Case {
            name: "has() on a missing field",
            rules: &[("has(event.data.x)", "/has")],
            default: Some("/d"),
            event: event("a", json!({})),
            want: Some("/d"),
        },
        Case {
            name: "missing field doesn't match and doesn't panic",
            rules: &[
                ("event.data.missing.deeper == 1", "/m"),
                ("event.nothing > 3", "/n"),
            ],
            default: Some("/d"),
            event: event("a", json!({})),
            want: Some("/d"),
        },
        Case {
            name: "data that is not an object",
            rules: &[("event.data.size > 3", "/big")],
            default: None,
            event: event("a", json!("a string")),
            want: None,
        },
        Case {
            name: "non-bool result doesn't match",
            rules: &[("event.type", "/t"), ("event.data.n", "/n")],
            default: Some("/d"),
            event: event("a", json!({"n": 1})),
            want: Some("/d"),
        },
        Case {
            name: "no rules with a default",
            rules: &[],
            default: Some("/d"),
            event: event("a", json!({})),
            want: Some("/d"),
        },
        Case {
            name: "no rules and no default",
            rules: &[],
            default: None,
            event: event("a", json!({})),
            want: None,
        },
        Case {
            name: "integer equals integer literal",
            rules: &[("event.data.n == 3", "/three")],
            default: None,
            event: event("a", json!({"n": 3})),
            want: Some("/three"),
        },
        Case {
            name: "integer equals a float literal",
            rules: &[("event.data.n == 3.0", "/three")],
            default: None,
            event: event("a", json!({"n": 3})),
            want: Some("/three"),
        },
        Case {
            name: "float 3.0 in JSON equals an integer literal",
            rules: &[("event.data.n == 3", "/three")],
            default: None,
            event: event("a", json!({"n": 3.0})),
            want: Some("/three"),
        },
        Case {
            name: "float compares with a float literal",
            rules: &[("event.data.price < 9.5", "/cheap")],
            default: None,
            event: event("a", json!({"price": 2.25})),
            want: Some("/cheap"),
        },
        Case {
            name: "integer greater than a float literal",
            rules: &[("event.data.n > 2.5", "/gt")],
            default: None,
            event: event("a", json!({"n": 3})),
            want: Some("/gt"),
        },
        Case {
            name: "string function on the topic",
            rules: &[(r#"event.topic.startsWith("orders")"#, "/orders")],
            default: None,
            event: event("a", json!({})),
            want: Some("/orders"),
        },
        Case {
            name: "boolean combination",
            rules: &[(r#"event.type == "a" && event.data.ok"#, "/ok")],
            default: Some("/d"),
            event: event("a", json!({"ok": true})),
            want: Some("/ok"),
        },
        Case {
            name: "null field compares to null",
            rules: &[("event.data.v == null", "/null")],
            default: None,
            event: event("a", json!({"v": null})),
            want: Some("/null"),
        },
        Case {
            name: "large unsigned integer",
            rules: &[("event.data.big > 0u", "/big")],
            default: None,
            event: event("a", json!({"big": u64::MAX})),
            want: Some("/big"),
        },
    ];
    for case in cases {
        let table = RouteTable::compile(&rules(case.rules), case.default.map(str::to_owned))
            .unwrap_or_else(|e| panic!("{}: compile: {e}", case.name));
        assert_eq!(table.route(&case.event), case.want, "{}", case.name);
    }
}

#[test]
fn invalid_expression_is_a_compile_error_naming_it() {
    for bad in ["event.type ==", "event.type == \"a", "(("] {
        let err = RouteTable::compile(&rules(&[("true", "/ok"), (bad, "/bad")]), None).unwrap_err();
        match &err {
            RoutingError::Compile { expression, .. } => assert_eq!(expression, bad),
            other => panic!("{bad}: unexpected {other:?}"),
        }
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn rules_lists_rules_then_default() {
    let table = RouteTable::compile(
        &rules(&[("event.type == \"a\"", "/a"), ("", "/e")]),
        Some("/d".into()),
    )
    .unwrap();
    assert_eq!(
        table.rules(),
        vec![("event.type == \"a\"", "/a"), ("", "/e"), ("", "/d")]
    );
    let table = RouteTable::compile(&[], None).unwrap();
    assert!(table.rules().is_empty());
}

#[test]
fn compiled_once_reused_across_events_and_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RouteTable>();

    let table = std::sync::Arc::new(
        RouteTable::compile(
            &rules(&[("event.data.n % 2 == 0", "/even")]),
            Some("/odd".into()),
        )
        .unwrap(),
    );
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let table = std::sync::Arc::clone(&table);
            std::thread::spawn(move || {
                for n in 0..50 {
                    let want = if (t + n) % 2 == 0 { "/even" } else { "/odd" };
                    assert_eq!(table.route(&event("a", json!({"n": t + n}))), Some(want));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
