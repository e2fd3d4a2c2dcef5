//! Actor state: Dapr's key layout (`appId||type||id||key`) in the actor state store. Reads are
//! served anywhere; a transaction is accepted only for an actor active on this host, and carries
//! the condition on its shard's fence, so a host that lost the shard cannot write.

use super::table::ActorRef;
use super::{actor_store, check_name, keys};
use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};
use crate::components::state::{
    CheckRequest, Concurrency, DeleteRequest, SetRequest, StoredItem, TxOperation,
};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One operation of `POST /v1.0/actors/{type}/{id}/state`.
#[derive(Debug, Deserialize)]
pub struct ActorStateOperation {
    pub operation: String,
    pub request: ActorStateItem,
}

#[derive(Debug, Deserialize)]
pub struct ActorStateItem {
    pub key: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// One write of an actor state transaction, as both front ends give it: the HTTP API's JSON
/// value is stored as its JSON text, the gRPC API's bytes as they are (as daprd stores them).
#[derive(Debug, Clone, PartialEq)]
pub struct ActorStateWrite {
    pub operation: String,
    pub key: String,
    pub value: Bytes,
    pub metadata: BTreeMap<String, String>,
}

impl ActorStateOperation {
    /// The write this JSON operation asks for.
    pub fn into_write(self) -> Result<ActorStateWrite, BlockError> {
        let value = match self.request.value {
            Some(v) => Bytes::from(
                serde_json::to_vec(&v)
                    .map_err(|e| BlockError::new(Code::ActorBadRequest, e.to_string()))?,
            ),
            None => Bytes::from_static(b"null"),
        };
        Ok(ActorStateWrite {
            operation: self.operation,
            key: self.request.key,
            value,
            metadata: self.request.metadata,
        })
    }
}

/// Reads one key of an actor's state; `None` when it is missing.
pub async fn get(
    sc: &Sidecar,
    actor: &ActorRef,
    key: &str,
) -> Result<Option<StoredItem>, BlockError> {
    check_name("actor type", &actor.actor_type)?;
    check_name("actor id", &actor.actor_id)?;
    let store = actor_store(sc)?;
    let key = keys::state_key(sc.app_id(), &actor.actor_type, &actor.actor_id, key);
    store.get(&key).await.map_err(|e| {
        BlockError::new(
            Code::ActorStateGet,
            format!("error getting actor state: {e}"),
        )
    })
}

/// The store operations of a transaction, with the fence condition added.
pub fn to_operations(
    app_id: &str,
    actor: &ActorRef,
    ops: Vec<ActorStateWrite>,
    fence: (String, String),
) -> Result<Vec<TxOperation>, BlockError> {
    let mut out = Vec::with_capacity(ops.len() + 1);
    for op in ops {
        if op.key.is_empty() {
            return Err(BlockError::new(
                Code::ActorBadRequest,
                "an actor state operation needs a key",
            ));
        }
        let key = keys::state_key(app_id, &actor.actor_type, &actor.actor_id, &op.key);
        match op.operation.to_ascii_lowercase().as_str() {
            "upsert" => {
                let ttl = match op.metadata.get("ttlInSeconds") {
                    Some(t) => Some(t.trim().parse::<i64>().map_err(|_| {
                        BlockError::new(
                            Code::ActorBadRequest,
                            format!("ttlInSeconds {t:?} is not a number"),
                        )
                    })?),
                    None => None,
                };
                out.push(TxOperation::Upsert(SetRequest {
                    key,
                    value: op.value,
                    etag: None,
                    concurrency: Concurrency::LastWrite,
                    ttl,
                }));
            }
            "delete" => out.push(TxOperation::Delete(DeleteRequest {
                key,
                etag: None,
                concurrency: Concurrency::LastWrite,
            })),
            other => {
                return Err(BlockError::new(
                    Code::ActorBadRequest,
                    format!("operation type {other} not supported"),
                ));
            }
        }
    }
    let (key, etag) = fence;
    out.push(TxOperation::Check(CheckRequest { key, etag }));
    Ok(out)
}

/// Applies a transaction to an actor's state.
pub async fn transact(
    sc: &Sidecar,
    actor: &ActorRef,
    ops: Vec<ActorStateWrite>,
) -> Result<(), BlockError> {
    check_name("actor type", &actor.actor_type)?;
    check_name("actor id", &actor.actor_id)?;
    let store = actor_store(sc)?;
    let rt = sc.actor_runtime();
    let fence = rt
        .placement()
        .fence(rt.address(), &actor.actor_type, actor.shard())
        .filter(|_| rt.table().is_active(actor))
        .ok_or_else(|| {
            BlockError::new(
                Code::ActorInstanceMissing,
                format!(
                    "actor instance is missing: {}/{} is not active on this host",
                    actor.actor_type, actor.actor_id
                ),
            )
        })?;
    let ops = to_operations(sc.app_id(), actor, ops, fence)?;
    store.transact(ops).await.map_err(|e| {
        BlockError::new(
            Code::ActorStateTransactionSave,
            format!("error saving actor state: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_use_daprs_keys_and_end_with_the_fence() {
        let ops: Vec<ActorStateOperation> = serde_json::from_str(
            r#"[{"operation":"upsert","request":{"key":"k","value":{"a":1},"metadata":{"ttlInSeconds":"5"}}},
                {"operation":"delete","request":{"key":"old"}}]"#,
        )
        .expect("test value");
        let actor = ActorRef::new("Cat", "7");
        let writes = ops
            .into_iter()
            .map(ActorStateOperation::into_write)
            .collect::<Result<Vec<_>, _>>()
            .expect("test value");
        let out =
            to_operations("app", &actor, writes, ("fence".into(), "9".into())).expect("test value");
        assert!(
            matches!(&out[0], TxOperation::Upsert(s) if s.key == "app||Cat||7||k" && s.ttl == Some(5) && &s.value[..] == br#"{"a":1}"#)
        );
        assert!(matches!(&out[1], TxOperation::Delete(d) if d.key == "app||Cat||7||old"));
        assert!(matches!(&out[2], TxOperation::Check(c) if c.key == "fence" && c.etag == "9"));
        let bad: Vec<ActorStateOperation> =
            serde_json::from_str(r#"[{"operation":"merge","request":{"key":"k"}}]"#)
                .expect("test value");
        let bad = bad
            .into_iter()
            .map(ActorStateOperation::into_write)
            .collect::<Result<Vec<_>, _>>()
            .expect("test value");
        assert!(to_operations("app", &actor, bad, ("f".into(), "1".into())).is_err());
    }
}
