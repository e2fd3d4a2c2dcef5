//! The table's own rules.

use super::*;

#[test]
fn every_code_is_a_dapr_code_with_an_error_status() {
    for code in Code::ALL {
        let spec = code.spec();
        assert!(spec.error_code.starts_with("ERR_"), "{code:?}");
        assert!((400..600).contains(&spec.http), "{code:?}");
        if let Some(reason) = spec.reason {
            assert!(reason.starts_with("DAPR_"), "{code:?}");
        }
    }
}

#[test]
fn dapr_quirks_are_in_the_table() {
    assert_eq!(Code::StateStoreNotFound.spec().http, 400);
    assert_eq!(Code::SecretStoreNotFound.spec().http, 401);
    assert_eq!(Code::TopicNameEmpty.spec().http, 404);
    assert_eq!(Code::StateSaveEtagMismatch.spec().http, 409);
    assert_eq!(Code::StateSaveEtagMismatch.spec().grpc, GrpcCode::Aborted);
    assert_eq!(
        Code::StateIllegalKey.spec().reason,
        Some("DAPR_STATE_ILLEGAL_KEY")
    );
    assert_eq!(Code::LockStoreNotConfigured.spec().http, 500);
    assert_eq!(Code::LockStoreNotFound.spec().http, 400);
    assert_eq!(
        Code::StateQueryNotSupported.spec().reason,
        Some("DAPR_STATE_QUERYING_NOT_SUPPORTED")
    );
}
