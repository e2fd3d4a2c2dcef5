//! The list of every [`Code`], and lookups by Dapr's `errorCode`.

use super::Code;

impl Code {
    /// Every code (for lookups by Dapr's `errorCode` and the table's tests).
    pub const ALL: &[Code] = &[
        Code::MalformedRequest,
        Code::BodyRead,
        Code::BodyTooLarge,
        Code::HeadersTooLarge,
        Code::Unauthorized,
        Code::RouteNotFound,
        Code::ApiUnimplemented,
        Code::Internal,
        Code::StateStoreNotConfigured,
        Code::StateStoreNotFound,
        Code::StateIllegalKey,
        Code::StateGet,
        Code::StateSave,
        Code::StateSaveEtagMismatch,
        Code::StateSaveEtagInvalid,
        Code::StateDelete,
        Code::StateDeleteEtagMismatch,
        Code::StateDeleteEtagInvalid,
        Code::StateTransactionsNotSupported,
        Code::StateTransaction,
        Code::StateOperationNotSupported,
        Code::StateQueryNotSupported,
        Code::StateQuery,
        Code::LockStoreNotConfigured,
        Code::LockStoreNotFound,
        Code::TryLock,
        Code::Unlock,
        Code::PubsubNotConfigured,
        Code::PubsubNotFound,
        Code::PubsubNotReady,
        Code::TopicNameEmpty,
        Code::PubsubRequestMetadata,
        Code::PubsubMarshalEnvelope,
        Code::PubsubUnmarshalEvents,
        Code::PubsubCloudEventsSer,
        Code::PubsubPublishMessage,
        Code::InvokeOutputBinding,
        Code::SecretStoresNotConfigured,
        Code::SecretStoreNotFound,
        Code::SecretGet,
        Code::SecretPermissionDenied,
        Code::DirectInvoke,
        Code::DirectInvokeNoAppId,
        Code::DirectInvokeBadMethod,
        Code::InvokePermissionDenied,
        Code::HealthAppIdNotMatch,
        Code::HealthNotReady,
        Code::OutboundHealthNotReady,
        Code::ActorRuntimeNotFound,
        Code::ActorInstanceMissing,
        Code::ActorInvokeMethod,
        Code::ActorStateGet,
        Code::ActorStateTransactionSave,
        Code::ActorReminderCreate,
        Code::ActorReminderGet,
        Code::ActorReminderDelete,
        Code::ActorReminderNotFound,
        Code::ActorReminderAlreadyExists,
        Code::ActorReminderNonHosted,
        Code::ActorTimerCreate,
        Code::ActorStackDepth,
        Code::ActorNoAddress,
        Code::ActorRuntimeClosed,
        Code::ActorBadRequest,
        Code::ActorMoved,
    ];

    /// The code Dapr's `errorCode` and HTTP status name (an error answered by another host).
    pub fn from_dapr(error_code: &str, http: u16) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.spec().error_code == error_code && c.spec().http == http)
    }
}
