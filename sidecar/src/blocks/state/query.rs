//! Dapr's state query language, parsed and checked: `{"filter": {..}, "sort": [..], "page":
//! {"limit", "token"}}` becomes a [`StateQuery`], or a 400 `ERR_MALFORMED_REQUEST` naming what is
//! wrong (daprd answers a query it cannot parse with 500 `ERR_STATE_QUERY`; the fault is the
//! request's). Keys are dotted paths into the stored value, without a `value.` prefix, as in
//! Dapr's docs and stores (`{"EQ": {"person.org": "Dev Ops"}}`). Pure: no store, no I/O.

use crate::blocks::error::{BlockError, Code};
use crate::components::state::query::{
    Bound, FieldPath, Filter, Order, Range, Scalar, SortKey, StateQuery,
};
use serde_json::{Map, Value};

fn malformed(reason: impl std::fmt::Display) -> BlockError {
    BlockError::new(Code::MalformedRequest, format!("invalid query: {reason}"))
}

/// Parses a query body.
pub fn parse_query(body: &[u8]) -> Result<StateQuery, BlockError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("the body is not JSON: {e}")))?;
    let Value::Object(top) = value else {
        return Err(malformed("the query must be a JSON object"));
    };
    let mut query = StateQuery::default();
    for (field, value) in top {
        match (field.as_str(), value) {
            (_, Value::Null) => {}
            ("filter", Value::Object(f)) if f.is_empty() => {}
            ("filter", filter) => query.filter = Some(parse_filter(&filter)?),
            ("sort", Value::Array(keys)) => {
                query.sort = keys.iter().map(parse_sort_key).collect::<Result<_, _>>()?;
            }
            ("sort", _) => return Err(malformed("\"sort\" must be an array")),
            ("page", Value::Object(page)) => (query.limit, query.offset) = parse_page(&page)?,
            ("page", _) => return Err(malformed("\"page\" must be an object")),
            (other, _) => {
                return Err(malformed(format!(
                    "unknown field {other:?} (expected filter, sort, page)"
                )));
            }
        }
    }
    Ok(query)
}

/// A dotted path: non-empty segments without `"`.
fn parse_path(key: &str) -> Result<FieldPath, BlockError> {
    if key.contains('"') {
        return Err(malformed(format!("key {key:?} must not contain '\"'")));
    }
    FieldPath::new(key.split('.').map(str::to_owned).collect())
        .ok_or_else(|| malformed(format!("key {key:?} is not a dotted path")))
}

fn parse_scalar(op: &str, value: &Value) -> Result<Scalar, BlockError> {
    Ok(match value {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => Scalar::Number(n.clone()),
        Value::String(s) => Scalar::Text(s.clone()),
        _ => {
            return Err(malformed(format!(
                "{op} compares with a string, number, boolean or null"
            )));
        }
    })
}

/// The one `{path: value}` pair of a comparison.
fn single_pair<'a>(op: &str, operand: &'a Value) -> Result<(FieldPath, &'a Value), BlockError> {
    match operand.as_object() {
        Some(pair) if pair.len() == 1 => match pair.iter().next() {
            Some((key, value)) => Ok((parse_path(key)?, value)),
            None => Err(malformed(format!("{op} filter must be one key/value pair"))),
        },
        _ => Err(malformed(format!("{op} filter must be one key/value pair"))),
    }
}

fn parse_filter(filter: &Value) -> Result<Filter, BlockError> {
    let unit = match filter.as_object() {
        Some(unit) if unit.len() == 1 => unit,
        Some(_) => return Err(malformed("a filter must have a single operator")),
        None => return Err(malformed("a filter must be an object")),
    };
    let Some((op, operand)) = unit.iter().next() else {
        return Err(malformed("a filter must have a single operator"));
    };
    let range = |r: Range| -> Result<Filter, BlockError> {
        let (path, value) = single_pair(op, operand)?;
        let bound = match value {
            Value::Number(n) => Bound::Number(n.clone()),
            Value::String(s) => Bound::Text(s.clone()),
            _ => {
                return Err(malformed(format!(
                    "{op} compares with a number or a string"
                )));
            }
        };
        Ok(Filter::Range(path, r, bound))
    };
    let group = || -> Result<Vec<Filter>, BlockError> {
        match operand.as_array() {
            Some(all) if all.len() >= 2 => all.iter().map(parse_filter).collect(),
            Some(_) => Err(malformed(format!("{op} needs at least two filters"))),
            None => Err(malformed(format!("{op} filter must be an array"))),
        }
    };
    Ok(match op.as_str() {
        "EQ" => {
            let (path, value) = single_pair(op, operand)?;
            Filter::Eq(path, parse_scalar(op, value)?)
        }
        "NEQ" => {
            let (path, value) = single_pair(op, operand)?;
            Filter::Neq(path, parse_scalar(op, value)?)
        }
        "IN" => {
            let (path, value) = single_pair(op, operand)?;
            let values = match value.as_array() {
                Some(values) if !values.is_empty() => values,
                _ => return Err(malformed("IN filter value must be a non-empty array")),
            };
            let set = values.iter().map(|v| parse_scalar(op, v));
            Filter::In(path, set.collect::<Result<_, _>>()?)
        }
        "GT" => range(Range::Gt)?,
        "GTE" => range(Range::Gte)?,
        "LT" => range(Range::Lt)?,
        "LTE" => range(Range::Lte)?,
        "AND" => Filter::And(group()?),
        "OR" => Filter::Or(group()?),
        other => return Err(malformed(format!("unsupported filter {other:?}"))),
    })
}

fn parse_sort_key(item: &Value) -> Result<SortKey, BlockError> {
    let Some(item) = item.as_object() else {
        return Err(malformed("a sort entry must be an object"));
    };
    let mut key = None;
    let mut order = Order::Asc;
    for (field, value) in item {
        match (field.as_str(), value) {
            ("key", Value::String(k)) => key = Some(parse_path(k)?),
            ("order", Value::String(o)) if o.is_empty() || o.eq_ignore_ascii_case("ASC") => {}
            ("order", Value::String(o)) if o.eq_ignore_ascii_case("DESC") => order = Order::Desc,
            ("order", Value::Null) => {}
            ("order", other) => {
                return Err(malformed(format!("sort order {other} is not ASC or DESC")));
            }
            (field, _) => return Err(malformed(format!("sort entry field {field:?} is unknown"))),
        }
    }
    let path = key.ok_or_else(|| malformed("a sort entry needs a string \"key\""))?;
    Ok(SortKey { path, order })
}

/// `limit` (0 or absent: no limit) and the offset in `token` (Dapr's stores use the number of
/// rows already returned).
fn parse_page(page: &Map<String, Value>) -> Result<(Option<u64>, u64), BlockError> {
    let (mut limit, mut offset) = (None, 0);
    for (field, value) in page {
        match (field.as_str(), value) {
            (_, Value::Null) => {}
            ("limit", Value::Number(n)) => match n.as_u64() {
                Some(0) => limit = None,
                Some(n) => limit = Some(n),
                None => return Err(malformed(format!("page limit {n} is not a count"))),
            },
            ("token", Value::String(t)) if t.is_empty() => {}
            ("token", Value::String(t)) => {
                offset = t
                    .parse()
                    .map_err(|_| malformed(format!("page token {t:?} is not one of ours")))?;
            }
            (field, value) => {
                return Err(malformed(format!(
                    "page field {field:?} = {value} is invalid"
                )));
            }
        }
    }
    Ok((limit, offset))
}

#[cfg(test)]
mod tests;
