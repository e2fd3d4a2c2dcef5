//! `POST|PUT /v1.0-alpha1/state/{store}/query`: filters, sorting, paging with the token until
//! the 204, daprd's answer shape, request errors, and another app's rows kept out.

use super::common::json_of;
use super::http_client as http;
use serde_json::{Value, json};
use tandem_sidecar::testing::sidecar::Sidecar;

/// The people every scenario saves (Dapr's docs' example, with a few types mixed in).
fn people() -> Vec<(&'static str, Value)> {
    vec![
        (
            "p1",
            json!({"person": {"org": "Dev Ops", "id": 1036}, "city": "Seattle", "state": "WA"}),
        ),
        (
            "p2",
            json!({"person": {"org": "Hardware", "id": 1028}, "city": "Portland", "state": "OR"}),
        ),
        (
            "p3",
            json!({"person": {"org": "Finance", "id": 1071}, "city": "Sacramento", "state": "CA"}),
        ),
        (
            "p4",
            json!({"person": {"org": "Dev Ops", "id": 1042}, "city": "Spokane", "state": "WA"}),
        ),
        (
            "p5",
            json!({"person": {"org": "Hardware", "id": 1007}, "city": "Los Angeles", "state": "CA"}),
        ),
        (
            "p6",
            json!({"person": {"org": "Finance", "id": 1094}, "city": "Eugene", "state": "OR"}),
        ),
        (
            "p7",
            json!({"person": {"org": "Dev Ops", "id": 1015}, "city": "San Francisco", "state": "CA"}),
        ),
        (
            "p8",
            json!({"person": {"org": "Hardware", "id": 1077}, "city": "Redmond", "state": "WA"}),
        ),
    ]
}

async fn save(s: &Sidecar, items: Value) {
    let r = http()
        .post(s.url("/v1.0/state/statestore"))
        .json(&items)
        .send()
        .await
        .expect("save");
    assert_eq!(r.status().as_u16(), 204, "save {items}");
}

async fn post_query(s: &Sidecar, store: &str, body: &str) -> reqwest::Response {
    http()
        .post(s.url(&format!("/v1.0-alpha1/state/{store}/query")))
        .body(body.to_owned())
        .send()
        .await
        .expect("query")
}

/// A query that must find rows: its answer.
async fn found(s: &Sidecar, query: Value) -> Value {
    let r = post_query(s, "statestore", &query.to_string()).await;
    assert_eq!(r.status().as_u16(), 200, "{query}");
    assert_eq!(r.headers()["content-type"], "application/json");
    json_of(r).await
}

fn keys(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every page of `query` with `limit`, following the token until the 204.
async fn all_pages(s: &Sidecar, query: &Value, limit: u64) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = query.clone();
        q["page"] = json!({"limit": limit});
        if let Some(t) = &token {
            q["page"]["token"] = json!(t);
        }
        let r = post_query(s, "statestore", &q.to_string()).await;
        if r.status().as_u16() == 204 {
            return pages;
        }
        assert_eq!(r.status().as_u16(), 200, "{q}");
        let answer = json_of(r).await;
        pages.push(keys(&answer));
        let next = answer["token"].as_str().expect("a token with a limit");
        token = Some(next.to_owned());
        assert!(pages.len() <= 10, "the pages never end: {pages:?}");
    }
}

async fn assert_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    let body = json_of(r).await;
    assert_eq!(body["errorCode"], code, "{body}");
    body
}

