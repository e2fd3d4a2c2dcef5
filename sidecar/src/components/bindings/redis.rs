//! `bindings.redis`: an output binding over plain Redis strings, with Dapr's operations:
//! `create` (SET, with `ttlInSeconds`/`ttl` as an expiry), `get` (GET, or GETDEL when request
//! metadata `delete` is `true`; a missing key answers with no data), `delete` (DEL) and
//! `increment` (INCR, with the same optional expiry). Every call names its key in request
//! metadata `key`. The connection settings and client are shared with `state.redis`.

use super::{BindingError, InvokeRequest, InvokeResponse, OutputBinding};
use crate::components::bindings::Binding;
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::parse_duration;
use crate::components::metadata::{Metadata, MetadataError};
use crate::components::redis_connection::RedisConnection;
use ::redis::aio::ConnectionManager;
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const OPERATIONS: &[&str] = &["create", "get", "delete", "increment"];

/// The binding: one reconnecting, multiplexed connection.
pub struct RedisBinding {
    conn: ConnectionManager,
    target: String,
}

impl std::fmt::Debug for RedisBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBinding")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The expiry a request asks for, in whole seconds: `ttlInSeconds` or `ttl`, a number of
/// seconds or a Go duration, as Dapr's `TryGetTTL` reads them.
fn ttl_seconds(metadata: &BTreeMap<String, String>) -> Result<Option<u64>, BindingError> {
    let Some((field, text)) = ["ttlInSeconds", "ttl"]
        .iter()
        .find_map(|f| metadata.get(*f).filter(|v| !v.is_empty()).map(|v| (*f, v)))
    else {
        return Ok(None);
    };
    let refuse = |reason: &str| {
        BindingError::BadRequest(format!(
            "metadata {field:?} has invalid value {text:?}: {reason}"
        ))
    };
    let ttl = parse_duration(text).map_err(|e| refuse(&e))?;
    match ttl.as_secs() {
        0 => Err(refuse("must be at least one second")),
        secs => Ok(Some(secs)),
    }
}

impl RedisBinding {
    /// Connects and PINGs, so init fails (and is retried) while Redis is down.
    pub async fn connect(connection: &RedisConnection) -> Result<Self, String> {
        let client = connection.client()?;
        Ok(RedisBinding {
            conn: connection.manager(client).await?,
            target: connection.target(),
        })
    }

    fn failed(&self, what: &str, key: &str) -> impl FnOnce(::redis::RedisError) -> BindingError {
        let context = format!("{} {what} {key:?}", self.target);
        move |e| BindingError::backend(format!("{context}: {e}"))
    }
}

#[async_trait]
impl OutputBinding for RedisBinding {
    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse, BindingError> {
        let op = request.operation.as_str();
        if !OPERATIONS.contains(&op) {
            return Err(BindingError::unsupported(op, OPERATIONS));
        }
        let key = request
            .metadata
            .get("key")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                BindingError::BadRequest(
                    "redis binding: missing key in request metadata".to_owned(),
                )
            })?;
        let mut conn = self.conn.clone();
        match op {
            "create" => {
                let mut set = ::redis::cmd("SET");
                set.arg(key).arg(request.data.as_ref());
                if let Some(ttl) = ttl_seconds(&request.metadata)? {
                    set.arg("EX").arg(ttl);
                }
                let () = set
                    .query_async(&mut conn)
                    .await
                    .map_err(self.failed("SET", key))?;
            }
            "get" => {
                let delete = request.metadata.get("delete").is_some_and(|d| d == "true");
                let command = if delete { "GETDEL" } else { "GET" };
                let value: Option<Vec<u8>> = ::redis::cmd(command)
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .map_err(self.failed(command, key))?;
                return Ok(InvokeResponse {
                    data: value.map(Bytes::from),
                    metadata: BTreeMap::new(),
                });
            }
            "delete" => {
                let _: i64 = ::redis::cmd("DEL")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .map_err(self.failed("DEL", key))?;
            }
            _ => {
                // INCR and its expiry together, so a counter never lives on without the TTL.
                let ttl = ttl_seconds(&request.metadata)?;
                let mut pipe = ::redis::pipe();
                pipe.atomic().cmd("INCR").arg(key).ignore();
                if let Some(ttl) = ttl {
                    pipe.cmd("EXPIRE").arg(key).arg(ttl).ignore();
                }
                let () = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(self.failed("INCR", key))?;
            }
        }
        Ok(InvokeResponse::default())
    }
}

/// `bindings.redis`'s settings: a Redis connection.
#[derive(Debug)]
pub struct RedisBindingSettings(RedisConnection);

#[async_trait]
impl Settings for RedisBindingSettings {
    async fn init(&self) -> Result<Instance, String> {
        let binding = RedisBinding::connect(&self.0).await?;
        Ok(Instance::Binding(Binding::output(Arc::new(binding))))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(RedisBindingSettings(
        RedisConnection::from_metadata(md)?,
    )))
}

#[cfg(test)]
mod tests;
