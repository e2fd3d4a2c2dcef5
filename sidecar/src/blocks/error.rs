//! The sidecar's one error vocabulary. Every failure a building block (or a front end) can
//! report is a [`Code`]; the table in [`Code::spec`] says, once, Dapr's `errorCode`, the HTTP
//! status, the gRPC status code and the `ErrorInfo` reason for each. The front ends only
//! translate: `http::error` into Dapr's JSON, a gRPC front end into a status with `ErrorInfo`.

use std::collections::BTreeMap;

/// gRPC status codes (the numbers are gRPC's), kept here so the table needs no gRPC crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcCode {
    InvalidArgument = 3,
    NotFound = 5,
    PermissionDenied = 7,
    FailedPrecondition = 9,
    Aborted = 10,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
    ResourceExhausted = 8,
}

/// What the table says about one [`Code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Dapr's `errorCode` (`ERR_STATE_GET`, …).
    pub error_code: &'static str,
    /// The HTTP status Dapr answers with.
    pub http: u16,
    pub grpc: GrpcCode,
    /// The `ErrorInfo` reason of Dapr's kit errors (`DAPR_STATE_NOT_FOUND`, …), when Dapr sends one.
    pub reason: Option<&'static str>,
}

/// Every failure the sidecar reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    // Requests as such.
    MalformedRequest,
    BodyRead,
    BodyTooLarge,
    HeadersTooLarge,
    Unauthorized,
    RouteNotFound,
    /// A Dapr API Tandem does not serve (yet).
    ApiUnimplemented,
    Internal,
    // State.
    StateStoreNotConfigured,
    StateStoreNotFound,
    StateIllegalKey,
    StateGet,
    StateSave,
    StateSaveEtagMismatch,
    StateSaveEtagInvalid,
    StateDelete,
    StateDeleteEtagMismatch,
    StateDeleteEtagInvalid,
    StateTransactionsNotSupported,
    StateTransaction,
    StateOperationNotSupported,
    StateQueryNotSupported,
    StateQuery,
    // Distributed lock.
    LockStoreNotConfigured,
    LockStoreNotFound,
    TryLock,
    Unlock,
    // Pub/sub.
    PubsubNotConfigured,
    PubsubNotFound,
    PubsubNotReady,
    TopicNameEmpty,
    PubsubRequestMetadata,
    PubsubMarshalEnvelope,
    PubsubUnmarshalEvents,
    PubsubCloudEventsSer,
    PubsubPublishMessage,
    // Bindings.
    InvokeOutputBinding,
    // Secrets.
    SecretStoresNotConfigured,
    SecretStoreNotFound,
    SecretGet,
    SecretPermissionDenied,
    // Service invocation.
    DirectInvoke,
    DirectInvokeNoAppId,
    DirectInvokeBadMethod,
    /// An access-control policy (or the caller's missing identity) refused an invocation.
    InvokePermissionDenied,
    // Health.
    HealthAppIdNotMatch,
    HealthNotReady,
    OutboundHealthNotReady,
    // Actors.
    ActorRuntimeNotFound,
    ActorInstanceMissing,
    ActorInvokeMethod,
    ActorStateGet,
    ActorStateTransactionSave,
    ActorReminderCreate,
    ActorReminderGet,
    ActorReminderDelete,
    ActorReminderNotFound,
    ActorReminderAlreadyExists,
    ActorReminderNonHosted,
    ActorTimerCreate,
    ActorStackDepth,
    ActorNoAddress,
    ActorRuntimeClosed,
    ActorBadRequest,
    /// A forwarded actor call reached a host that no longer holds the actor's shard: the
    /// caller looks again (Tandem's own; Dapr's code for "no address").
    ActorMoved,
}

