//! `state.postgresql` metadata: the connection (shared with `bindings.postgresql`), table
//! names and the sweep of expired rows.

use crate::components::metadata::{Metadata, MetadataError};
use crate::components::postgres_connection::PostgresConnection;
use std::time::Duration;

/// Validated settings of a `state.postgresql` component.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresConfig {
    /// The connection string, `timeout` (which also bounds each operation) and `maxConns`.
    pub connection: PostgresConnection,
    pub table: String,
    /// Accepted for compatibility; Tandem keeps no metadata rows.
    pub metadata_table: String,
    /// How often expired rows are deleted; `None` turns the sweep off.
    pub cleanup_interval: Option<Duration>,
}

fn refuse(field: &str, value: &str, reason: impl Into<String>) -> MetadataError {
    MetadataError {
        field: field.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn table_name(md: &Metadata, field: &str, default: &str) -> Result<String, MetadataError> {
    let name = md.get(field).unwrap_or(default);
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !chars_ok || name.split('.').any(str::is_empty) {
        return Err(refuse(
            field,
            name,
            "must be letters, digits and underscores, optionally schema.table",
        ));
    }
    Ok(name.to_owned())
}

impl PostgresConfig {
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        Ok(PostgresConfig {
            connection: PostgresConnection::from_metadata(md)?,
            table: table_name(md, "tableName", "state")?,
            metadata_table: table_name(md, "metadataTableName", "dapr_metadata")?,
            cleanup_interval: cleanup_interval(md)?,
        })
    }
}

/// `cleanupInterval` (legacy `cleanupIntervalInSeconds`): default one hour; zero or a negative
/// number turns the sweep off, as in Dapr.
fn cleanup_interval(md: &Metadata) -> Result<Option<Duration>, MetadataError> {
    for field in ["cleanupInterval", "cleanupIntervalInSeconds"] {
        if let Some(v) = md.get(field) {
            if v.trim().parse::<i64>().is_ok_and(|n| n <= 0) {
                return Ok(None);
            }
            return Ok(md.duration(field)?.filter(|d| !d.is_zero()));
        }
    }
    Ok(Some(Duration::from_secs(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&str, &str)]) -> Metadata {
        Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    const CONN: (&str, &str) = ("connectionString", "host=db user=u password=s3cret");

    #[test]
    fn bad_metadata_names_the_field() {
        // Connection fields are checked by `PostgresConnection`, and reported the same way.
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "connectionString"),
            (&[("connectionString", "host='db")], "connectionString"),
            (&[CONN, ("tableName", "state; DROP TABLE x")], "tableName"),
            (&[CONN, ("tableName", "schema.")], "tableName"),
            (&[CONN, ("metadataTableName", "a-b")], "metadataTableName"),
            (&[CONN, ("timeout", "0")], "timeout"),
            (&[CONN, ("cleanupInterval", "often")], "cleanupInterval"),
        ];
        for (pairs, field) in cases {
            let err = PostgresConfig::from_metadata(&md(pairs)).expect_err(field);
            assert_eq!(err.field, *field, "{pairs:?}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn defaults_and_dapr_spellings() {
        let cfg = PostgresConfig::from_metadata(&md(&[CONN])).expect("valid");
        assert_eq!(cfg.connection.pg.get_hosts().len(), 1);
        assert_eq!(cfg.connection.timeout, Duration::from_secs(20));
        assert_eq!(
            (cfg.table.as_str(), cfg.metadata_table.as_str()),
            ("state", "dapr_metadata")
        );
        assert_eq!(cfg.cleanup_interval, Some(Duration::from_secs(3600)));
        assert!(!format!("{cfg:?}").contains("s3cret"));

        let cfg = PostgresConfig::from_metadata(&md(&[
            CONN,
            ("tableName", "myschema.state"),
            ("cleanupInterval", "-1"),
            ("timeout", "5s"),
        ]))
        .expect("valid");
        assert_eq!(cfg.table, "myschema.state");
        assert_eq!(
            (cfg.cleanup_interval, cfg.connection.timeout),
            (None, Duration::from_secs(5))
        );
    }
}
