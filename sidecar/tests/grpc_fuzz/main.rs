//! Bad input on the gRPC port (reliability T3 for the gRPC front end): 10 000 seeded bad calls
//! (`generate`) over HTTP/2, then raw HTTP/2 frame garbage (`frames`). Every call must end in a
//! gRPC status (`grpc-status` in the trailers, or a trailers-only answer) within a deadline; no handler
//! may panic; the process stays up, healthy and within a memory bound, and a valid call works
//! afterwards.

#[path = "../common/mod.rs"]
mod common;
mod frames;
mod generate;

use bytes::Bytes;
use generate::Call;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");
const SEED: u64 = 0x7A4D_0014;
const CALLS: usize = 10_000;
/// Calls in flight at once on one connection.
const PARALLEL: usize = 16;
/// Longer than any answer may take; a streaming RPC that a bad call happens to open validly is
/// closed by the client at this point, as any client may.
const DEADLINE: Duration = Duration::from_secs(5);

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ending {
    /// A gRPC status, with its code.
    Status(u32),
    /// The stream was reset or refused at the HTTP/2 level.
    Refused(String),
    /// An answer without `grpc-status`: not gRPC.
    NoStatus(u16),
    /// Nothing within the deadline.
    Silent,
}

fn grpc_status(headers: &http::HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn connect(port: u16) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the gRPC port");
    let (client, connection) = h2::client::Builder::new()
        .max_header_list_size(1 << 20)
        .handshake(tcp)
        .await
        .expect("h2 handshake");
    tokio::spawn(connection);
    client
}

async fn exchange(client: h2::client::SendRequest<Bytes>, port: u16, call: &Call) -> Ending {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://127.0.0.1:{port}{}", call.path))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in &call.metadata {
        request = request.header(name.as_str(), value.as_slice());
    }
    let Ok(request) = request.body(()) else {
        // A header the client library itself refuses never leaves: not a server question.
        return Ending::Status(u32::MAX);
    };
    let mut client = match client.ready().await {
        Ok(client) => client,
        Err(e) => return Ending::Refused(format!("connection: {e}")),
    };
    let (answer, mut body) = match client.send_request(request, false) {
        Ok(pair) => pair,
        Err(e) => return Ending::Refused(format!("send: {e}")),
    };
    let _ = body.send_data(Bytes::from(call.body.clone()), true);
    let read = async {
        let response = match answer.await {
            Ok(response) => response,
            Err(e) => return Ending::Refused(e.to_string()),
        };
        let status = response.status().as_u16();
        if let Some(code) = grpc_status(response.headers()) {
            return Ending::Status(code);
        }
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            match chunk {
                Ok(chunk) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
                Err(e) => return Ending::Refused(e.to_string()),
            }
        }
        match body.trailers().await {
            Ok(Some(trailers)) => {
                grpc_status(&trailers).map_or(Ending::NoStatus(status), Ending::Status)
            }
            Ok(None) => Ending::NoStatus(status),
            Err(e) => Ending::Refused(e.to_string()),
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .unwrap_or(Ending::Silent)
}

/// Whether `ending` is an acceptable answer to `call`.
fn acceptable(call: &Call, ending: &Ending) -> bool {
    match ending {
        Ending::Status(_) => true,
        // Over the server's header-list limit (128 KiB): HTTP/2 refuses the stream itself.
        Ending::Refused(_) => {
            call.label == "300 metadata entries" || call.label == "32 KiB metadata value"
        }
        // A streaming subscription opened by a call that happens to decode validly stays open
        // until the client closes it; nothing else may be silent.
        Ending::Silent => call.path.ends_with("SubscribeTopicEventsAlpha1"),
        Ending::NoStatus(_) => false,
    }
}

async fn start(dir: &std::path::Path) -> Sidecar {
    let resources = dir.join("resources");
    common::write_component(
        &resources,
        "components.yaml",
        common::components::STATE_AND_SECRETS,
    );
    let s = SidecarBuilder::new(BIN, "grpc-fuzz", &dir.join("data"))
        .resources(&resources)
        .start();
    s.wait_ready(Duration::from_secs(30));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_bad_grpc_calls_get_statuses_and_nothing_breaks() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = start(dir.path()).await;
    let port = s.grpc_port;
    let baseline_kib = common::rss_kib(s.pid()).expect("the sidecar's VmRSS");
    let mut rng = StdRng::seed_from_u64(SEED);
    let calls: Vec<Call> = (0..CALLS).map(|_| generate::call(&mut rng)).collect();

    let mut endings: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut client = connect(port).await;
    for chunk in calls.chunks(PARALLEL) {
        let answers = futures_util::future::join_all(
            chunk
                .iter()
                .map(|call| exchange(client.clone(), port, call)),
        )
        .await;
        let mut connection_lost = false;
        for (call, ending) in chunk.iter().zip(answers) {
            connection_lost |= matches!(&ending, Ending::Refused(e) if e.starts_with("connection"));
            let kind = match &ending {
                Ending::Status(code) => format!("status {code}"),
                Ending::Refused(_) => "refused".to_owned(),
                Ending::NoStatus(http) => format!("no grpc-status (HTTP {http})"),
                Ending::Silent => "silent".to_owned(),
            };
            *endings.entry((call.label, kind)).or_insert(0) += 1;
            if !acceptable(call, &ending) && wrong.len() < 20 {
                wrong.push(format!("{} {} → {ending:?}", call.label, call.path));
            }
        }
        // A connection the server closed (GOAWAY) is replaced, as a client would.
        if connection_lost {
            client = connect(port).await;
        }
    }
    if let Ok(Some(exit)) = s.child.try_wait() {
        panic!("the sidecar died during the bad calls: {exit}\n{}", s.log());
    }

    let garbage = frames::run_all(port).await;
    if let Ok(Some(exit)) = s.child.try_wait() {
        panic!("the sidecar died on frame garbage: {exit}\n{}", s.log());
    }

    // A valid call still works, over a fresh connection.
    let channel = tonic::transport::Endpoint::from_shared(s.grpc_endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut dapr = dapr::dapr::proto::runtime::v1::dapr_client::DaprClient::new(channel);
    let metadata = dapr
        .get_metadata(dapr::dapr::proto::runtime::v1::GetMetadataRequest::default())
        .await
        .expect("GetMetadata after the fuzzing")
        .into_inner();
    assert_eq!(metadata.id, "grpc-fuzz");
    let final_kib = common::rss_kib(s.pid()).expect("the sidecar's VmRSS");
    let log = s.log();

    println!("T3 gRPC: {CALLS} bad calls in {:?}", started.elapsed());
    for ((label, kind), n) in &endings {
        println!("  {label:40} {kind:28} {n}");
    }
    for (label, outcome) in &garbage {
        println!("  frames: {label:40} {outcome}");
    }
    println!("T3 gRPC RSS: {baseline_kib} KiB at start, {final_kib} KiB at the end");
    assert!(
        wrong.is_empty(),
        "calls without a gRPC status:\n{}",
        wrong.join("\n")
    );
    assert!(!log.contains("panicked"), "a handler panicked:\n{log}");
    assert!(final_kib < 100 * 1024, "RSS {final_kib} KiB after the run");
    assert_eq!(endings.values().sum::<usize>(), CALLS);
}
