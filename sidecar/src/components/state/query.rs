//! State queries as a store receives them (Dapr's alpha1 query API, parsed and checked by the
//! state block): a filter tree over dotted paths into the stored JSON value, sort keys and a
//! page. Every store that implements [`super::StateStore::query`] gives these semantics, which
//! [`eval`] implements in Rust (the in-memory store uses it; the SQL stores translate it and are
//! tested against the same cases):
//!
//! - Only live keys starting with the scope prefix whose value is JSON take part.
//! - A path names object members only (`person.org` is `value["person"]["org"]`; a segment is
//!   never an array index). A path that does not resolve matches no filter, `NEQ` included.
//! - `EQ`/`NEQ`/`IN` compare JSON scalars by type: numbers numerically (`1` equals `1.0`),
//!   strings exactly; a string never equals a number.
//! - `GT`/`GTE`/`LT`/`LTE` compare a number with numbers and a string with strings (by bytes);
//!   a value of another type does not match.
//! - Sorting orders values by type first (missing, null, booleans, numbers, strings, then
//!   arrays and objects), then within numbers, strings (bytes) and booleans (false first);
//!   `DESC` reverses that. Rows that tie are ordered by key, so pages are stable.
//! - `offset` rows are skipped, then at most `limit` returned.

#[cfg(test)]
pub mod conformance;
pub mod eval;

use bytes::Bytes;
use serde_json::{Number, Value};

/// A dotted path into the stored value, one object member per segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// A path from its segments; `None` when there are none or one is empty.
    pub fn new(segments: Vec<String>) -> Option<Self> {
        let valid = !segments.is_empty() && segments.iter().all(|s| !s.is_empty());
        valid.then_some(FieldPath(segments))
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The value at this path in `doc`, if every segment names a member.
    pub fn lookup<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.0
            .iter()
            .try_fold(doc, |at, segment| at.as_object()?.get(segment))
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// A JSON scalar an equality filter compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Number(Number),
    Text(String),
}

impl Scalar {
    /// The scalar as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Number(n) => Value::Number(n.clone()),
            Scalar::Text(s) => Value::String(s.clone()),
        }
    }
}

/// A bound of a range filter: a number or a string.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Number(Number),
    Text(String),
}

/// The comparison of a range filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Range {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Range::Gt => ">",
            Range::Gte => ">=",
            Range::Lt => "<",
            Range::Lte => "<=",
        }
    }
}

/// A filter: Dapr's `EQ`, `NEQ`, `IN`, `GT`/`GTE`/`LT`/`LTE`, `AND`, `OR`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Eq(FieldPath, Scalar),
    Neq(FieldPath, Scalar),
    /// Never empty.
    In(FieldPath, Vec<Scalar>),
    Range(FieldPath, Range, Bound),
    /// At least two.
    And(Vec<Filter>),
    /// At least two.
    Or(Vec<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub path: FieldPath,
    pub order: Order,
}

/// A checked query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateQuery {
    pub filter: Option<Filter>,
    pub sort: Vec<SortKey>,
    /// At most this many rows; `None` for all.
    pub limit: Option<u64>,
    /// Rows skipped first (the page token).
    pub offset: u64,
}

/// One row of an answer: the stored key, the value (JSON) and its ETag.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryItem {
    pub key: String,
    pub data: Bytes,
    pub etag: Option<String>,
}

/// Why a store could not answer a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The store has no query support (Dapr's `ERR_STATE_STORE_NOT_SUPPORTED`).
    #[error("the state store does not support querying")]
    NotSupported,
    /// The backend failed (Dapr's `ERR_STATE_QUERY`).
    #[error("{0}")]
    Backend(String),
}
