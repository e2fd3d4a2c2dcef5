//! `QueryStateAlpha1` through the `dapr` crate's generated client: rows saved over gRPC (bytes,
//! JSON or not) found by a query, the token paging them, daprd's empty answer, and errors as
//! status codes with an `ErrorInfo`.

use dapr::dapr::proto::common::v1::StateItem;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use serde_json::{Value, json};
use std::time::Duration;
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

async fn query(
    c: &mut Client,
    store: &str,
    q: &Value,
) -> Result<rt::QueryStateResponse, tonic::Status> {
    let req = rt::QueryStateRequest {
        store_name: store.into(),
        query: q.to_string(),
        metadata: Default::default(),
    };
    c.query_state_alpha1(req).await.map(|r| r.into_inner())
}

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

pub async fn scenario(s: &Sidecar) {
    let mut c = connect(s).await;
    let mut states: Vec<StateItem> = (0..5)
        .map(|i| StateItem {
            key: format!("g{i}"),
            value: json!({"kind": "grpc", "rank": 10 - i})
                .to_string()
                .into_bytes(),
            ..Default::default()
        })
        .collect();
    // Bytes that are not JSON take no part in queries.
    states.push(StateItem {
        key: "gbin".into(),
        value: b"\x00\x01 kind grpc".to_vec(),
        ..Default::default()
    });
    let save = rt::SaveStateRequest {
        store_name: "statestore".into(),
        states,
    };
    c.save_state(save).await.expect("save");

    let q = json!({"filter": {"EQ": {"kind": "grpc"}}, "sort": [{"key": "rank"}], "page": {"limit": 3}});
    let first = query(&mut c, "statestore", &q).await.expect("query");
    let keys = |r: &rt::QueryStateResponse| -> Vec<String> {
        r.results.iter().map(|i| i.key.clone()).collect()
    };
    assert_eq!(keys(&first), ["g4", "g3", "g2"]);
    assert_eq!(first.token, "3");
    let row = &first.results[0];
    let data: Value = serde_json::from_slice(&row.data).expect("JSON data");
    assert_eq!(data, json!({"kind": "grpc", "rank": 6}));
    assert!(!row.etag.is_empty() && row.error.is_empty());

    let mut next = q.clone();
    next["page"]["token"] = json!(first.token);
    let second = query(&mut c, "statestore", &next).await.expect("query");
    assert_eq!(
        (keys(&second), second.token.as_str()),
        (vec!["g1".into(), "g0".into()], "5")
    );
    next["page"]["token"] = json!(second.token);
    let done = query(&mut c, "statestore", &next).await.expect("query");
    assert_eq!(
        done,
        rt::QueryStateResponse::default(),
        "daprd's empty answer"
    );

    let none = query(
        &mut c,
        "statestore",
        &json!({"filter": {"EQ": {"kind": "none"}}}),
    )
    .await;
    assert_eq!(none.expect("query"), rt::QueryStateResponse::default());
    let bad = query(
        &mut c,
        "statestore",
        &json!({"filter": {"GT": {"rank": [1]}}}),
    )
    .await;
    assert_status(bad, Code::InvalidArgument, "ERR_MALFORMED_REQUEST");
    let unknown = query(&mut c, "nope", &json!({})).await;
    assert_status(unknown, Code::InvalidArgument, "DAPR_STATE_NOT_FOUND");
}

pub async fn not_supported(s: &Sidecar) {
    let mut c = connect(s).await;
    let answer = query(&mut c, "statestore", &json!({})).await;
    assert_status(answer, Code::Internal, "DAPR_STATE_QUERYING_NOT_SUPPORTED");
}
