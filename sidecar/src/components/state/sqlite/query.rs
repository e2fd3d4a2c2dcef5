//! `state.sqlite` queries: the query semantics (`components::state::query`) as one
//! parameterised `SELECT` with SQLite's JSON functions. Values are stored as BLOBs, which SQLite
//! would read as its binary JSONB, so each is read as text first; rows that are not JSON take no
//! part. `json_type` keeps types apart (`true` is not the integer 1), numbers compare by value
//! and strings by bytes (the BINARY collation). Every name and literal is a parameter.

use crate::components::state::query::{
    Bound, FieldPath, Filter, Order, QueryItem, Scalar, SortKey, StateQuery,
};
use crate::components::state::{StoreError, StoreResult};
use bytes::Bytes;
use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use serde_json::Number;

/// A query as SQL and its parameters (`?1` is the key prefix, `?2` the time in milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Select {
    sql: String,
    params: Vec<SqlValue>,
}

struct Builder {
    params: Vec<SqlValue>,
}

/// SQLite's JSON path for member names: `$."a"."b"` (the parser refuses `"` in names).
fn json_path(path: &FieldPath) -> String {
    path.segments()
        .iter()
        .fold("$".to_owned(), |p, s| format!("{p}.\"{s}\""))
}

fn number(n: &Number) -> SqlValue {
    match n.as_i64() {
        Some(i) => SqlValue::Integer(i),
        None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
    }
}

impl Builder {
    fn push(&mut self, value: SqlValue) -> String {
        self.params.push(value);
        format!("?{}", self.params.len())
    }

    /// `(json_type(doc, ?p), json_extract(doc, ?p))` for `path`.
    fn path(&mut self, path: &FieldPath) -> (String, String) {
        let p = self.push(SqlValue::Text(json_path(path)));
        (
            format!("json_type(doc, {p})"),
            format!("json_extract(doc, {p})"),
        )
    }

    fn eq(&mut self, path: &FieldPath, scalar: &Scalar) -> String {
        let (ty, value) = self.path(path);
        match scalar {
            Scalar::Null => format!("{ty} = 'null'"),
            Scalar::Bool(true) => format!("{ty} = 'true'"),
            Scalar::Bool(false) => format!("{ty} = 'false'"),
            Scalar::Number(n) => {
                let v = self.push(number(n));
                format!("({ty} IN ('integer', 'real') AND {value} = {v})")
            }
            Scalar::Text(t) => {
                let v = self.push(SqlValue::Text(t.clone()));
                format!("({ty} = 'text' AND {value} = {v})")
            }
        }
    }

    fn filter(&mut self, filter: &Filter) -> String {
        match filter {
            Filter::Eq(path, s) => self.eq(path, s),
            Filter::Neq(path, s) => {
                let (ty, _) = self.path(path);
                format!("({ty} IS NOT NULL AND NOT {})", self.eq(path, s))
            }
            Filter::In(path, set) => {
                let any: Vec<String> = set.iter().map(|s| self.eq(path, s)).collect();
                format!("({})", any.join(" OR "))
            }
            Filter::Range(path, range, bound) => {
                let (ty, value) = self.path(path);
                let (types, v) = match bound {
                    Bound::Number(n) => ("'integer', 'real'", self.push(number(n))),
                    Bound::Text(t) => ("'text'", self.push(SqlValue::Text(t.clone()))),
                };
                format!("({ty} IN ({types}) AND {value} {} {v})", range.sql())
            }
            Filter::And(all) => self.group(all, " AND "),
            Filter::Or(any) => self.group(any, " OR "),
        }
    }

    fn group(&mut self, filters: &[Filter], op: &str) -> String {
        let parts: Vec<String> = filters.iter().map(|f| self.filter(f)).collect();
        format!("({})", parts.join(op))
    }

