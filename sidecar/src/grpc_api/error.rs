//! Where a [`BlockError`] becomes a gRPC status, as daprd sends it: the code from the one table
//! ([`crate::blocks::error::Code::spec`]), the block's message, and a `google.rpc.Status` in
//! `grpc-status-details-bin` holding an `ErrorInfo` (reason = Dapr's ErrorInfo reason, else its
//! `errorCode`; domain `dapr.io`; the failing component's metadata). The details carry the same
//! code and message as the status: grpcio's `rpc_status.from_call` (what the Python SDK uses)
//! refuses details that differ.

use crate::blocks::error::BlockError;
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo` domain of every Dapr error.
pub const ERROR_INFO_DOMAIN: &str = "dapr.io";

/// A status with an `ErrorInfo` detail.
pub fn status_with_error_info(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    metadata: HashMap<String, String>,
) -> Status {
    let details = ErrorDetails::with_error_info(reason, ERROR_INFO_DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

impl From<BlockError> for Status {
    fn from(err: BlockError) -> Status {
        let spec = err.spec();
        status_with_error_info(
            Code::from(spec.grpc as i32),
            err.message,
            spec.reason.unwrap_or(spec.error_code),
            err.metadata.into_iter().collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::error::Code as BlockCode;
    use std::collections::BTreeMap;

    #[test]
    fn kit_errors_keep_their_reason_and_legacy_errors_use_the_error_code() {
        let status = Status::from(BlockError::new(
            BlockCode::StateStoreNotFound,
            "state store nope is not found",
        ));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "state store nope is not found");
        let info = status.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(info.reason, "DAPR_STATE_NOT_FOUND");
        assert_eq!(info.domain, "dapr.io");

        let legacy = Status::from(BlockError::new(BlockCode::StateSaveEtagMismatch, "etag"));
        assert_eq!(legacy.code(), Code::Aborted);
        let info = legacy.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(info.reason, "ERR_STATE_SAVE");
    }

    #[test]
    fn component_metadata_travels_in_the_error_info() {
        let mut md = BTreeMap::new();
        md.insert("statusCode".to_owned(), "404".to_owned());
        let status = Status::from(
            BlockError::new(BlockCode::InvokeOutputBinding, "failed").with_metadata(md),
        );
        assert_eq!(status.code(), Code::Internal);
        let info = status.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(info.metadata["statusCode"], "404");
    }

    #[test]
    fn every_table_code_is_a_grpc_code() {
        for (block, grpc) in [
            (BlockCode::Unauthorized, Code::Unauthenticated),
            (BlockCode::BodyTooLarge, Code::ResourceExhausted),
            (BlockCode::SecretPermissionDenied, Code::PermissionDenied),
            (BlockCode::PubsubNotReady, Code::Unavailable),
            (BlockCode::DirectInvokeNoAppId, Code::NotFound),
            (BlockCode::StateStoreNotConfigured, Code::FailedPrecondition),
            (
                BlockCode::StateTransactionsNotSupported,
                Code::Unimplemented,
            ),
        ] {
            assert_eq!(Status::from(BlockError::new(block, "x")).code(), grpc);
        }
    }
}
