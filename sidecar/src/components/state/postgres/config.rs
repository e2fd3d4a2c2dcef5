//! `state.postgresql` metadata: the connection string (libpq keyword/value or URL, with the
//! pgx spellings Dapr's documentation uses), table names and timings.

use crate::components::metadata::{Metadata, MetadataError};
use std::time::Duration;
use tokio_postgres::config::SslMode;

/// Validated settings of a `state.postgresql` component.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresConfig {
    /// The parsed `connectionString` (its `Debug` hides the password).
    pub pg: tokio_postgres::Config,
    pub table: String,
    /// Accepted for compatibility; Tandem keeps no metadata rows.
    pub metadata_table: String,
    /// Bounds each operation, pool waits and connection attempts.
    pub timeout: Duration,
    /// How often expired rows are deleted; `None` turns the sweep off.
    pub cleanup_interval: Option<Duration>,
    pub max_conns: Option<usize>,
}

fn refuse(field: &str, value: &str, reason: impl Into<String>) -> MetadataError {
    MetadataError {
        field: field.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Splits a libpq keyword/value string (`key=value`, values optionally `'quoted'`, `\` escapes).
fn keyword_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("expected = after {key:?}"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                None if quoted => {
                    return Err(format!("unterminated quote in the value of {key:?}"));
                }
                None => break,
                Some('\'') if quoted => break,
                Some(c) if !quoted && c.is_whitespace() => break,
                Some('\\') => value.extend(chars.next()),
                Some(c) => value.push(c),
            }
        }
        pairs.push((key, value));
    }
}

/// Dapr's driver (pgx) reads more than libpq does: `database` for `dbname`, and `pool_*`
/// settings. Rewrites those so tokio-postgres accepts the same strings; returns
/// `pool_max_conns` when given.
fn normalise(raw: &str) -> Result<(String, Option<usize>), String> {
    let mut pool_max = None;
    let mut keep = |key: &str, value: &str| -> Result<Option<String>, String> {
        match key {
            "pool_max_conns" => {
                let n = value.parse::<usize>().ok().filter(|n| *n > 0);
                pool_max = Some(n.ok_or("pool_max_conns must be a positive integer")?);
                Ok(None)
            }
            k if k.starts_with("pool_") => Ok(None),
            "database" => Ok(Some("dbname".to_owned())),
            k => Ok(Some(k.to_owned())),
        }
    };
    let raw = raw.trim();
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        let Some((base, query)) = raw.split_once('?') else {
            return Ok((raw.to_owned(), None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if let Some(key) = keep(key, value)? {
                kept.push(format!("{key}={value}"));
            }
        }
        let query = if kept.is_empty() {
            String::new()
        } else {
            format!("?{}", kept.join("&"))
        };
        return Ok((format!("{base}{query}"), pool_max));
    }
    let mut out = Vec::new();
    for (key, value) in keyword_pairs(raw)? {
        if let Some(key) = keep(&key, &value)? {
            out.push(format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    Ok((out.join(" "), pool_max))
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
        // The connection string usually carries a password: errors never echo it.
        let conn_err = |reason: String| refuse("connectionString", "<redacted>", reason);
        let (conn, pool_max) = normalise(md.require("connectionString")?).map_err(conn_err)?;
        let pg: tokio_postgres::Config = conn
            .parse()
            .map_err(|e| conn_err(format!("not a valid connection string: {e}")))?;
        if pg.get_ssl_mode() == SslMode::Require {
            return Err(conn_err(
                "TLS (sslmode=require) is not supported yet".to_owned(),
            ));
        }
        let timeout = md
            .duration("timeout")?
            .or(md.duration("timeoutInSeconds")?)
            .unwrap_or(Duration::from_secs(20));
        if timeout.is_zero() {
            return Err(refuse("timeout", "0", "must be more than zero"));
        }
        let max_conns =
            match md.int("maxConns")? {
                None => pool_max,
                Some(n) => Some(usize::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                    refuse("maxConns", &n.to_string(), "must be a positive integer")
                })?),
            };
        Ok(PostgresConfig {
            pg,
            table: table_name(md, "tableName", "state")?,
            metadata_table: table_name(md, "metadataTableName", "dapr_metadata")?,
            timeout,
            cleanup_interval: cleanup_interval(md)?,
            max_conns,
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
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "connectionString"),
            (
                &[("connectionString", "host=db bogus=1")],
                "connectionString",
            ),
            (&[("connectionString", "host='db")], "connectionString"),
            (
                &[("connectionString", "host=db sslmode=require")],
                "connectionString",
            ),
            (
                &[("connectionString", "host=db pool_max_conns=0")],
                "connectionString",
            ),
            (&[CONN, ("tableName", "state; DROP TABLE x")], "tableName"),
            (&[CONN, ("tableName", "schema.")], "tableName"),
            (&[CONN, ("metadataTableName", "a-b")], "metadataTableName"),
            (&[CONN, ("timeout", "soon")], "timeout"),
            (&[CONN, ("timeout", "0")], "timeout"),
            (&[CONN, ("cleanupInterval", "often")], "cleanupInterval"),
            (&[CONN, ("maxConns", "0")], "maxConns"),
            (&[CONN, ("maxConns", "many")], "maxConns"),
        ];
        for (pairs, field) in cases {
            let err = PostgresConfig::from_metadata(&md(pairs)).expect_err(field);
            assert_eq!(err.field, *field, "{pairs:?}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn defaults_and_dapr_spellings() {
        let cfg = PostgresConfig::from_metadata(&md(&[(
            "connectionString",
            r"host=localhost user=postgres password='it\'s' port=5432 database=my_dapr pool_max_conns=7",
        )]))
        .expect("valid");
        assert_eq!(cfg.pg.get_dbname(), Some("my_dapr"));
        assert_eq!(cfg.pg.get_password(), Some(&b"it's"[..]));
        assert_eq!((cfg.table.as_str(), cfg.max_conns), ("state", Some(7)));
        assert_eq!(cfg.timeout, Duration::from_secs(20));
        assert_eq!(cfg.cleanup_interval, Some(Duration::from_secs(3600)));
        assert!(!format!("{cfg:?}").contains("it's"));

        let cfg = PostgresConfig::from_metadata(&md(&[
            (
                "connectionString",
                "postgres://u:p@db:5433/app?sslmode=disable&pool_min_conns=1",
            ),
            ("tableName", "myschema.state"),
            ("cleanupInterval", "-1"),
            ("maxConns", "3"),
            ("timeout", "5s"),
        ]))
        .expect("valid");
        assert_eq!(
            (cfg.pg.get_dbname(), cfg.pg.get_ports()),
            (Some("app"), &[5433][..])
        );
        assert_eq!(
            (cfg.table.as_str(), cfg.max_conns),
            ("myschema.state", Some(3))
        );
        assert_eq!(
            (cfg.cleanup_interval, cfg.timeout),
            (None, Duration::from_secs(5))
        );
    }
}