impl Code {
    /// The one table.
    pub const fn spec(self) -> Spec {
        use GrpcCode as G;
        let (error_code, http, grpc, reason): (&str, u16, GrpcCode, Option<&str>) = match self {
            Code::MalformedRequest => ("ERR_MALFORMED_REQUEST", 400, G::InvalidArgument, None),
            Code::BodyRead => ("ERR_BODY_READ", 400, G::InvalidArgument, None),
            Code::BodyTooLarge => ("ERR_BODY_TOO_LARGE", 413, G::ResourceExhausted, None),
            Code::HeadersTooLarge => ("ERR_HEADERS_TOO_LARGE", 431, G::ResourceExhausted, None),
            Code::Unauthorized => ("ERR_UNAUTHORIZED", 401, G::Unauthenticated, None),
            Code::RouteNotFound => ("ERR_NOT_FOUND", 404, G::Unimplemented, None),
            Code::ApiUnimplemented => ("ERR_API_UNIMPLEMENTED", 501, G::Unimplemented, None),
            Code::Internal => ("ERR_INTERNAL", 500, G::Internal, None),

            Code::StateStoreNotConfigured => (
                "ERR_STATE_STORE_NOT_CONFIGURED",
                500,
                G::FailedPrecondition,
                Some("DAPR_STATE_NOT_CONFIGURED"),
            ),
            // Dapr answers 400 (not 404) for an unknown store.
            Code::StateStoreNotFound => (
                "ERR_STATE_STORE_NOT_FOUND",
                400,
                G::InvalidArgument,
                Some("DAPR_STATE_NOT_FOUND"),
            ),
            Code::StateIllegalKey => (
                "ERR_MALFORMED_REQUEST",
                400,
                G::InvalidArgument,
                Some("DAPR_STATE_ILLEGAL_KEY"),
            ),
            Code::StateGet => ("ERR_STATE_GET", 500, G::Internal, None),
            Code::StateSave => ("ERR_STATE_SAVE", 500, G::Internal, None),
            Code::StateSaveEtagMismatch => ("ERR_STATE_SAVE", 409, G::Aborted, None),
            Code::StateSaveEtagInvalid => ("ERR_STATE_SAVE", 400, G::InvalidArgument, None),
            Code::StateDelete => ("ERR_STATE_DELETE", 500, G::Internal, None),
            Code::StateDeleteEtagMismatch => ("ERR_STATE_DELETE", 409, G::Aborted, None),
            Code::StateDeleteEtagInvalid => ("ERR_STATE_DELETE", 400, G::InvalidArgument, None),
            Code::StateTransactionsNotSupported => (
                "ERR_STATE_STORE_NOT_SUPPORTED",
                500,
                G::Unimplemented,
                Some("DAPR_STATE_TRANSACTIONS_NOT_SUPPORTED"),
            ),
            Code::StateTransaction => ("ERR_STATE_TRANSACTION", 500, G::Internal, None),
            Code::StateOperationNotSupported => (
                "ERR_NOT_SUPPORTED_STATE_OPERATION",
                400,
                G::Unimplemented,
                None,
            ),
            // A kit error in Dapr (gRPC INTERNAL, unlike the transactions one).
            Code::StateQueryNotSupported => (
                "ERR_STATE_STORE_NOT_SUPPORTED",
                500,
                G::Internal,
                Some("DAPR_STATE_QUERYING_NOT_SUPPORTED"),
            ),
            Code::StateQuery => (
                "ERR_STATE_QUERY",
                500,
                G::Internal,
                Some("DAPR_STATE_QUERY_FAILED"),
            ),

            Code::LockStoreNotConfigured => (
                "ERR_LOCK_STORE_NOT_CONFIGURED",
                500,
                G::FailedPrecondition,
                None,
            ),
            Code::LockStoreNotFound => ("ERR_LOCK_STORE_NOT_FOUND", 400, G::InvalidArgument, None),
            Code::TryLock => ("ERR_TRY_LOCK", 500, G::Internal, None),
            Code::Unlock => ("ERR_UNLOCK", 500, G::Internal, None),

            Code::PubsubNotConfigured => (
                "ERR_PUBSUB_NOT_CONFIGURED",
                400,
                G::FailedPrecondition,
                Some("DAPR_PUBSUB_NOT_CONFIGURED"),
            ),
            Code::PubsubNotFound => (
                "ERR_PUBSUB_NOT_FOUND",
                404,
                G::InvalidArgument,
                Some("DAPR_PUBSUB_NOT_FOUND"),
            ),
            Code::PubsubNotReady => ("ERR_PUBSUB_NOT_CONFIGURED", 500, G::Unavailable, None),
            Code::TopicNameEmpty => (
                "ERR_TOPIC_NAME_EMPTY",
                404,
                G::InvalidArgument,
                Some("DAPR_PUBSUB_TOPIC_NAME_EMPTY"),
            ),
            Code::PubsubRequestMetadata => (
                "ERR_PUBSUB_REQUEST_METADATA",
                400,
                G::InvalidArgument,
                Some("DAPR_PUBSUB_METADATA_DESERIALIZATION"),
            ),
            Code::PubsubMarshalEnvelope => (
                "ERR_PUBSUB_EVENTS_SER",
                400,
                G::InvalidArgument,
                Some("DAPR_PUBSUB_MARSHAL_ENVELOPE"),
            ),
            Code::PubsubUnmarshalEvents => (
                "ERR_PUBSUB_EVENTS_SER",
                400,
                G::InvalidArgument,
                Some("DAPR_PUBSUB_UNMARSHAL_EVENTS"),
            ),
            Code::PubsubCloudEventsSer => ("ERR_PUBSUB_CLOUD_EVENTS_SER", 500, G::Internal, None),
            Code::PubsubPublishMessage => (
                "ERR_PUBSUB_PUBLISH_MESSAGE",
                500,
                G::Internal,
                Some("DAPR_PUBSUB_PUBLISH_MESSAGE"),
            ),

            Code::InvokeOutputBinding => ("ERR_INVOKE_OUTPUT_BINDING", 500, G::Internal, None),

            Code::SecretStoresNotConfigured => (
                "ERR_SECRET_STORES_NOT_CONFIGURED",
                500,
                G::FailedPrecondition,
                None,
            ),
            // Dapr really answers 401 here.
            Code::SecretStoreNotFound => {
                ("ERR_SECRET_STORE_NOT_FOUND", 401, G::InvalidArgument, None)
            }
            Code::SecretGet => ("ERR_SECRET_GET", 500, G::Internal, None),
            Code::SecretPermissionDenied => {
                ("ERR_PERMISSION_DENIED", 403, G::PermissionDenied, None)
            }

            Code::DirectInvoke => ("ERR_DIRECT_INVOKE", 500, G::Internal, None),
            Code::DirectInvokeNoAppId => ("ERR_DIRECT_INVOKE", 404, G::NotFound, None),
            Code::DirectInvokeBadMethod => ("ERR_DIRECT_INVOKE", 400, G::InvalidArgument, None),
            Code::InvokePermissionDenied => {
                ("ERR_PERMISSION_DENIED", 403, G::PermissionDenied, None)
            }

            Code::HealthAppIdNotMatch => ("ERR_HEALTH_APPID_NOT_MATCH", 500, G::Internal, None),
            Code::HealthNotReady => ("ERR_HEALTH_NOT_READY", 500, G::Unavailable, None),
            Code::OutboundHealthNotReady => {
                ("ERR_OUTBOUND_HEALTH_NOT_READY", 500, G::Unavailable, None)
            }
            Code::ActorRuntimeNotFound => ("ERR_ACTOR_RUNTIME_NOT_FOUND", 500, G::Internal, None),
            Code::ActorInstanceMissing => {
                ("ERR_ACTOR_INSTANCE_MISSING", 400, G::InvalidArgument, None)
            }
            Code::ActorInvokeMethod => ("ERR_ACTOR_INVOKE_METHOD", 500, G::Internal, None),
            Code::ActorStateGet => ("ERR_ACTOR_STATE_GET", 500, G::Internal, None),
            Code::ActorStateTransactionSave => {
                ("ERR_ACTOR_STATE_TRANSACTION_SAVE", 500, G::Internal, None)
            }
            Code::ActorReminderCreate => ("ERR_ACTOR_REMINDER_CREATE", 500, G::Internal, None),
            Code::ActorReminderGet => ("ERR_ACTOR_REMINDER_GET", 500, G::Internal, None),
            Code::ActorReminderDelete => ("ERR_ACTOR_REMINDER_DELETE", 500, G::Internal, None),
            Code::ActorReminderNotFound => ("ERR_ACTOR_REMINDER_NOT_FOUND", 404, G::NotFound, None),
            Code::ActorReminderAlreadyExists => {
                ("ERR_ACTOR_REMINDER_ALREADY_EXISTS", 409, G::Aborted, None)
            }
            Code::ActorReminderNonHosted => (
                "ERR_ACTOR_REMINDER_NON_HOSTED",
                403,
                G::PermissionDenied,
                None,
            ),
            Code::ActorTimerCreate => ("ERR_ACTOR_TIMER_CREATE", 500, G::Internal, None),
            Code::ActorStackDepth => ("ERR_ACTOR_STACK_DEPTH", 500, G::Internal, None),
            Code::ActorNoAddress => ("ERR_ACTOR_NO_ADDRESS", 404, G::NotFound, None),
            Code::ActorRuntimeClosed => ("ERR_ACTOR_RUNTIME_CLOSED", 503, G::Unavailable, None),
            Code::ActorBadRequest => ("ERR_BAD_REQUEST", 400, G::InvalidArgument, None),
            Code::ActorMoved => ("ERR_ACTOR_NO_ADDRESS", 503, G::Unavailable, None),
        };
        Spec {
            error_code,
            http,
            grpc,
            reason,
        }
    }

