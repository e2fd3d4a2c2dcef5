//! One query suite for every store that answers queries (in-memory, SQLite, PostgreSQL): the
//! same rows, the same queries, the same answers, so the three agree with [`super::eval`] and
//! with each other. Run by each store's tests.

use super::{Bound, FieldPath, Filter, Order, Range, Scalar, SortKey, StateQuery};
use crate::components::state::{Concurrency, SetRequest, StateStore};
use bytes::Bytes;
use serde_json::{Number, Value, json};
use std::time::{Duration, Instant};

const PREFIX: &str = "app||";

fn path(p: &str) -> FieldPath {
    FieldPath::new(p.split('.').map(str::to_owned).collect()).expect("a path")
}

fn text(s: &str) -> Scalar {
    Scalar::Text(s.to_owned())
}

fn num(v: Value) -> Number {
    match v {
        Value::Number(n) => n,
        other => panic!("not a number: {other}"),
    }
}

fn eq(p: &str, v: Value) -> Filter {
    Filter::Eq(path(p), scalar(v))
}

fn scalar(v: Value) -> Scalar {
    match v {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(b),
        Value::Number(n) => Scalar::Number(n),
        Value::String(s) => Scalar::Text(s),
        other => panic!("not a scalar: {other}"),
    }
}

fn range(p: &str, r: Range, v: Value) -> Filter {
    let bound = match v {
        Value::String(s) => Bound::Text(s),
        other => Bound::Number(num(other)),
    };
    Filter::Range(path(p), r, bound)
}

fn sort(keys: &[(&str, Order)]) -> Vec<SortKey> {
    keys.iter()
        .map(|(p, order)| SortKey {
            path: path(p),
            order: *order,
        })
        .collect()
}

async fn put(store: &dyn StateStore, key: &str, value: &[u8], ttl: Option<i64>) {
    let req = SetRequest {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(value),
        etag: None,
        concurrency: Concurrency::LastWrite,
        ttl,
    };
    store.set(req).await.expect("set");
}

/// The rows: people with nested members of several types, a row without `person`, a JSON
/// scalar, a binary value, another app's row and a row that expires.
async fn seed(store: &dyn StateStore) {
    let rows = [
        (
            "p1",
            json!({"person": {"org": "Dev Ops", "id": 1036, "name": "Ann"}, "state": "WA"}),
        ),
        (
            "p2",
            json!({"person": {"org": "Hardware", "id": 1028, "name": "Bob"}, "state": "CA"}),
        ),
        (
            "p3",
            json!({"person": {"org": "Finance", "id": 1071, "name": "Cid"}, "state": "CA"}),
        ),
        (
            "p4",
            json!({"person": {"org": "Dev Ops", "id": 1042.5, "name": "Dee"}, "state": "OR"}),
        ),
        (
            "p5",
            json!({"person": {"org": "Dev Ops", "id": "1050", "name": "Eve"}, "state": "WA"}),
        ),
        (
            "p6",
            json!({"person": {"org": "Hardware", "id": 1007, "name": "Fay", "active": true}, "state": "WA"}),
        ),
        ("p7", json!({"state": "CA"})),
        ("p8", json!("just a string")),
    ];
    for (key, doc) in rows {
        put(
            store,
            &format!("{PREFIX}{key}"),
            doc.to_string().as_bytes(),
            None,
        )
        .await;
    }
    put(store, &format!("{PREFIX}bin"), b"\x00\xff not json", None).await;
    let other = json!({"person": {"org": "Dev Ops", "id": 1}, "state": "WA"});
    put(store, "other||p1", other.to_string().as_bytes(), None).await;
    let gone = json!({"person": {"org": "Dev Ops", "id": 1}, "state": "WA"});
    put(
        store,
        &format!("{PREFIX}gone"),
        gone.to_string().as_bytes(),
        Some(1),
    )
    .await;
}

async fn keys(store: &dyn StateStore, prefix: &str, query: &StateQuery) -> Vec<String> {
    let items = store.query(prefix, query).await.expect("query");
    items
        .into_iter()
        .map(|i| i.key.strip_prefix(prefix).unwrap_or(&i.key).to_owned())
        .collect()
}

