//! The PostgreSQL connection settings shared by `state.postgresql` and `bindings.postgresql`:
//! the connection string (libpq keyword/value or URL, with the pgx spellings Dapr's
//! documentation uses), `timeout` and `maxConns`, and the connection pool built from them.

use super::metadata::{Metadata, MetadataError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

/// Dapr's default for connecting and for each operation.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where and how to reach PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresConnection {
    /// The parsed `connectionString` (its `Debug` hides the password).
    pub pg: tokio_postgres::Config,
    /// Bounds connection attempts and pool waits (and, for the state store, each operation).
    pub timeout: Duration,
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

impl PostgresConnection {
    /// Reads `connectionString`, `timeout` (legacy `timeoutInSeconds`) and `maxConns`.
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
            .unwrap_or(DEFAULT_TIMEOUT);
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
        Ok(PostgresConnection {
            pg,
            timeout,
            max_conns,
        })
    }

    /// A pool for these settings; connections are made on first use.
    pub fn pool(&self) -> Result<Pool, String> {
        let mut pg = self.pg.clone();
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(self.timeout);
        }
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let mut builder = Pool::builder(manager)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.timeout))
            .create_timeout(Some(self.timeout));
        if let Some(n) = self.max_conns {
            builder = builder.max_size(n);
        }
        builder.build().map_err(|e| format!("postgres pool: {e}"))
    }
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
            (&[CONN, ("timeout", "soon")], "timeout"),
            (&[CONN, ("timeout", "0")], "timeout"),
            (&[CONN, ("maxConns", "0")], "maxConns"),
            (&[CONN, ("maxConns", "many")], "maxConns"),
        ];
        for (pairs, field) in cases {
            let err = PostgresConnection::from_metadata(&md(pairs)).expect_err(field);
            assert_eq!(err.field, *field, "{pairs:?}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn defaults_and_dapr_spellings() {
        let conn = PostgresConnection::from_metadata(&md(&[(
            "connectionString",
            r"host=localhost user=postgres password='it\'s' port=5432 database=my_dapr pool_max_conns=7",
        )]))
        .expect("valid");
        assert_eq!(conn.pg.get_dbname(), Some("my_dapr"));
        assert_eq!(conn.pg.get_password(), Some(&b"it's"[..]));
        assert_eq!(conn.max_conns, Some(7));
        assert_eq!(conn.timeout, Duration::from_secs(20));
        assert!(!format!("{conn:?}").contains("it's"));

        let conn = PostgresConnection::from_metadata(&md(&[
            (
                "connectionString",
                "postgres://u:p@db:5433/app?sslmode=disable&pool_min_conns=1",
            ),
            ("maxConns", "3"),
            ("timeoutInSeconds", "5"),
        ]))
        .expect("valid");
        assert_eq!(
            (conn.pg.get_dbname(), conn.pg.get_ports()),
            (Some("app"), &[5433][..])
        );
        assert_eq!(
            (conn.max_conns, conn.timeout),
            (Some(3), Duration::from_secs(5))
        );
    }
}
