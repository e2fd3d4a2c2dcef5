//! `POST|PUT /v1.0-alpha1/state/{store}/query` over the state block's query: the body is the
//! query, the answer daprd's `{"results": [{"key", "data", "etag"}], "token"}` with `data` the
//! stored JSON as it is, or 204 with no body when nothing matched.

use super::Shared;
use super::body::RawBody;
use super::path::ApiPath as Path;
use crate::blocks::error::BlockError;
use crate::blocks::state::{QueryPage, QueryResult};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;

/// One row as daprd writes it.
#[derive(Debug, Serialize)]
struct Row {
    key: String,
    data: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
}

/// The answer as daprd writes it.
#[derive(Debug, Serialize)]
struct Answer {
    results: Vec<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// The stored JSON unchanged; bytes that are not JSON (no store returns them) as a string.
fn raw_json(data: &[u8]) -> Box<RawValue> {
    let text = String::from_utf8_lossy(data).into_owned();
    RawValue::from_string(text.clone()).unwrap_or_else(|_| {
        let quoted = serde_json::Value::String(text).to_string();
        RawValue::from_string(quoted).unwrap_or_default()
    })
}

fn row(result: QueryResult) -> Row {
    Row {
        data: raw_json(&result.data),
        key: result.key,
        etag: result.etag,
    }
}

/// `POST|PUT /v1.0-alpha1/state/{store}/query`
pub async fn query(
    State(sc): State<Shared>,
    Path(store): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, BlockError> {
    let QueryPage { results, token } = sc.state().query(&store, &body).await?;
    if results.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let results = results.into_iter().map(row).collect();
    Ok(Json(Answer { results, token }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_the_stored_json_unchanged() {
        assert_eq!(raw_json(br#"{"a": 1.50}"#).get(), r#"{"a": 1.50}"#);
        assert_eq!(raw_json(b"not json").get(), r#""not json""#);
    }
}
