//! `state.redis`: Dapr's Redis layout, so a Tandem app and a Dapr app can share one database.
//! Each key is a hash with fields `data` (the value bytes) and `version` (the ETag, bumped with
//! `HINCRBY` on every write); a first-write also sets `first-write`, as Dapr does. A new key's
//! version starts from a random number instead of 0 (see [`start_version`]). Every check and
//! write runs inside one Lua script, so ETag checks are atomic on the server and each operation
//! costs one round trip (`EVALSHA`). As in Dapr's script, an ETag is compared only when the key
//! has a version: a write or delete with an ETag on a key that does not exist goes ahead.

#[cfg(test)]
mod tests;

use super::*;
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use crate::components::redis_connection::RedisConnection;
use ::redis::Script;
use ::redis::aio::ConnectionManager;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Validated settings of a `state.redis` component.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    pub connection: RedisConnection,
    /// `ttlInSeconds`: applied to writes whose request carries no TTL.
    pub default_ttl: Option<i64>,
}

impl RedisConfig {
    /// Reads the fields Tandem uses; Dapr's other fields (pool sizes, retries, …) are accepted
    /// and ignored so existing component files load unchanged.
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        Ok(RedisConfig {
            connection: RedisConnection::from_metadata(md)?,
            default_ttl: md.int("ttlInSeconds")?,
        })
    }
}

/// `{data, version, pttl}` in one atomic step. A plain string (written by very old Dapr
/// versions) is returned without an ETag, as Dapr's `directGet` does.
const GET: &str = r#"
local h = redis.pcall("HMGET", KEYS[1], "data", "version")
if h["err"] then
  return {redis.call("GET", KEYS[1]), false, redis.call("PTTL", KEYS[1])}
end
return {h[1], h[2], redis.call("PTTL", KEYS[1])}"#;

/// ARGV: etag ("" for none), data, first-write ("1"/"0"), ttl seconds (<= 0 persists), and the
/// version a new key starts from. Returns the new version, or -1 when the ETag or first-write
/// condition fails.
const SET: &str = r#"
local ver = redis.pcall("HGET", KEYS[1], "version")
if ARGV[1] ~= "" then
  if type(ver) == "string" and ver ~= ARGV[1] then return -1 end
elseif ARGV[3] == "1" and redis.call("EXISTS", KEYS[1]) == 1 then
  return -1
end
if type(ver) == "table" then redis.call("DEL", KEYS[1]) end
if type(ver) ~= "string" then redis.call("HSET", KEYS[1], "version", ARGV[5]) end
redis.call("HSET", KEYS[1], "data", ARGV[2])
if ARGV[3] == "1" then redis.call("HSET", KEYS[1], "first-write", 0) end
local v = redis.call("HINCRBY", KEYS[1], "version", 1)
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call("EXPIRE", KEYS[1], ttl) else redis.call("PERSIST", KEYS[1]) end
return v"#;

/// ARGV: etag ("" for none). Returns -1 on an ETag mismatch.
const DELETE: &str = r#"
local ver = redis.pcall("HGET", KEYS[1], "version")
if ARGV[1] ~= "" and type(ver) == "string" and ver ~= ARGV[1] then return -1 end
return redis.call("DEL", KEYS[1])"#;

/// KEYS: one per operation. ARGV: six per operation (kind "S"/"D"/"C", etag, first-write, ttl, data,
/// start version). Every condition is checked against the state before the transaction, then every
/// operation is applied; returns 0, or -i when operation i fails its check (nothing written).
const TRANSACT: &str = r#"
for i = 1, #KEYS do
  local b = (i - 1) * 6
  if ARGV[b + 2] ~= "" then
    local ver = redis.pcall("HGET", KEYS[i], "version")
    if type(ver) == "string" and ver ~= ARGV[b + 2] then return -i end
    if ARGV[b + 1] == "C" and type(ver) ~= "string" then return -i end
  elseif ARGV[b + 1] == "S" and ARGV[b + 3] == "1" and redis.call("EXISTS", KEYS[i]) == 1 then
    return -i
  end
end
for i = 1, #KEYS do
  local b = (i - 1) * 6
  local k = KEYS[i]
  if ARGV[b + 1] == "D" then
    redis.call("DEL", k)
  elseif ARGV[b + 1] == "S" then
    local t = redis.call("TYPE", k)["ok"]
    if t ~= "hash" and t ~= "none" then redis.call("DEL", k) end
    if redis.call("HEXISTS", k, "version") == 0 then redis.call("HSET", k, "version", ARGV[b + 6]) end
    redis.call("HSET", k, "data", ARGV[b + 5])
    if ARGV[b + 3] == "1" then redis.call("HSET", k, "first-write", 0) end
    redis.call("HINCRBY", k, "version", 1)
    local ttl = tonumber(ARGV[b + 4])
    if ttl > 0 then redis.call("EXPIRE", k, ttl) else redis.call("PERSIST", k) end
  end
end
return 0"#;

/// The store. `ConnectionManager` multiplexes one connection and reconnects on its own, so
/// a restarted Redis heals without restarting the sidecar.
pub struct RedisStore {
    conn: ConnectionManager,
    default_ttl: Option<i64>,
    get: Script,
    set: Script,
    delete: Script,
    transact: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("default_ttl", &self.default_ttl)
            .finish()
    }
}

fn backend(what: &str, key: &str, err: ::redis::RedisError) -> StoreError {
    StoreError::Backend(format!("redis {what} {key:?}: {err}"))
}

/// The request ETag in the canonical form `HINCRBY` writes ("" when there is none).
fn etag_arg(etag: Option<&str>) -> StoreResult<String> {
    etag.map_or(Ok(String::new()), |e| parse_etag(e).map(|n| n.to_string()))
}