pub async fn scenario(s: &Sidecar, intruder: Option<&Sidecar>) {
    let rows: Vec<Value> = people()
        .into_iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect();
    save(s, Value::Array(rows)).await;
    if let Some(other) = intruder {
        let theirs = json!({"person": {"org": "Dev Ops", "id": 1}, "state": "WA"});
        save(
            other,
            json!([{"key": "p1", "value": theirs}, {"key": "x9", "value": theirs}]),
        )
        .await;
    }

    // A filter on a nested member: this app's rows only, keys without the prefix, data the
    // saved JSON, the ETag the one a read gives.
    let answer = found(s, json!({"filter": {"EQ": {"person.org": "Dev Ops"}}})).await;
    assert_eq!(keys(&answer), ["p1", "p4", "p7"]);
    assert!(
        answer.get("token").is_none(),
        "no limit, no token: {answer}"
    );
    let first = &answer["results"][0];
    assert_eq!(first["data"], people()[0].1);
    let read = http()
        .get(s.url("/v1.0/state/statestore/p1"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        first["etag"],
        read.headers()["etag"].to_str().expect("etag")
    );

    let cases = [
        (
            json!({"filter": {"IN": {"state": ["CA", "OR"]}}}),
            vec!["p2", "p3", "p5", "p6", "p7"],
        ),
        (
            json!({"filter": {"NEQ": {"state": "WA"}}}),
            vec!["p2", "p3", "p5", "p6", "p7"],
        ),
        (
            json!({"filter": {"GT": {"person.id": 1070}}}),
            vec!["p3", "p6", "p8"],
        ),
        (
            json!({"filter": {"LTE": {"person.id": 1015}}}),
            vec!["p5", "p7"],
        ),
        (
            json!({"filter": {"AND": [{"EQ": {"person.org": "Dev Ops"}}, {"EQ": {"state": "WA"}}]}}),
            vec!["p1", "p4"],
        ),
        (
            json!({"filter": {"OR": [
                {"EQ": {"person.id": 1036}},
                {"AND": [{"EQ": {"person.org": "Finance"}}, {"IN": {"person.id": [1071, 1094]}}]}
            ]}}),
            vec!["p1", "p3", "p6"],
        ),
        (
            json!({"sort": [{"key": "state", "order": "DESC"}, {"key": "person.id"}]}),
            vec!["p1", "p4", "p8", "p2", "p6", "p5", "p7", "p3"],
        ),
    ];
    for (query, want) in cases {
        assert_eq!(keys(&found(s, query.clone()).await), want, "{query}");
    }

    // Pages of 3 in the sorted order: every row once, in order, then the 204.
    let sorted = json!({"sort": [{"key": "person.id", "order": "DESC"}]});
    let whole = keys(&found(s, sorted.clone()).await);
    assert_eq!(whole, ["p6", "p8", "p3", "p4", "p1", "p2", "p7", "p5"]);
    let pages = all_pages(s, &sorted, 3).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 2]);
    assert_eq!(pages.concat(), whole);
    let filtered = json!({"filter": {"EQ": {"state": "WA"}}, "sort": [{"key": "city"}]});
    assert_eq!(
        all_pages(s, &filtered, 2).await.concat(),
        ["p8", "p1", "p4"]
    );

    // Nothing matched: 204 and no body. PUT is the same route.
    let r = post_query(s, "statestore", r#"{"filter": {"EQ": {"state": "TX"}}}"#).await;
    assert_eq!(r.status().as_u16(), 204);
    assert!(r.bytes().await.expect("body").is_empty());
    let r = http()
        .put(s.url("/v1.0-alpha1/state/statestore/query"))
        .body(r#"{"filter": {"EQ": {"person.id": 1028}}}"#)
        .send()
        .await
        .expect("put query");
    assert_eq!(keys(&json_of(r).await), ["p2"]);

    // Malformed queries are the request's fault; an unknown store is daprd's 400.
    for body in [
        "{not json",
        r#"{"filter": {"LIKE": {"city": "S%"}}}"#,
        r#"{"filter": {"AND": [{"EQ": {"state": "WA"}}]}}"#,
        r#"{"sort": [{"key": "state", "order": "SIDEWAYS"}]}"#,
        r#"{"page": {"limit": 2, "token": "not-ours"}}"#,
    ] {
        let body_answer = assert_error(
            post_query(s, "statestore", body).await,
            400,
            "ERR_MALFORMED_REQUEST",
        )
        .await;
        assert!(
            body_answer["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("invalid query")
        );
    }
    let r = post_query(s, "nope", "{}").await;
    assert_error(r, 400, "ERR_STATE_STORE_NOT_FOUND").await;
}

/// `state.redis` has no query support: 500 `ERR_STATE_STORE_NOT_SUPPORTED`, daprd's reason.
pub async fn not_supported(s: &Sidecar) {
    let r = post_query(s, "statestore", r#"{"filter": {"EQ": {"a": 1}}}"#).await;
    let body = assert_error(r, 500, "ERR_STATE_STORE_NOT_SUPPORTED").await;
    assert_eq!(
        body["details"][0]["reason"],
        "DAPR_STATE_QUERYING_NOT_SUPPORTED"
    );
}
