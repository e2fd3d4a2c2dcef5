//! The query parser against Dapr's examples (the contrib conformance queries) and against
//! malformed queries, each refused with a message that says what is wrong.

use super::*;
use serde_json::json;

fn path(p: &str) -> FieldPath {
    FieldPath::new(p.split('.').map(str::to_owned).collect()).expect("a path")
}

fn text(s: &str) -> Scalar {
    Scalar::Text(s.to_owned())
}

fn number(n: i64) -> serde_json::Number {
    serde_json::Number::from(n)
}

fn parse(v: serde_json::Value) -> Result<StateQuery, BlockError> {
    parse_query(v.to_string().as_bytes())
}

#[test]
fn parses_daprs_queries() {
    let cases: Vec<(serde_json::Value, StateQuery)> = vec![
        (json!({}), StateQuery::default()),
        (
            json!({"filter": {}, "sort": [], "page": {}}),
            StateQuery::default(),
        ),
        (
            json!({"page": {"limit": 2}}),
            StateQuery {
                limit: Some(2),
                ..StateQuery::default()
            },
        ),
        (
            json!({"filter": {"EQ": {"state": "CA"}}, "page": {"limit": 2, "token": "2"}}),
            StateQuery {
                filter: Some(Filter::Eq(path("state"), text("CA"))),
                limit: Some(2),
                offset: 2,
                ..StateQuery::default()
            },
        ),
        (
            json!({
                "filter": {"AND": [
                    {"EQ": {"person.org": "A"}},
                    {"IN": {"state": ["CA", "WA"]}}
                ]},
                "sort": [{"key": "state", "order": "DESC"}, {"key": "person.name"}]
            }),
            StateQuery {
                filter: Some(Filter::And(vec![
                    Filter::Eq(path("person.org"), text("A")),
                    Filter::In(path("state"), vec![text("CA"), text("WA")]),
                ])),
                sort: vec![
                    SortKey {
                        path: path("state"),
                        order: Order::Desc,
                    },
                    SortKey {
                        path: path("person.name"),
                        order: Order::Asc,
                    },
                ],
                ..StateQuery::default()
            },
        ),
        (
            json!({"filter": {"OR": [
                {"GTE": {"person.id": 123}},
                {"AND": [{"LT": {"person.id": 10}}, {"NEQ": {"flag": true}}]}
            ]}}),
            StateQuery {
                filter: Some(Filter::Or(vec![
                    Filter::Range(path("person.id"), Range::Gte, Bound::Number(number(123))),
                    Filter::And(vec![
                        Filter::Range(path("person.id"), Range::Lt, Bound::Number(number(10))),
                        Filter::Neq(path("flag"), Scalar::Bool(true)),
                    ]),
                ])),
                ..StateQuery::default()
            },
        ),
        (
            json!({"filter": {"GT": {"name": "m"}}, "page": {"limit": 0, "token": ""}}),
            StateQuery {
                filter: Some(Filter::Range(
                    path("name"),
                    Range::Gt,
                    Bound::Text("m".into()),
                )),
                ..StateQuery::default()
            },
        ),
        (
            json!({"filter": {"EQ": {"gone": null}}, "sort": [{"key": "a", "order": "desc"}]}),
            StateQuery {
                filter: Some(Filter::Eq(path("gone"), Scalar::Null)),
                sort: vec![SortKey {
                    path: path("a"),
                    order: Order::Desc,
                }],
                ..StateQuery::default()
            },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(parse(body.clone()).as_ref(), Ok(&want), "{body}");
    }
}

#[test]
fn refuses_malformed_queries_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        ("{not json", "not JSON"),
        ("[]", "JSON object"),
        (r#"{"filters": {}}"#, "unknown field \"filters\""),
        (r#"{"filter": []}"#, "must be an object"),
        (
            r#"{"filter": {"EQ": {"a": 1}, "NEQ": {"b": 2}}}"#,
            "single operator",
        ),
        (
            r#"{"filter": {"LIKE": {"a": "x"}}}"#,
            "unsupported filter \"LIKE\"",
        ),
        (
            r#"{"filter": {"EQ": {"a": 1, "b": 2}}}"#,
            "one key/value pair",
        ),
        (r#"{"filter": {"EQ": {}}}"#, "one key/value pair"),
        (r#"{"filter": {"EQ": "a"}}"#, "one key/value pair"),
        (
            r#"{"filter": {"EQ": {"a": {"b": 1}}}}"#,
            "string, number, boolean or null",
        ),
        (r#"{"filter": {"EQ": {"": 1}}}"#, "not a dotted path"),
        (r#"{"filter": {"EQ": {"a..b": 1}}}"#, "not a dotted path"),
        (r#"{"filter": {"EQ": {"a\"b": 1}}}"#, "must not contain"),
        (r#"{"filter": {"IN": {"a": []}}}"#, "non-empty array"),
        (r#"{"filter": {"IN": {"a": "x"}}}"#, "non-empty array"),
        (
            r#"{"filter": {"IN": {"a": [[1]]}}}"#,
            "string, number, boolean or null",
        ),
        (r#"{"filter": {"GT": {"a": true}}}"#, "number or a string"),
        (r#"{"filter": {"LTE": {"a": null}}}"#, "number or a string"),
        (r#"{"filter": {"AND": [{"EQ": {"a": 1}}]}}"#, "at least two"),
        (
            r#"{"filter": {"OR": {"EQ": {"a": 1}}}}"#,
            "must be an array",
        ),
        (
            r#"{"filter": {"AND": [{"EQ": {"a": 1}}, {"XOR": {}}]}}"#,
            "unsupported filter",
        ),
        (r#"{"sort": {"key": "a"}}"#, "\"sort\" must be an array"),
        (r#"{"sort": ["a"]}"#, "must be an object"),
        (r#"{"sort": [{"order": "ASC"}]}"#, "needs a string \"key\""),
        (
            r#"{"sort": [{"key": "a", "order": "UP"}]}"#,
            "not ASC or DESC",
        ),
        (
            r#"{"sort": [{"key": "a", "direction": "ASC"}]}"#,
            "\"direction\" is unknown",
        ),
        (r#"{"page": 3}"#, "\"page\" must be an object"),
        (r#"{"page": {"limit": -1}}"#, "not a count"),
        (r#"{"page": {"limit": 1.5}}"#, "not a count"),
        (r#"{"page": {"limit": "2"}}"#, "is invalid"),
        (r#"{"page": {"token": "abc"}}"#, "not one of ours"),
        (r#"{"page": {"token": 2}}"#, "is invalid"),
        (r#"{"page": {"size": 2}}"#, "is invalid"),
    ];
    for (body, says) in cases {
        let err = parse_query(body.as_bytes()).expect_err(body);
        assert_eq!(err.code, Code::MalformedRequest, "{body}");
        assert_eq!(err.spec().http, 400);
        assert!(err.message.contains(says), "{body}: {}", err.message);
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let deep = format!(
        "{}{}",
        r#"{"filter": "#.to_owned() + &r#"{"AND": ["#.repeat(200),
        "]}".repeat(200) + "}"
    );
    let err = parse_query(deep.as_bytes()).expect_err("too deep");
    assert_eq!(err.code, Code::MalformedRequest);
}