/// Runs every case against `store` (empty before the call).
pub async fn run(store: &dyn StateStore) {
    seed(store).await;
    // The row with a 1 s TTL is gone before the cases run.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store
        .get(&format!("{PREFIX}gone"))
        .await
        .expect("get")
        .is_some()
    {
        assert!(Instant::now() < deadline, "the TTL row never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let filtered = |filter: Filter| StateQuery {
        filter: Some(filter),
        ..StateQuery::default()
    };
    let cases: Vec<(StateQuery, &[&str])> = vec![
        (
            StateQuery::default(),
            &["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"],
        ),
        (
            filtered(eq("person.org", json!("Dev Ops"))),
            &["p1", "p4", "p5"],
        ),
        (filtered(eq("person.id", json!(1036))), &["p1"]),
        (filtered(eq("person.id", json!(1036.0))), &["p1"]),
        (filtered(eq("person.id", json!("1050"))), &["p5"]),
        (filtered(eq("person.id", json!(1050))), &[]),
        (filtered(eq("person.active", json!(true))), &["p6"]),
        (filtered(eq("person.active", json!(1))), &[]),
        (filtered(eq("person", json!(null))), &[]),
        (
            filtered(Filter::Neq(path("state"), text("WA"))),
            &["p2", "p3", "p4", "p7"],
        ),
        (
            filtered(Filter::In(path("state"), vec![text("CA"), text("OR")])),
            &["p2", "p3", "p4", "p7"],
        ),
        (
            filtered(range("person.id", Range::Gt, json!(1036))),
            &["p3", "p4"],
        ),
        (
            filtered(range("person.id", Range::Gte, json!(1036))),
            &["p1", "p3", "p4"],
        ),
        (
            filtered(range("person.id", Range::Lt, json!(1030))),
            &["p2", "p6"],
        ),
        (
            filtered(range("person.id", Range::Lte, json!(1028))),
            &["p2", "p6"],
        ),
        (
            filtered(range("person.name", Range::Gt, json!("Cid"))),
            &["p4", "p5", "p6"],
        ),
        (filtered(range("person.id", Range::Gt, json!("1"))), &["p5"]),
        (
            filtered(Filter::And(vec![
                eq("person.org", json!("Dev Ops")),
                eq("state", json!("WA")),
            ])),
            &["p1", "p5"],
        ),
        (
            filtered(Filter::Or(vec![
                eq("state", json!("OR")),
                range("person.id", Range::Lt, json!(1010)),
            ])),
            &["p4", "p6"],
        ),
        (
            StateQuery {
                sort: sort(&[("person.id", Order::Asc)]),
                ..StateQuery::default()
            },
            &["p7", "p8", "p6", "p2", "p1", "p4", "p3", "p5"],
        ),
        (
            StateQuery {
                sort: sort(&[("state", Order::Desc), ("person.name", Order::Asc)]),
                ..StateQuery::default()
            },
            &["p1", "p5", "p6", "p4", "p7", "p2", "p3", "p8"],
        ),
        (
            StateQuery {
                filter: Some(eq("state", json!("CA"))),
                sort: sort(&[("person.name", Order::Desc)]),
                limit: Some(2),
                offset: 1,
            },
            &["p2", "p7"],
        ),
    ];
    for (query, want) in &cases {
        assert_eq!(keys(store, PREFIX, query).await, *want, "{query:?}");
    }

    // Pages of 3 in a sort order with ties: every row once, in order.
    let mut paged = Vec::new();
    for offset in [0, 3, 6, 9] {
        let page = StateQuery {
            sort: sort(&[("state", Order::Asc)]),
            limit: Some(3),
            offset,
            ..StateQuery::default()
        };
        paged.extend(keys(store, PREFIX, &page).await);
    }
    let whole = StateQuery {
        sort: sort(&[("state", Order::Asc)]),
        ..StateQuery::default()
    };
    assert_eq!(paged, keys(store, PREFIX, &whole).await);
    assert_eq!(paged, ["p8", "p2", "p3", "p7", "p4", "p1", "p5", "p6"]);

    // Rows come back whole: the value and an ETag.
    let items = store
        .query(PREFIX, &filtered(eq("person.name", json!("Ann"))))
        .await
        .expect("query");
    let [item] = items.as_slice() else {
        panic!("one row expected: {items:?}");
    };
    let doc: Value = serde_json::from_slice(&item.data).expect("JSON data");
    assert_eq!(doc["person"]["id"], json!(1036));
    assert!(item.etag.is_some());

    // Without a prefix every JSON row of every app is a candidate.
    let all = keys(store, "", &filtered(eq("person.org", json!("Dev Ops")))).await;
    assert_eq!(all, ["app||p1", "app||p4", "app||p5", "other||p1"]);
}

#[tokio::test]
async fn the_in_memory_store_conforms() {
    run(&crate::components::state::memory::MemoryStore::new()).await;
}
