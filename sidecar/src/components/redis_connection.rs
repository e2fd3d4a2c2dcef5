//! The Redis connection settings shared by `state.redis` and `pubsub.redis`: reading and checking
//! Dapr's connection metadata, and opening a client plus a reconnecting `ConnectionManager` that
//! has answered PING (so a component's init fails, and is retried, while Redis is down).

use super::metadata::{Metadata, MetadataError};
use ::redis::IntoConnectionInfo;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// go-redis defaults, which Dapr inherits.
const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Reconnect attempts per outage before pending commands fail (Dapr's `redisMaxRetries` default).
const RECONNECT_RETRIES: usize = 3;
/// The longest pause between reconnect attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(2);

/// Where and how to reach Redis.
#[derive(Clone, PartialEq)]
pub struct RedisConnection {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    pub dial_timeout: Duration,
    /// The larger of `readTimeout` and `writeTimeout`: the client has one per-command timeout.
    pub response_timeout: Duration,
}

// By hand so a logged config never shows the password.
impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("dial_timeout", &self.dial_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

/// A metadata value refused, naming the field.
pub fn refuse(field: &str, value: &str, reason: &str) -> MetadataError {
    MetadataError {
        field: field.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

impl RedisConnection {
    /// Reads `redisHost`, `redisUsername`/`redisPassword`, `redisDB` and the timeouts. Settings
    /// Tandem cannot honour yet (TLS, cluster, Sentinel) are refused rather than silently treated
    /// as a single plain node, which would misbehave later.
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        let addr = md.require("redisHost")?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| refuse("redisHost", addr, "expected host:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse::<u16>().ok().filter(|p| *p > 0);
        let (Some(port), false) = (port, host.is_empty()) else {
            return Err(refuse("redisHost", addr, "expected host:port"));
        };
        let db = md.int("redisDB")?.unwrap_or(0);
        if db < 0 {
            return Err(refuse("redisDB", &db.to_string(), "must be 0 or more"));
        }
        if md.bool("enableTLS", false)? {
            return Err(refuse("enableTLS", "true", "TLS is not supported yet"));
        }
        if let Some(kind) = md
            .get("redisType")
            .filter(|t| !t.eq_ignore_ascii_case("node"))
        {
            return Err(refuse(
                "redisType",
                kind,
                "only node is supported yet (not cluster)",
            ));
        }
        if md.bool("failover", false)? {
            return Err(refuse(
                "failover",
                "true",
                "Sentinel failover is not supported yet",
            ));
        }
        // As in go-redis, zero means the default.
        let duration = |field, default| -> Result<Duration, MetadataError> {
            Ok(md
                .duration(field)?
                .filter(|d| !d.is_zero())
                .unwrap_or(default))
        };
        let read = duration("readTimeout", DEFAULT_READ_TIMEOUT)?;
        let write = duration("writeTimeout", read)?;
        Ok(RedisConnection {
            host: host.to_owned(),
            port,
            username: md.get("redisUsername").map(str::to_owned),
            password: md.get("redisPassword").map(str::to_owned),
            db,
            dial_timeout: duration("dialTimeout", DEFAULT_DIAL_TIMEOUT)?,
            response_timeout: read.max(write),
        })
    }

    /// `redis at host:port`, for error messages.
    pub fn target(&self) -> String {
        format!("redis at {}:{}", self.host, self.port)
    }

    /// A client for these settings (no connection yet).
    pub fn client(&self) -> Result<::redis::Client, String> {
        let mut settings = ::redis::RedisConnectionInfo::default().set_db(self.db);
        if let Some(user) = &self.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        let info = ::redis::ConnectionAddr::Tcp(self.host.clone(), self.port)
            .into_connection_info()
            .map_err(|e| format!("{}: {e}", self.target()))?
            .set_redis_settings(settings);
        ::redis::Client::open(info).map_err(|e| format!("{}: {e}", self.target()))
    }

    /// A reconnecting, multiplexed connection that has answered PING.
    pub async fn manager(&self, client: ::redis::Client) -> Result<ConnectionManager, String> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.dial_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.target()))?;
        let _: String = ::redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("PING {}: {e}", self.target()))?;
        Ok(conn)
    }
}
