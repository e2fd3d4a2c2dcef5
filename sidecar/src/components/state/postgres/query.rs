//! `state.postgresql` queries: the query semantics (`components::state::query`) as one
//! parameterised `SELECT` over the `jsonb` values. Paths are chains of `->` with text
//! parameters (member names only, never array indexes); equality is `jsonb` equality (numbers
//! by value); ranges and sorting compare numbers as `numeric` and strings in the "C" collation
//! (bytes), as the other stores do. Every name and literal from the request is a parameter.

use super::PostgresStore;
use super::rows::compact_json;
use crate::components::state::query::{
    Bound, FieldPath, Filter, Order, QueryItem, Scalar, SortKey, StateQuery,
};
use crate::components::state::{StoreError, StoreResult};
use bytes::Bytes;
use tokio_postgres::types::ToSql;

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
enum Param {
    Text(String),
    /// `LIMIT` / `OFFSET`; NULL is no limit.
    Count(Option<i64>),
}

/// A query as SQL and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Select {
    sql: String,
    params: Vec<Param>,
}

#[derive(Default)]
struct Builder {
    params: Vec<Param>,
}

impl Builder {
    fn push(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.push(Param::Text(s.to_owned()))
    }

    /// `(value -> $a::text -> $b::text)`: SQL NULL when a member is missing.
    fn path(&mut self, path: &FieldPath) -> String {
        let mut expr = "value".to_owned();
        for segment in path.segments() {
            expr = format!("{expr} -> {}::text", self.text(segment));
        }
        format!("({expr})")
    }

    fn literal(&mut self, scalar: &Scalar) -> String {
        format!("{}::text::jsonb", self.text(&scalar.to_json().to_string()))
    }

