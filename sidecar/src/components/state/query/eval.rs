//! The query semantics in Rust (see the parent module): filters, the sort order and paging over
//! parsed values. `state.in-memory` answers queries with [`evaluate`]; the SQL stores implement
//! the same rules in SQL.

use super::{Bound, Filter, Order, QueryItem, Range, Scalar, SortKey, StateQuery};
use bytes::Bytes;
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// A row that may be returned: its stored key, its value parsed, and what is returned.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub key: String,
    pub doc: Value,
    pub data: Bytes,
    pub etag: Option<String>,
}

/// Numbers compare by value: exactly as integers when both are, else as floats.
fn number_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn scalar_eq(value: &Value, scalar: &Scalar) -> bool {
    match (value, scalar) {
        (Value::Null, Scalar::Null) => true,
        (Value::Bool(a), Scalar::Bool(b)) => a == b,
        (Value::Number(a), Scalar::Number(b)) => number_cmp(a, b) == Some(Ordering::Equal),
        (Value::String(a), Scalar::Text(b)) => a == b,
        _ => false,
    }
}

fn in_range(value: &Value, range: Range, bound: &Bound) -> bool {
    let ordering = match (value, bound) {
        (Value::Number(a), Bound::Number(b)) => number_cmp(a, b),
        (Value::String(a), Bound::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        _ => None,
    };
    match (ordering, range) {
        (None, _) => false,
        (Some(o), Range::Gt) => o == Ordering::Greater,
        (Some(o), Range::Gte) => o != Ordering::Less,
        (Some(o), Range::Lt) => o == Ordering::Less,
        (Some(o), Range::Lte) => o != Ordering::Greater,
    }
}

impl Filter {
    /// Whether `doc` passes this filter.
    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Filter::Eq(path, s) => path.lookup(doc).is_some_and(|v| scalar_eq(v, s)),
            Filter::Neq(path, s) => path.lookup(doc).is_some_and(|v| !scalar_eq(v, s)),
            Filter::In(path, set) => path
                .lookup(doc)
                .is_some_and(|v| set.iter().any(|s| scalar_eq(v, s))),
            Filter::Range(path, range, bound) => {
                path.lookup(doc).is_some_and(|v| in_range(v, *range, bound))
            }
            Filter::And(all) => all.iter().all(|f| f.matches(doc)),
            Filter::Or(any) => any.iter().any(|f| f.matches(doc)),
        }
    }
}

/// Where a value sorts: its type's rank, then its value within the type.
fn rank(value: Option<&Value>) -> u8 {
    match value {
        None => 0,
        Some(Value::Null) => 1,
        Some(Value::Bool(_)) => 2,
        Some(Value::Number(_)) => 3,
        Some(Value::String(_)) => 4,
        Some(Value::Array(_) | Value::Object(_)) => 5,
    }
}

/// The order of two values of one sort key, ascending. Arrays and objects all tie.
fn value_cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            number_cmp(x, y).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.as_bytes().cmp(y.as_bytes()),
        _ => Ordering::Equal,
    })
}

/// The order of two rows: every sort key, then the key.
pub fn row_cmp(sort: &[SortKey], a: &Candidate, b: &Candidate) -> Ordering {
    sort.iter()
        .map(|k| {
            let o = value_cmp(k.path.lookup(&a.doc), k.path.lookup(&b.doc));
            match k.order {
                Order::Asc => o,
                Order::Desc => o.reverse(),
            }
        })
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.key.as_bytes().cmp(b.key.as_bytes()))
}