    /// Dapr's `errorCode`.
    pub const fn as_str(self) -> &'static str {
        self.spec().error_code
    }
}

/// A failure of a building block: what went wrong ([`Code`]) and a message for the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockError {
    pub code: Code,
    pub message: String,
    /// Metadata the failing component returned (an output binding's, for example); the HTTP
    /// front end sends it as `metadata.<key>` headers.
    pub metadata: BTreeMap<String, String>,
}

impl BlockError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        BlockError {
            code,
            message: message.into(),
            metadata: BTreeMap::new(),
        }
    }

    pub fn with_metadata(mut self, metadata: BTreeMap<String, String>) -> Self {
        self.metadata = metadata;
        self
    }

    /// A request body that is not the JSON the route expects.
    pub fn malformed(err: impl std::fmt::Display) -> Self {
        Self::new(
            Code::MalformedRequest,
            format!("failed deserializing HTTP body: {err}"),
        )
    }

    /// A body larger than `--max-body-size`.
    pub fn body_too_large(limit: u64) -> Self {
        Self::new(
            Code::BodyTooLarge,
            format!("request body exceeds the limit of {limit} bytes"),
        )
    }

    pub fn spec(&self) -> Spec {
        self.code.spec()
    }
}

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let spec = self.spec();
        write!(f, "{} ({}): {}", spec.error_code, spec.http, self.message)
    }
}

impl std::error::Error for BlockError {}

mod all;
#[cfg(test)]
mod tests;