    /// Type rank, then the number, then the string (booleans as `false` < `true`).
    fn sort(&mut self, key: &SortKey) -> [String; 3] {
        let (ty, value) = self.path(&key.path);
        let dir = match key.order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        [
            format!(
                "CASE {ty} WHEN 'null' THEN 1 WHEN 'true' THEN 2 WHEN 'false' THEN 2 \
                 WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 \
                 WHEN 'array' THEN 5 WHEN 'object' THEN 5 ELSE 0 END {dir}"
            ),
            format!("CASE WHEN {ty} IN ('integer', 'real') THEN {value} END {dir}"),
            format!(
                "CASE {ty} WHEN 'text' THEN {value} WHEN 'true' THEN 'true' \
                 WHEN 'false' THEN 'false' END {dir}"
            ),
        ]
    }
}

/// The statement for `query` over `table`'s live JSON rows whose key starts with `prefix`, as
/// of `now_millis`.
pub(super) fn select(table: &str, prefix: &str, now_millis: i64, query: &StateQuery) -> Select {
    let mut b = Builder {
        params: vec![
            SqlValue::Text(prefix.to_owned()),
            SqlValue::Integer(now_millis),
        ],
    };
    let mut sql = format!(
        "SELECT key, doc, etag FROM (
           SELECT key, CAST(value AS TEXT) AS doc, etag FROM {table}
           WHERE substr(key, 1, length(?1)) = ?1 AND (expire_at IS NULL OR expire_at > ?2)
         ) WHERE json_valid(doc)"
    );
    if let Some(filter) = &query.filter {
        sql = format!("{sql} AND {}", b.filter(filter));
    }
    let mut order: Vec<String> = query.sort.iter().flat_map(|k| b.sort(k)).collect();
    order.push("key".to_owned());
    let limit = query
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let limit = b.push(SqlValue::Integer(limit));
    let offset = b.push(SqlValue::Integer(
        i64::try_from(query.offset).unwrap_or(i64::MAX),
    ));
    sql = format!(
        "{sql} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        order.join(", ")
    );
    Select {
        sql,
        params: b.params,
    }
}

/// Runs a query statement on the blocking pool's connection.
pub(super) fn run(conn: &Connection, select: &Select) -> StoreResult<Vec<QueryItem>> {
    let mut stmt = conn.prepare(&select.sql).map_err(StoreError::backend)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(select.params.iter()), |row| {
            let key: String = row.get(0)?;
            let doc: String = row.get(1)?;
            let etag: i64 = row.get(2)?;
            Ok(QueryItem {
                key,
                data: Bytes::from(doc),
                etag: Some(etag.to_string()),
            })
        })
        .map_err(StoreError::backend)?;
    rows.collect::<Result<_, _>>().map_err(StoreError::backend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::state::query::Range;

    fn path(p: &str) -> FieldPath {
        FieldPath::new(p.split('.').map(str::to_owned).collect()).expect("a path")
    }

    #[test]
    fn paths_and_literals_are_parameters() {
        let query = StateQuery {
            filter: Some(Filter::Or(vec![
                Filter::Eq(path("person.org"), Scalar::Text("x' OR 1=1 --".into())),
                Filter::Range(path("n"), Range::Lt, Bound::Number(Number::from(3))),
            ])),
            sort: vec![SortKey {
                path: path("n"),
                order: Order::Asc,
            }],
            limit: None,
            offset: 0,
        };
        let s = select("state", "app||", 7, &query);
        assert!(
            !s.sql.contains("OR 1=1") && !s.sql.contains("person"),
            "{}",
            s.sql
        );
        assert_eq!(s.params[2], SqlValue::Text("$.\"person\".\"org\"".into()));
        assert_eq!(
            &s.params[s.params.len() - 2..],
            [SqlValue::Integer(-1), SqlValue::Integer(0)]
        );
    }

    #[tokio::test]
    async fn the_sqlite_store_conforms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("state.sqlite");
        let store = super::super::SqliteStore::open(
            &file.to_string_lossy(),
            "state",
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("open");
        crate::components::state::query::conformance::run(&store).await;
    }
}
