//! `TryLockAlpha1` and `UnlockAlpha1` through the `dapr` crate's generated client: the same
//! answers as over HTTP, errors as daprd's status codes with an `ErrorInfo`, and one lock seen
//! by both front ends.

use super::{redis_lock, sidecar, try_lock, unlock};
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use std::time::Duration;
use tandem_crds::Component;
use tandem_sidecar::testing::RedisServer;
use tandem_sidecar::testing::sidecar::Sidecar;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

type Client = DaprClient<Channel>;

async fn connect(s: &Sidecar) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(s.grpc_endpoint())
        .expect("endpoint")
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", s.grpc_endpoint(), s.log()));
    DaprClient::new(channel)
}

fn lock_req(store: &str, resource: &str, owner: &str, secs: i32) -> rt::TryLockRequest {
    rt::TryLockRequest {
        store_name: store.into(),
        resource_id: resource.into(),
        lock_owner: owner.into(),
        expiry_in_seconds: secs,
    }
}

fn unlock_req(store: &str, resource: &str, owner: &str) -> rt::UnlockRequest {
    rt::UnlockRequest {
        store_name: store.into(),
        resource_id: resource.into(),
        lock_owner: owner.into(),
    }
}

async fn grpc_lock(c: &mut Client, store: &str, resource: &str, owner: &str) -> bool {
    let answer = c
        .try_lock_alpha1(lock_req(store, resource, owner, 60))
        .await;
    answer.expect("try lock").into_inner().success
}

async fn grpc_unlock(c: &mut Client, store: &str, resource: &str, owner: &str) -> i32 {
    let answer = c.unlock_alpha1(unlock_req(store, resource, owner)).await;
    answer.expect("unlock").into_inner().status
}

/// A failed call's code and `ErrorInfo` reason (Dapr's errorCode for these legacy errors).
fn assert_status<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, reason: &str) {
    let status = match result {
        Ok(answer) => panic!("expected {code:?} ({reason}), got {answer:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        (reason, "dapr.io")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_lock_and_unlock_over_grpc() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sidecar(
        dir.path(),
        "grpclock",
        &[
            redis_lock("redislock", &redis),
            Component::test("memlock", "lock.in-memory"),
        ],
    );
    let mut c = connect(&s).await;
    for store in ["redislock", "memlock"] {
        assert!(grpc_lock(&mut c, store, "order-1", "alice").await);
        assert!(!grpc_lock(&mut c, store, "order-1", "bob").await);
        assert_eq!(grpc_unlock(&mut c, store, "order-1", "bob").await, 2);
        assert_eq!(grpc_unlock(&mut c, store, "order-1", "alice").await, 0);
        assert_eq!(grpc_unlock(&mut c, store, "order-1", "alice").await, 1);

        // One lock, two front ends.
        assert!(grpc_lock(&mut c, store, "shared", "alice").await);
        assert!(!try_lock(&s, store, "shared", "bob", 60).await);
        assert_eq!(unlock(&s, store, "shared", "alice").await, 0);

        for bad in [
            lock_req(store, "", "o", 10),
            lock_req(store, "r", "", 10),
            lock_req(store, "r", "o", 0),
        ] {
            let answer = c.try_lock_alpha1(bad).await;
            assert_status(answer, Code::InvalidArgument, "ERR_MALFORMED_REQUEST");
        }
        let answer = c.unlock_alpha1(unlock_req(store, "r", "")).await;
        assert_status(answer, Code::InvalidArgument, "ERR_MALFORMED_REQUEST");
        let answer = c.try_lock_alpha1(lock_req(store, "a||b", "o", 10)).await;
        assert_status(answer, Code::Internal, "ERR_TRY_LOCK");
        let answer = c.unlock_alpha1(unlock_req(store, "a||b", "o")).await;
        assert_status(answer, Code::Internal, "ERR_UNLOCK");
    }
    let answer = c.try_lock_alpha1(lock_req("nope", "r", "o", 10)).await;
    assert_status(answer, Code::InvalidArgument, "ERR_LOCK_STORE_NOT_FOUND");
    let answer = c.unlock_alpha1(unlock_req("nope", "r", "o")).await;
    assert_status(answer, Code::InvalidArgument, "ERR_LOCK_STORE_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_lock_store_grpc_is_failed_precondition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sidecar(
        dir.path(),
        "grpcnolocks",
        &[Component::test("statestore", "state.in-memory")],
    );
    let mut c = connect(&s).await;
    let answer = c.try_lock_alpha1(lock_req("any", "r", "o", 10)).await;
    assert_status(
        answer,
        Code::FailedPrecondition,
        "ERR_LOCK_STORE_NOT_CONFIGURED",
    );
    let answer = c.unlock_alpha1(unlock_req("any", "r", "o")).await;
    assert_status(
        answer,
        Code::FailedPrecondition,
        "ERR_LOCK_STORE_NOT_CONFIGURED",
    );
}
