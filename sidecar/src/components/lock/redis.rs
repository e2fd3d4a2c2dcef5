//! `lock.redis`: Dapr's standalone Redis lock, same layout, so Tandem and Dapr replicas of one
//! app exclude each other. A lock is a string key holding the owner, taken with
//! `SET key owner NX PX ttl` (the expiry is Redis's, so a crashed owner never blocks anyone for
//! longer than its TTL); unlock is one Lua script that compares the owner and deletes in one
//! atomic step. Like Dapr's, the store refuses a Redis with replicas: a lock written to a primary
//! can be lost when a replica that never saw it takes over.

use super::{LockError, LockResult, LockStore, UnlockStatus};
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use crate::components::redis_connection::RedisConnection;
use ::redis::Script;
use ::redis::aio::ConnectionManager;
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// KEYS[1]: the lock, ARGV[1]: the owner. Returns 0 (released), -1 (no lock), -2 (another
/// owner's), -3 (the key is not a string, so not a lock: left alone).
const UNLOCK: &str = r#"
local v = redis.pcall("GET", KEYS[1])
if type(v) == "table" and v.err then return -3 end
if v == false then return -1 end
if v ~= ARGV[1] then return -2 end
redis.call("DEL", KEYS[1])
return 0"#;

/// Validated settings of a `lock.redis` component.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisLockConfig {
    pub connection: RedisConnection,
}

impl RedisLockConfig {
    /// The connection fields `state.redis` reads. Dapr's retry fields for this component
    /// (`maxRetries`, `maxRetryBackoff`, …) are accepted and ignored: a try-lock is one attempt,
    /// in Dapr too.
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        Ok(RedisLockConfig {
            connection: RedisConnection::from_metadata(md)?,
        })
    }
}

/// The store: one reconnecting, multiplexed connection.
pub struct RedisLockStore {
    conn: ConnectionManager,
    target: String,
    unlock: Script,
}

impl std::fmt::Debug for RedisLockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLockStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// `connected_slaves` of an `INFO replication` answer (0 when absent).
fn connected_replicas(info: &str) -> u64 {
    info.lines()
        .find_map(|line| line.trim().strip_prefix("connected_slaves:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

impl RedisLockStore {
    /// Connects (PING) and checks that the server has no replicas.
    pub async fn connect(cfg: &RedisLockConfig) -> Result<Self, String> {
        let target = cfg.connection.target();
        let mut conn = cfg.connection.manager(cfg.connection.client()?).await?;
        let info: String = ::redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("INFO replication on {target}: {e}"))?;
        let replicas = connected_replicas(&info);
        if replicas > 0 {
            return Err(format!(
                "{target} has {replicas} replicas; a lock needs a Redis without replication"
            ));
        }
        Ok(RedisLockStore {
            conn,
            target,
            unlock: Script::new(UNLOCK),
        })
    }

    fn backend(&self, err: ::redis::RedisError) -> LockError {
        LockError::Backend {
            target: self.target.clone(),
            source: Box::new(err),
        }
    }
}

#[async_trait]
impl LockStore for RedisLockStore {
    async fn try_lock(&self, key: &str, owner: &str, ttl: Duration) -> LockResult<bool> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let answer: Option<String> = ::redis::cmd("SET")
            .arg(key)
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(millis)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.backend(e))?;
        match answer.as_deref() {
            Some("OK") => Ok(true),
            None => Ok(false),
            Some(other) => Err(LockError::UnexpectedAnswer {
                target: self.target.clone(),
                answer: format!("{other:?} to SET NX"),
            }),
        }
    }

    async fn unlock(&self, key: &str, owner: &str) -> LockResult<UnlockStatus> {
        let answer: i64 = self
            .unlock
            .key(key)
            .arg(owner)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.backend(e))?;
        Ok(match answer {
            0 => UnlockStatus::Success,
            -1 => UnlockStatus::LockDoesNotExist,
            -2 => UnlockStatus::LockBelongsToOthers,
            _ => UnlockStatus::InternalError,
        })
    }
}

