//! The gRPC API (`dapr.proto.runtime.v1.Dapr` on `--dapr-grpc-port`) against real sidecar
//! processes, driven by the `dapr` crate's generated client (`dapr_client::DaprClient`, the
//! stubs the Rust SDK uses): every served RPC, their errors (codes and `ErrorInfo`), the API
//! token, the message size limit, reflection (with the real `grpcurl` too), and state that reads
//! back byte for byte over HTTP.

mod blocks;
#[path = "../common/mod.rs"]
mod common;
mod errors;
mod grpcurl;
mod invoke;
mod proxy;
mod state;
mod subscribe_stream;

use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tandem_crds::Component;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tonic::transport::Channel;
use tonic_types::StatusExt;

pub const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

pub type Client = DaprClient<Channel>;

/// A client of the sidecar's gRPC port. Every listener is bound before the sidecar reports
/// healthy, so the first connect succeeds.
pub async fn connect(s: &Sidecar) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(s.grpc_endpoint())
        .expect("endpoint")
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", s.grpc_endpoint(), s.log()));
    DaprClient::new(channel)
}

/// Writes `components` into `dir/resources`, one file each.
pub fn resources(dir: &Path, components: &[Component]) -> PathBuf {
    let res = dir.join("resources");
    for (i, component) in components.iter().enumerate() {
        common::write_component(&res, &format!("c{i}.yaml"), &common::manifest(component));
    }
    res
}

/// `statestore` (in-memory), `pubsub` (in-memory), `secretstore` (env vars prefixed
/// `GRPCTEST_`) and `files` (local storage under `dir/files`).
pub fn everyday_components(dir: &Path) -> Vec<Component> {
    let files = dir.join("files");
    vec![
        Component::test("statestore", "state.in-memory"),
        Component::test("pubsub", "pubsub.in-memory"),
        Component::test("secretstore", "secretstores.local.env")
            .with_metadata("prefix", "GRPCTEST_"),
        Component::test("files", "bindings.localstorage")
            .with_metadata("rootPath", &files.to_string_lossy()),
    ]
}

/// A sidecar with [`everyday_components`].
pub fn everyday_sidecar(dir: &Path, app_id: &str) -> Sidecar {
    let res = resources(dir, &everyday_components(dir));
    SidecarBuilder::new(BIN, app_id, &dir.join("data"))
        .resources(&res)
        .env("GRPCTEST_DB", "s3cret")
        .start()
}

/// Asserts a failed call's code and `ErrorInfo` (domain `dapr.io`); returns its message.
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    reason: &str,
) -> String {
    let status = match result {
        Ok(answer) => panic!("expected {code:?} ({reason}), got {answer:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "dapr.io");
    status.message().to_owned()
}
