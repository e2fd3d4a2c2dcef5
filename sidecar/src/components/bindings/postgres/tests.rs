//! The binding against a real PostgreSQL server: statements with parameters, rows back as
//! JSON, the metadata Dapr returns, and errors.

use super::*;
use crate::components::metadata::Metadata;
use crate::testing::PostgresServer;
use chrono::DateTime;

async fn binding(server: &PostgresServer) -> PostgresBinding {
    let md = Metadata::new([("connectionString".to_owned(), server.connection_string())]);
    let connection = PostgresConnection::from_metadata(&md).expect("config");
    PostgresBinding::connect(&connection)
        .await
        .expect("connect")
}

fn request(op: &str, sql: &str, params: Option<&str>) -> InvokeRequest {
    let mut metadata = BTreeMap::from([("sql".to_owned(), sql.to_owned())]);
    if let Some(params) = params {
        metadata.insert("params".to_owned(), params.to_owned());
    }
    InvokeRequest {
        operation: op.to_owned(),
        data: Bytes::new(),
        metadata,
    }
}

async fn exec(pg: &PostgresBinding, sql: &str, params: Option<&str>) -> String {
    let answer = pg.invoke(request("exec", sql, params)).await.expect(sql);
    assert_eq!(answer.data, None);
    answer
        .metadata
        .get("rows-affected")
        .cloned()
        .expect("rows-affected")
}

/// The rows as the JSON text the binding answered.
async fn query(pg: &PostgresBinding, sql: &str, params: Option<&str>) -> String {
    let answer = pg.invoke(request("query", sql, params)).await.expect(sql);
    assert!(!answer.metadata.contains_key("rows-affected"));
    String::from_utf8(answer.data.expect("rows").to_vec()).expect("utf-8")
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).expect("the rows are JSON")
}

#[tokio::test]
async fn statements_with_params_and_rows_back_as_json() {
    let server = PostgresServer::start();
    let pg = binding(&server).await;
    let create = "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), \
        tags text[], doc jsonb, made timestamptz, raw bytea, ok boolean, ratio float8, \
        uid uuid, day date)";
    let answer = pg
        .invoke(request("exec", create, None))
        .await
        .expect("create");
    let md = |k: &str| answer.metadata.get(k).cloned().unwrap_or_default();
    assert_eq!(
        (md("operation").as_str(), md("sql").as_str()),
        ("exec", create)
    );
    assert_eq!(md("rows-affected"), "0");
    for key in ["start-time", "end-time"] {
        let value = md(key);
        assert!(
            DateTime::parse_from_rfc3339(&value).is_ok() && value.ends_with('Z'),
            "{key}: {value}"
        );
    }
    assert!(md("duration").ends_with('s'), "{}", md("duration"));

    let insert = "INSERT INTO items VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    let first = r#"[1, "apple", 1.5, ["a", "b \"q\""], {"k": [1, 2]}, "2024-03-09T10:00:00Z",
        "\\x0102", true, 0.25, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "2024-03-09"]"#;
    assert_eq!(exec(&pg, insert, Some(first)).await, "1");
    let second = r#"[2.0, "pear", null, null, null, null, null, false, 2, null, null]"#;
    assert_eq!(exec(&pg, insert, Some(second)).await, "1");

    let rows = query(&pg, "SELECT * FROM items ORDER BY id", None).await;
    assert!(rows.contains("1.50"), "numeric keeps its scale: {rows}");
    assert_eq!(
        parsed(&rows),
        serde_json::json!([
            [1, "apple", 1.5, ["a", "b \"q\""], {"k": [1, 2]}, "2024-03-09T10:00:00Z",
             "AQI=", true, 0.25, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "2024-03-09T00:00:00Z"],
            [2, "pear", null, null, null, null, null, false, 2, null, null]
        ])
    );
    let rows = query(&pg, "SELECT name FROM items WHERE id = $1", Some("[2]")).await;
    assert_eq!(parsed(&rows), serde_json::json!([["pear"]]));
    let rows = query(&pg, "SELECT name FROM items WHERE id > $1", Some("[99]")).await;
    assert_eq!(rows, "[]");

    assert_eq!(
        exec(
            &pg,
            "UPDATE items SET ok = $1 WHERE id > $2",
            Some("[true, 0]")
        )
        .await,
        "2"
    );
    // Without parameters, several statements may run at once (the last one counts).
    let batch =
        "INSERT INTO items (id, name) VALUES (3, 'x'), (4, 'y'); DELETE FROM items WHERE id = 3";
    assert_eq!(exec(&pg, batch, None).await, "1");
}