#[async_trait]
impl Settings for RedisLockConfig {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::Lock(Arc::new(
            RedisLockStore::connect(self).await?,
        )))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(RedisLockConfig::from_metadata(md)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RedisServer;

    fn md(pairs: &[(&str, &str)]) -> Metadata {
        Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn reads_replicas_from_info() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nmaster_repl_offset:0\r\n";
        assert_eq!(connected_replicas(info), 2);
        assert_eq!(connected_replicas("role:master\r\n"), 0);
    }

    #[test]
    fn settings_are_state_redis_connection_settings() {
        let cfg = RedisLockConfig::from_metadata(&md(&[
            ("redisHost", "localhost:6380"),
            ("redisDB", "3"),
        ]))
        .expect("valid");
        assert_eq!((cfg.connection.port, cfg.connection.db), (6380, 3));
        let err =
            RedisLockConfig::from_metadata(&md(&[("redisHost", "nohost")])).expect_err("no port");
        assert_eq!(err.field, "redisHost");
        let err = RedisLockConfig::from_metadata(&md(&[
            ("redisHost", "localhost:6379"),
            ("redisType", "cluster"),
        ]))
        .expect_err("cluster");
        assert_eq!(err.field, "redisType");
    }

    #[tokio::test]
    async fn locks_unlocks_and_expires_on_a_real_redis() {
        let redis = RedisServer::start();
        let cfg =
            RedisLockConfig::from_metadata(&md(&[("redisHost", &redis.addr())])).expect("valid");
        let store = RedisLockStore::connect(&cfg).await.expect("connect");
        let ttl = Duration::from_secs(10);
        assert!(store.try_lock("k", "a", ttl).await.expect("lock"));
        assert!(!store.try_lock("k", "b", ttl).await.expect("held"));
        assert!(!store.try_lock("k", "a", ttl).await.expect("not reentrant"));
        let unlock = |owner: &'static str| store.unlock("k", owner);
        assert_eq!(
            unlock("b").await.expect("answer"),
            UnlockStatus::LockBelongsToOthers
        );
        assert_eq!(unlock("a").await.expect("answer"), UnlockStatus::Success);
        assert_eq!(
            unlock("a").await.expect("answer"),
            UnlockStatus::LockDoesNotExist
        );
        // A key that is not a string is not a lock: left alone, reported as an internal error.
        let client = ::redis::Client::open(format!("redis://{}", redis.addr())).expect("client");
        let mut raw = client
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection");
        let _: i64 = ::redis::cmd("HSET")
            .arg("hash")
            .arg("f")
            .arg("v")
            .query_async(&mut raw)
            .await
            .expect("HSET");
        assert_eq!(
            store.unlock("hash", "a").await.expect("answer"),
            UnlockStatus::InternalError
        );
        assert!(!store.try_lock("hash", "a", ttl).await.expect("taken"));
    }

    #[tokio::test]
    async fn a_hold_lapses_by_redis_expiry() {
        let redis = RedisServer::start();
        let cfg =
            RedisLockConfig::from_metadata(&md(&[("redisHost", &redis.addr())])).expect("valid");
        let store = RedisLockStore::connect(&cfg).await.expect("connect");
        let taken = std::time::Instant::now();
        let short = Duration::from_millis(300);
        assert!(store.try_lock("k", "a", short).await.expect("lock"));
        let ttl = Duration::from_secs(10);
        let deadline = taken + Duration::from_secs(5);
        while !store.try_lock("k", "b", ttl).await.expect("answer") {
            assert!(std::time::Instant::now() < deadline, "never expired");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(taken.elapsed() >= short, "not before its expiry");
        assert_eq!(
            store.unlock("k", "a").await.expect("answer"),
            UnlockStatus::LockBelongsToOthers
        );
    }
}