/// Filters, sorts and pages `candidates`.
pub fn evaluate(query: &StateQuery, mut candidates: Vec<Candidate>) -> Vec<QueryItem> {
    if let Some(filter) = &query.filter {
        candidates.retain(|c| filter.matches(&c.doc));
    }
    candidates.sort_by(|a, b| row_cmp(&query.sort, a, b));
    let skip = usize::try_from(query.offset).unwrap_or(usize::MAX);
    let take = query
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    candidates
        .into_iter()
        .skip(skip)
        .take(take)
        .map(|c| QueryItem {
            key: c.key,
            data: c.data,
            etag: c.etag,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::FieldPath;
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> FieldPath {
        FieldPath::new(p.split('.').map(str::to_owned).collect()).expect("a path")
    }

    fn num(n: serde_json::Value) -> Number {
        match n {
            Value::Number(n) => n,
            other => panic!("not a number: {other}"),
        }
    }

    #[test]
    fn filters_compare_by_type() {
        let doc = json!({"p": {"n": 1, "f": 2.5, "s": "abc", "b": true, "z": null, "a": [1]}});
        let cases: &[(Filter, bool)] = &[
            (
                Filter::Eq(path("p.n"), Scalar::Number(num(json!(1.0)))),
                true,
            ),
            (Filter::Eq(path("p.n"), Scalar::Text("1".into())), false),
            (Filter::Eq(path("p.s"), Scalar::Text("abc".into())), true),
            (Filter::Eq(path("p.b"), Scalar::Bool(true)), true),
            (Filter::Eq(path("p.z"), Scalar::Null), true),
            (Filter::Eq(path("p.missing"), Scalar::Null), false),
            (
                Filter::Eq(path("p.a.0"), Scalar::Number(num(json!(1)))),
                false,
            ),
            (Filter::Neq(path("p.s"), Scalar::Text("x".into())), true),
            (
                Filter::Neq(path("p.missing"), Scalar::Text("x".into())),
                false,
            ),
            (
                Filter::In(
                    path("p.n"),
                    vec![Scalar::Text("1".into()), Scalar::Number(num(json!(1)))],
                ),
                true,
            ),
            (
                Filter::Range(path("p.f"), Range::Gt, Bound::Number(num(json!(2)))),
                true,
            ),
            (
                Filter::Range(path("p.n"), Range::Gte, Bound::Number(num(json!(1)))),
                true,
            ),
            (
                Filter::Range(path("p.n"), Range::Lt, Bound::Number(num(json!(1)))),
                false,
            ),
            (
                Filter::Range(path("p.s"), Range::Lte, Bound::Text("abd".into())),
                true,
            ),
            (
                Filter::Range(path("p.s"), Range::Gt, Bound::Number(num(json!(0)))),
                false,
            ),
            (
                Filter::And(vec![
                    Filter::Eq(path("p.b"), Scalar::Bool(true)),
                    Filter::Eq(path("p.n"), Scalar::Number(num(json!(2)))),
                ]),
                false,
            ),
            (
                Filter::Or(vec![
                    Filter::Eq(path("p.b"), Scalar::Bool(false)),
                    Filter::Eq(path("p.n"), Scalar::Number(num(json!(1)))),
                ]),
                true,
            ),
        ];
        for (filter, want) in cases {
            assert_eq!(filter.matches(&doc), *want, "{filter:?}");
        }
    }

    fn candidate(key: &str, doc: Value) -> Candidate {
        Candidate {
            key: key.into(),
            data: Bytes::from(doc.to_string()),
            doc,
            etag: None,
        }
    }

    fn keys(items: &[QueryItem]) -> Vec<&str> {
        items.iter().map(|i| i.key.as_str()).collect()
    }

    #[test]
    fn sorts_by_type_then_value_then_key() {
        let rows = vec![
            candidate("obj", json!({"v": {"x": 1}})),
            candidate("str", json!({"v": "b"})),
            candidate("str2", json!({"v": "a"})),
            candidate("n10", json!({"v": 10})),
            candidate("n9", json!({"v": 9.5})),
            candidate("t", json!({"v": true})),
            candidate("f", json!({"v": false})),
            candidate("null", json!({"v": null})),
            candidate("none", json!({})),
            candidate("n9b", json!({"v": 9.5})),
        ];
        let mut query = StateQuery {
            sort: vec![SortKey {
                path: path("v"),
                order: Order::Asc,
            }],
            ..StateQuery::default()
        };
        let asc = [
            "none", "null", "f", "t", "n9", "n9b", "n10", "str2", "str", "obj",
        ];
        assert_eq!(keys(&evaluate(&query, rows.clone())), asc);
        query.sort[0].order = Order::Desc;
        let desc = [
            "obj", "str", "str2", "n10", "n9", "n9b", "t", "f", "null", "none",
        ];
        assert_eq!(keys(&evaluate(&query, rows)), desc, "ties stay by key");
    }

    #[test]
    fn pages_are_offset_then_limit() {
        let rows: Vec<Candidate> = (0..5)
            .map(|i| candidate(&format!("k{i}"), json!({"i": i})))
            .collect();
        let page = |offset, limit| StateQuery {
            offset,
            limit,
            ..StateQuery::default()
        };
        assert_eq!(
            keys(&evaluate(&page(0, Some(2)), rows.clone())),
            ["k0", "k1"]
        );
        assert_eq!(keys(&evaluate(&page(4, Some(2)), rows.clone())), ["k4"]);
        assert!(evaluate(&page(5, Some(2)), rows.clone()).is_empty());
        assert_eq!(evaluate(&page(1, None), rows).len(), 4);
    }
}
