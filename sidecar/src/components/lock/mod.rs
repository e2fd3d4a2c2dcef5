//! Lock stores (Dapr's distributed lock, alpha1). The block validates requests and builds the
//! final lock key (`lock||<prefix>||<resource>`); a store receives that key and must implement
//! these semantics exactly:
//!
//! - `try_lock` takes the lock for `owner` when nobody holds it (or the last hold expired) and
//!   returns `true`; when someone holds it, owner or not, it changes nothing and returns `false`
//!   (locks are not reentrant, as in Dapr). A hold lasts `ttl`, then lapses by itself.
//! - `unlock` releases the lock only for the owner that holds it: [`UnlockStatus::Success`];
//!   nobody holds it (or the hold expired): [`UnlockStatus::LockDoesNotExist`]; another owner
//!   does: [`UnlockStatus::LockBelongsToOthers`], and the hold stays. A key the store cannot read
//!   as a lock is [`UnlockStatus::InternalError`]. Check and release are one atomic step.
//! - A store that cannot answer fails with a [`LockError`] (the API's `ERR_TRY_LOCK` /
//!   `ERR_UNLOCK`), never with a status.

pub mod memory;
pub mod redis;

use async_trait::async_trait;
use std::time::Duration;

/// The answer of an unlock, with Dapr's numbers (`UnlockResponse.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockStatus {
    Success = 0,
    LockDoesNotExist = 1,
    LockBelongsToOthers = 2,
    InternalError = 3,
}

impl UnlockStatus {
    /// The number Dapr puts on the wire.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Why a lock store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The backend failed or could not be reached.
    #[error("{target}: {source}")]
    Backend {
        /// Which backend (`redis at host:port`).
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend answered something the protocol does not know.
    #[error("{target} answered {answer}")]
    UnexpectedAnswer { target: String, answer: String },
}

pub type LockResult<T> = Result<T, LockError>;

/// A lock store implementation.
#[async_trait]
pub trait LockStore: Send + Sync + 'static {
    /// Takes the lock `key` for `owner` for `ttl`, if nobody holds it.
    async fn try_lock(&self, key: &str, owner: &str, ttl: Duration) -> LockResult<bool>;

    /// Releases the lock `key` if `owner` holds it.
    async fn unlock(&self, key: &str, owner: &str) -> LockResult<UnlockStatus>;

    /// Releases connections; called once at shutdown.
    async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_daprs_numbers() {
        let numbers: Vec<i32> = [
            UnlockStatus::Success,
            UnlockStatus::LockDoesNotExist,
            UnlockStatus::LockBelongsToOthers,
            UnlockStatus::InternalError,
        ]
        .into_iter()
        .map(UnlockStatus::code)
        .collect();
        assert_eq!(numbers, [0, 1, 2, 3]);
    }
}