/// Where a new key's version starts, one below its first ETag. Dapr starts every key at 0; a
/// random start keeps a key that is deleted and written again from reusing an old ETag, and
/// keeps ETags of different keys apart. Below 2^52 so the Lua number holding it stays exact.
fn start_version() -> i64 {
    rand::random_range(0..1i64 << 52)
}

impl RedisStore {
    /// Connects and sends PING, so a component init fails (and is retried) while Redis is down.
    pub async fn connect(cfg: &RedisConfig) -> Result<Self, String> {
        let conn = cfg.connection.manager(cfg.connection.client()?).await?;
        Ok(RedisStore {
            conn,
            default_ttl: cfg.default_ttl,
            get: Script::new(GET),
            set: Script::new(SET),
            delete: Script::new(DELETE),
            transact: Script::new(TRANSACT),
        })
    }

    /// Seconds to live for a write: the request's TTL, else the component default; 0 persists.
    fn ttl_arg(&self, ttl: Option<i64>) -> i64 {
        expiry_seconds(ttl.or(self.default_ttl)).unwrap_or(0)
    }
}

#[async_trait]
impl StateStore for RedisStore {
    fn features(&self) -> &'static [Feature] {
        &[Feature::Etag, Feature::Transactional, Feature::Ttl]
    }

    async fn get(&self, key: &str) -> StoreResult<Option<StoredItem>> {
        let (data, version, pttl): (Option<Vec<u8>>, Option<String>, i64) = self
            .get
            .key(key)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| backend("get", key, e))?;
        Ok(data.map(|data| StoredItem {
            data: Bytes::from(data),
            etag: version,
            expires_at: u64::try_from(pttl)
                .ok()
                .filter(|ms| *ms > 0)
                .map(|ms| SystemTime::now() + Duration::from_millis(ms)),
        }))
    }

    async fn set(&self, req: SetRequest) -> StoreResult<()> {
        let etag = etag_arg(req.etag.as_deref())?;
        let first_write = req.etag.is_none() && req.concurrency == Concurrency::FirstWrite;
        let version: i64 = self
            .set
            .key(&req.key)
            .arg(&etag)
            .arg(req.value.as_ref())
            .arg(if first_write { "1" } else { "0" })
            .arg(self.ttl_arg(req.ttl))
            .arg(start_version())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| backend("set", &req.key, e))?;
        match version {
            v if v > 0 => Ok(()),
            _ if first_write => Err(StoreError::EtagMismatch(format!(
                "key {} already exists",
                req.key
            ))),
            _ => Err(StoreError::EtagMismatch(format!("key {}", req.key))),
        }
    }

    async fn delete(&self, req: DeleteRequest) -> StoreResult<()> {
        let etag = etag_arg(req.etag.as_deref())?;
        let deleted: i64 = self
            .delete
            .key(&req.key)
            .arg(&etag)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| backend("delete", &req.key, e))?;
        if deleted < 0 {
            return Err(StoreError::EtagMismatch(format!("key {}", req.key)));
        }
        Ok(())
    }

    async fn transact(&self, ops: Vec<TxOperation>) -> StoreResult<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut call = self.transact.prepare_invoke();
        for op in &ops {
            match op {
                TxOperation::Upsert(r) => {
                    let first_write = r.etag.is_none() && r.concurrency == Concurrency::FirstWrite;
                    call.key(&r.key)
                        .arg("S")
                        .arg(etag_arg(r.etag.as_deref())?)
                        .arg(if first_write { "1" } else { "0" })
                        .arg(self.ttl_arg(r.ttl))
                        .arg(r.value.as_ref())
                        .arg(start_version());
                }
                TxOperation::Delete(r) => {
                    let etag = etag_arg(r.etag.as_deref())?;
                    call.key(&r.key)
                        .arg("D")
                        .arg(etag)
                        .arg("0")
                        .arg(0)
                        .arg("")
                        .arg(0);
                }
                TxOperation::Check(r) => {
                    let etag = etag_arg(Some(&r.etag))?;
                    call.key(&r.key)
                        .arg("C")
                        .arg(etag)
                        .arg("0")
                        .arg(0)
                        .arg("")
                        .arg(0);
                }
            }
        }
        let status: i64 = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| backend("transaction, first key", ops_key(&ops, 0), e))?;
        if status < 0 {
            let failed = usize::try_from(-status - 1).unwrap_or(0);
            return Err(StoreError::EtagMismatch(format!(
                "key {}",
                ops_key(&ops, failed)
            )));
        }
        Ok(())
    }

    async fn scan_prefix(
        &self,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<ScanPage> {
        let pattern = format!("{}*", glob_escape(prefix));
        let start: u64 = match cursor {
            Some(c) => c
                .parse()
                .map_err(|_| StoreError::Backend(format!("bad scan cursor {c:?}")))?,
            None => 0,
        };
        let mut conn = self.conn.clone();
        let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
            .arg(start)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(limit.max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| backend("scan", prefix, e))?;
        let mut items = Vec::with_capacity(keys.len());
        for key in keys {
            // A key that expired or was deleted between SCAN and the read is simply left out.
            if let Some(item) = self.get(&key).await? {
                items.push((key, item));
            }
        }
        Ok(ScanPage {
            items,
            next: (next != 0).then(|| next.to_string()),
        })
    }
}

/// `text` as a literal inside a Redis glob pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn ops_key(ops: &[TxOperation], i: usize) -> &str {
    ops.get(i).map(TxOperation::key).unwrap_or_default()
}

#[async_trait::async_trait]
impl Settings for RedisConfig {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::State(Arc::new(RedisStore::connect(self).await?)))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(RedisConfig::from_metadata(md)?))
}
