//! The distributed lock building block (Dapr's alpha1 lock API): try-lock and unlock over the
//! configured lock stores, with daprd's checks in daprd's order and its error codes, and the
//! lock key daprd builds, so Tandem and Dapr replicas of one app exclude each other. Front ends
//! translate their wire shapes into [`TryLockRequest`]/[`UnlockRequest`].

use super::Sidecar;
use super::error::{BlockError, Code};
use crate::components::lock::UnlockStatus;
use crate::components::registry::{LockHandle, Lookup};
use crate::components::state::KeyPrefix;
use std::time::Duration;

/// A try-lock: take `resource_id` for `lock_owner` for `expiry_in_seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryLockRequest {
    pub store: String,
    pub resource_id: String,
    pub lock_owner: String,
    pub expiry_in_seconds: i32,
}

/// An unlock: release `resource_id` if `lock_owner` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockRequest {
    pub store: String,
    pub resource_id: String,
    pub lock_owner: String,
}

/// The lock block of one sidecar.
pub struct LockBlock<'a> {
    sidecar: &'a Sidecar,
}

impl Sidecar {
    pub fn lock(&self) -> LockBlock<'_> {
        LockBlock { sidecar: self }
    }
}

const SEPARATOR: &str = "||";

/// The key daprd locks: `lock||<prefix>||<resource>`, the prefix from the component's
/// `keyPrefix` as daprd's lock API reads it (`appid` by default, `name` the store's name,
/// `none` no prefix, anything else taken literally, lowercased; `namespace` has no special
/// meaning here). A resource id containing `||` is refused.
pub fn lock_key(
    resource_id: &str,
    prefix: &KeyPrefix,
    store: &str,
    app_id: &str,
) -> Result<String, String> {
    if resource_id.contains(SEPARATOR) {
        return Err(format!(
            "input key/keyPrefix '{resource_id}' can't contain '{SEPARATOR}'"
        ));
    }
    let middle = match prefix {
        KeyPrefix::None => None,
        KeyPrefix::AppId if app_id.is_empty() => None,
        KeyPrefix::AppId => Some(app_id.to_owned()),
        KeyPrefix::Name => Some(store.to_owned()),
        KeyPrefix::Namespace => Some("namespace".to_owned()),
        KeyPrefix::Custom(custom) => Some(custom.to_lowercase()),
    };
    Ok(match middle {
        Some(middle) => format!("lock{SEPARATOR}{middle}{SEPARATOR}{resource_id}"),
        None => format!("lock{SEPARATOR}{resource_id}"),
    })
}

impl LockBlock<'_> {
    /// daprd's checks common to both calls, in its order: any lock store at all, the resource
    /// and the owner, then the named store.
    fn lookup<'r>(
        &self,
        registry: &'r crate::components::Registry,
        store: &str,
        resource_id: &str,
        lock_owner: &str,
    ) -> Result<LockHandle<'r>, BlockError> {
        let found = registry.lock(store);
        if matches!(found, Err(Lookup::NoneConfigured)) {
            return Err(BlockError::new(
                Code::LockStoreNotConfigured,
                "lock store is not configured",
            ));
        }
        if resource_id.is_empty() {
            return Err(BlockError::new(
                Code::MalformedRequest,
                format!("ResourceId is empty in lock store {store}"),
            ));
        }
        if lock_owner.is_empty() {
            return Err(BlockError::new(
                Code::MalformedRequest,
                format!("LockOwner is empty in lock store {store}"),
            ));
        }
        found.map_err(|why| match why {
            Lookup::NotReady(status) => BlockError::new(
                Code::LockStoreNotConfigured,
                format!("lock store {store} is not ready: {status:?}"),
            ),
            Lookup::NoneConfigured | Lookup::NotFound => BlockError::new(
                Code::LockStoreNotFound,
                format!("lock store {store} not found"),
            ),
        })
    }

    fn key(&self, handle: &LockHandle<'_>, resource_id: &str) -> Result<String, String> {
        lock_key(
            resource_id,
            handle.key_prefix,
            handle.name,
            self.sidecar.app_id(),
        )
    }

    /// Whether the lock was taken.
    pub async fn try_lock(&self, req: TryLockRequest) -> Result<bool, BlockError> {
        let failed = |e: String| {
            BlockError::new(Code::TryLock, format!("failed to try acquiring lock: {e}"))
        };
        let expiry = u64::try_from(req.expiry_in_seconds)
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                BlockError::new(
                    Code::MalformedRequest,
                    format!(
                        "ExpiryInSeconds is not positive in lock store {}",
                        req.store
                    ),
                )
            })?;
        let registry = self.sidecar.registry();
        let handle = self.lookup(&registry, &req.store, &req.resource_id, &req.lock_owner)?;
        let key = self.key(&handle, &req.resource_id).map_err(failed)?;
        handle
            .store
            .try_lock(&key, &req.lock_owner, Duration::from_secs(expiry))
            .await
            .map_err(|e| failed(e.to_string()))
    }

    /// How the unlock went; a store that could not answer is `ERR_UNLOCK`.
    pub async fn unlock(&self, req: UnlockRequest) -> Result<UnlockStatus, BlockError> {
        let failed =
            |e: String| BlockError::new(Code::Unlock, format!("failed to release lock: {e}"));
        let registry = self.sidecar.registry();
        let handle = self.lookup(&registry, &req.store, &req.resource_id, &req.lock_owner)?;
        let key = self.key(&handle, &req.resource_id).map_err(failed)?;
        handle
            .store
            .unlock(&key, &req.lock_owner)
            .await
            .map_err(|e| failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_daprs() {
        let custom = KeyPrefix::Custom("Shared".to_owned());
        let cases: &[(&KeyPrefix, &str, &str)] = &[
            (&KeyPrefix::AppId, "app", "lock||app||order-1"),
            (&KeyPrefix::AppId, "", "lock||order-1"),
            (&KeyPrefix::Name, "app", "lock||redislock||order-1"),
            (&KeyPrefix::None, "app", "lock||order-1"),
            (&KeyPrefix::Namespace, "app", "lock||namespace||order-1"),
            (&custom, "app", "lock||shared||order-1"),
        ];
        for (prefix, app, want) in cases {
            assert_eq!(
                lock_key("order-1", prefix, "redislock", app).as_deref(),
                Ok(*want),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn a_resource_with_the_separator_is_refused() {
        let err = lock_key("a||b", &KeyPrefix::AppId, "s", "app").expect_err("refused");
        assert!(err.contains("a||b"), "{err}");
    }
}