    fn filter(&mut self, filter: &Filter) -> String {
        match filter {
            Filter::Eq(path, s) => {
                let x = self.path(path);
                format!("{x} = {}", self.literal(s))
            }
            Filter::Neq(path, s) => {
                let x = self.path(path);
                format!("({x} IS NOT NULL AND {x} <> {})", self.literal(s))
            }
            Filter::In(path, set) => {
                let x = self.path(path);
                let set: Vec<String> = set.iter().map(|s| self.literal(s)).collect();
                format!("{x} IN ({})", set.join(", "))
            }
            Filter::Range(path, range, Bound::Number(n)) => {
                let x = self.path(path);
                let bound = self.text(&n.to_string());
                format!(
                    "(jsonb_typeof({x}) = 'number' AND ({x} #>> '{{}}')::numeric {} {bound}::text::numeric)",
                    range.sql()
                )
            }
            Filter::Range(path, range, Bound::Text(t)) => {
                let x = self.path(path);
                let bound = self.text(t);
                format!(
                    "(jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') COLLATE \"C\" {} {bound}::text COLLATE \"C\")",
                    range.sql()
                )
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
        let x = self.path(&key.path);
        let dir = match key.order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        [
            format!(
                "CASE jsonb_typeof({x}) WHEN 'null' THEN 1 WHEN 'boolean' THEN 2 WHEN 'number' THEN 3 \
                 WHEN 'string' THEN 4 WHEN 'array' THEN 5 WHEN 'object' THEN 5 ELSE 0 END {dir}"
            ),
            format!(
                "(CASE WHEN jsonb_typeof({x}) = 'number' THEN ({x} #>> '{{}}')::numeric END) {dir}"
            ),
            format!(
                "(CASE WHEN jsonb_typeof({x}) IN ('string', 'boolean') THEN {x} #>> '{{}}' END) \
                 COLLATE \"C\" {dir}"
            ),
        ]
    }
}

/// The statement for `query` over `table`'s live JSON rows whose key starts with `prefix`.
pub(super) fn select(table: &str, prefix: &str, query: &StateQuery) -> Select {
    let mut b = Builder::default();
    let prefix = b.text(prefix);
    let mut sql = format!(
        "SELECT key, value::text, xmin::text FROM {table} \
         WHERE NOT isbinary AND left(key, char_length({prefix}::text)) = {prefix}::text \
         AND (expiredate IS NULL OR expiredate > now())"
    );
    if let Some(filter) = &query.filter {
        sql = format!("{sql} AND {}", b.filter(filter));
    }
    let mut order: Vec<String> = query.sort.iter().flat_map(|k| b.sort(k)).collect();
    order.push("key COLLATE \"C\"".to_owned());
    let limit = query.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    let limit = b.push(Param::Count(limit));
    let offset = b.push(Param::Count(Some(
        i64::try_from(query.offset).unwrap_or(i64::MAX),
    )));
    sql = format!(
        "{sql} ORDER BY {} LIMIT {limit}::bigint OFFSET {offset}::bigint",
        order.join(", ")
    );
    Select {
        sql,
        params: b.params,
    }
}

impl PostgresStore {
    /// Runs a query statement (not cached: every query is its own statement).
    pub(super) async fn run_query(&self, select: &Select) -> StoreResult<Vec<QueryItem>> {
        let client = self.client().await?;
        let params: Vec<&(dyn ToSql + Sync)> = select
            .params
            .iter()
            .map(|p| match p {
                Param::Text(s) => s as &(dyn ToSql + Sync),
                Param::Count(n) => n as &(dyn ToSql + Sync),
            })
            .collect();
        let rows = client
            .query(&select.sql, &params)
            .await
            .map_err(|e| StoreError::Backend(format!("postgres query: {}", super::describe(&e))))?;
        rows.iter()
            .map(|row| {
                let read = |e: tokio_postgres::Error| {
                    StoreError::Backend(format!("postgres query, reading a row: {e}"))
                };
                let key: String = row.try_get(0).map_err(read)?;
                let text: String = row.try_get(1).map_err(read)?;
                let etag: String = row.try_get(2).map_err(read)?;
                Ok(QueryItem {
                    key,
                    data: Bytes::from(compact_json(&text)),
                    etag: Some(etag),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::state::query::Range;
    use serde_json::Number;

    fn path(p: &str) -> FieldPath {
        FieldPath::new(p.split('.').map(str::to_owned).collect()).expect("a path")
    }

    #[test]
    fn every_request_value_is_a_parameter() {
        let query = StateQuery {
            filter: Some(Filter::And(vec![
                Filter::Eq(
                    path("person.org"),
                    Scalar::Text("'; DROP TABLE state; --".into()),
                ),
                Filter::Range(path("n"), Range::Gte, Bound::Number(Number::from(3))),
            ])),
            sort: vec![SortKey {
                path: path("person.id"),
                order: Order::Desc,
            }],
            limit: Some(2),
            offset: 4,
        };
        let s = select("state", "app||", &query);
        assert!(!s.sql.contains("DROP"), "{}", s.sql);
        assert!(!s.sql.contains("person"), "{}", s.sql);
        assert_eq!(
            s.params.first(),
            Some(&Param::Text("app||".into())),
            "the prefix first"
        );
        assert_eq!(
            &s.params[s.params.len() - 2..],
            [Param::Count(Some(2)), Param::Count(Some(4))]
        );
        assert!(
            s.sql
                .contains("(value -> $2::text -> $3::text) = $4::text::jsonb"),
            "{}",
            s.sql
        );
        assert!(
            s.sql
                .ends_with("key COLLATE \"C\" LIMIT $9::bigint OFFSET $10::bigint"),
            "{}",
            s.sql
        );
    }

    #[test]
    fn no_limit_is_a_null_limit() {
        let s = select("state", "", &StateQuery::default());
        assert_eq!(
            s.params,
            [
                Param::Text(String::new()),
                Param::Count(None),
                Param::Count(Some(0))
            ]
        );
    }

    #[tokio::test]
    async fn the_postgres_store_conforms() {
        let server = crate::testing::PostgresServer::start();
        let fields = [("connectionString".to_owned(), server.connection_string())];
        let md = crate::components::metadata::Metadata::new(fields);
        let cfg = super::super::PostgresConfig::from_metadata(&md).expect("config");
        let store = PostgresStore::connect(&cfg).await.expect("connect");
        crate::components::state::query::conformance::run(&store).await;
        crate::components::state::StateStore::close(&store).await;
    }
}