#[tokio::test]
async fn values_print_as_go_would_and_odd_types_ask_for_a_cast() {
    let server = PostgresServer::start();
    let pg = binding(&server).await;
    let rows = query(
        &pg,
        "SELECT 12345678901234567890.123::numeric, -0.000123::numeric, 0::numeric, \
         'NaN'::numeric, 100::numeric(10,0), ARRAY[[1,2],[3,4]]::int[], '{}'::int[], \
         'x'::varchar, '13:04:05.5'::time, 'infinity'::timestamp, 3::int8, 2.5::float4, \
         $1::text[]",
        Some(r#"[["a", null, "c,d"]]"#),
    )
    .await;
    assert_eq!(
        rows,
        r#"[[12345678901234567890.123,-0.000123,0,"NaN",100,[[1,2],[3,4]],[],"x","13:04:05.500","infinity",3,2.5,["a",null,"c,d"]]]"#
    );

    let err = pg
        .invoke(request("query", "SELECT '1 day'::interval", None))
        .await
        .expect_err("interval");
    assert!(
        err.to_string().contains("interval") && err.to_string().contains("::text"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_requests_and_bad_sql_are_errors() {
    let server = PostgresServer::start();
    let pg = binding(&server).await;
    let err = pg
        .invoke(request("exec", "SELEC 1", None))
        .await
        .expect_err("syntax");
    assert!(matches!(err, BindingError::Backend { .. }), "{err}");
    assert!(
        err.to_string().contains("syntax error") && err.to_string().contains("42601"),
        "{err}"
    );
    let err = pg
        .invoke(request(
            "query",
            "SELECT * FROM nowhere WHERE a = $1",
            Some("[1]"),
        ))
        .await
        .expect_err("missing table");
    assert!(
        err.to_string().contains("\"nowhere\" does not exist"),
        "{err}"
    );
    let err = pg
        .invoke(request("exec", "SELECT $1::int", Some(r#"["seven"]"#)))
        .await
        .expect_err("bad parameter");
    assert!(err.to_string().contains("invalid input syntax"), "{err}");

    let err = pg
        .invoke(request("exec", "", None))
        .await
        .expect_err("no sql");
    assert!(matches!(err, BindingError::BadRequest(_)), "{err}");
    let err = pg
        .invoke(request("exec", "SELECT 1", Some(r#"{"a":1}"#)))
        .await
        .expect_err("params not an array");
    assert!(matches!(err, BindingError::BadRequest(_)), "{err}");
    let err = pg
        .invoke(request("insert", "SELECT 1", None))
        .await
        .expect_err("op");
    assert!(
        matches!(err, BindingError::UnsupportedOperation { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_component_type_builds_a_binding_that_close_stops() {
    use crate::components::factory::{self, Instance};
    let server = PostgresServer::start();
    let md = Metadata::new([("connectionString".to_owned(), server.connection_string())]);
    let config =
        factory::settings("bindings.postgresql", &md, std::path::Path::new(".")).expect("config");
    let Ok(Instance::Binding(binding)) = config.init().await else {
        panic!("bindings.postgresql did not build a binding");
    };
    assert!(binding.input.is_none());
    let pg = binding.output.expect("output side");
    let answer = pg
        .invoke(request("exec", "SELECT 1", None))
        .await
        .expect("exec");
    assert_eq!(
        answer.metadata.get("rows-affected").map(String::as_str),
        Some("1")
    );
    pg.invoke(request("close", "", None)).await.expect("close");
    let err = pg
        .invoke(request("exec", "SELECT 1", None))
        .await
        .expect_err("closed");
    assert!(err.to_string().contains("closed"), "{err}");
    pg.invoke(request("close", "", None))
        .await
        .expect("closing twice is fine");
}
