//! The actor RPCs of the gRPC API, driven by the `dapr` crate's generated client (the stubs
//! the Rust and Go SDKs call): an actor hosted behind one sidecar invoked through another,
//! state written as raw bytes and read back over both APIs, reminders and timers with gRPC
//! `data` delivered as daprd delivers it, and the errors as statuses with `ErrorInfo`.

use super::{BIN, CONFIG, call, host, wait_until};
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tandem_sidecar::testing::actor_app::ActorLog;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tonic::transport::Channel;
use tonic_types::StatusExt;

async fn connect(s: &Sidecar) -> DaprClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(s.grpc_endpoint())
        .expect("endpoint")
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", s.grpc_endpoint(), s.log()));
    DaprClient::new(channel)
}

/// A failed call's code and `ErrorInfo` reason.
fn failure<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (tonic::Code, String) {
    let status = result.expect_err("the call fails");
    let reason = status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default();
    (status.code(), reason)
}

fn invoke(actor_id: &str, method: &str, data: &[u8]) -> rt::InvokeActorRequest {
    rt::InvokeActorRequest {
        actor_type: "Counter".into(),
        actor_id: actor_id.into(),
        method: method.into(),
        data: data.to_vec(),
        metadata: HashMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actor_rpcs_over_grpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(ActorLog::default());
    let h = host(dir.path(), "h1", CONFIG, &log).await;
    let caller = SidecarBuilder::new(BIN, "caller", dir.path()).start();
    caller.wait_ready(Duration::from_secs(30));
    let mut remote = connect(&caller).await;
    let mut local = connect(&h.sidecar).await;

    // Invocation through a sidecar that hosts nothing: forwarded to the host, in order.
    for want in 1..=3 {
        let r = remote
            .invoke_actor(invoke("g1", "increment", b""))
            .await
            .expect("invoke")
            .into_inner();
        assert_eq!(r.data, want.to_string().into_bytes());
    }
    let echoed = remote
        .invoke_actor(invoke("g1", "echo", b"\x00bytes\xff"))
        .await
        .expect("echo")
        .into_inner();
    assert_eq!(echoed.data, b"\x00bytes\xff");
    // The method's own error (X-DaprErrorResponseHeader) is an answer; others are statuses.
    let own = remote
        .invoke_actor(invoke("g1", "actor-error", b""))
        .await
        .expect("an actor error is an answer")
        .into_inner();
    assert_eq!(own.data, b"an actor error");
    assert_eq!(
        failure(remote.invoke_actor(invoke("g1", "nope", b"")).await),
        (tonic::Code::Internal, "ERR_ACTOR_INVOKE_METHOD".into())
    );
    assert_eq!(
        failure(remote.invoke_actor(invoke("g1", "fail", b"")).await),
        (tonic::Code::Internal, "ERR_ACTOR_INVOKE_METHOD".into())
    );

    // State: the counter's own write reads back; raw bytes written over gRPC read back as
    // they are over both APIs; a transaction for an inactive actor is refused.
    let count = local
        .get_actor_state(rt::GetActorStateRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            key: "count".into(),
        })
        .await
        .expect("state")
        .into_inner();
    assert_eq!(count.data, b"3");
    let raw = vec![0u8, 1, 2, 0xfe, 0xff];
    local
        .execute_actor_state_transaction(rt::ExecuteActorStateTransactionRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            operations: vec![rt::TransactionalActorStateOperation {
                operation_type: "upsert".into(),
                key: "raw".into(),
                value: Some(prost_types::Any {
                    type_url: String::new(),
                    value: raw.clone(),
                }),
                metadata: HashMap::new(),
            }],
        })
        .await
        .expect("transaction");
    let read = local
        .get_actor_state(rt::GetActorStateRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            key: "raw".into(),
        })
        .await
        .expect("state")
        .into_inner();
    assert_eq!(read.data, raw);
    let over_http = tandem_sidecar::http_client::builder()
        .build()
        .expect("client")
        .get(h.sidecar.url("/v1.0/actors/Counter/g1/state/raw"))
        .send()
        .await
        .expect("http get");
    assert_eq!(over_http.bytes().await.expect("body").to_vec(), raw);
    assert_eq!(
        failure(
            local
                .execute_actor_state_transaction(rt::ExecuteActorStateTransactionRequest {
                    actor_type: "Counter".into(),
                    actor_id: "never-active".into(),
                    operations: vec![],
                })
                .await
        ),
        (
            tonic::Code::InvalidArgument,
            "ERR_ACTOR_INSTANCE_MISSING".into()
        )
    );

    // Reminders: gRPC bytes reach the callback as daprd sends them (base64 in a JSON string).
    let reminder = |name: &str, overwrite: Option<bool>| rt::RegisterActorReminderRequest {
        actor_type: "Counter".into(),
        actor_id: "g1".into(),
        name: name.into(),
        due_time: "1h".into(),
        period: String::new(),
        data: b"hello".to_vec(),
        ttl: String::new(),
        overwrite,
        failure_policy: None,
    };
    local
        .register_actor_reminder(reminder("later", None))
        .await
        .expect("register");
    assert_eq!(
        failure(
            local
                .register_actor_reminder(reminder("later", Some(false)))
                .await
        ),
        (
            tonic::Code::Aborted,
            "ERR_ACTOR_REMINDER_ALREADY_EXISTS".into()
        )
    );
    let got = local
        .get_actor_reminder(rt::GetActorReminderRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            name: "later".into(),
        })
        .await
        .expect("get reminder")
        .into_inner();
    assert_eq!(got.due_time.as_deref(), Some("1h"));
    let data: Vec<u8> = got.data.expect("data").to_msg().expect("a BytesValue");
    assert_eq!(data, br#""aGVsbG8=""#);
    // Over HTTP the same reminder shows the same data.
    let (status, body) = call(
        &h.sidecar,
        reqwest::Method::GET,
        "/v1.0/actors/Counter/g1/reminders/later",
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""data":"aGVsbG8=""#), "{body}");
    let mut now = reminder("now", None);
    now.due_time = "0s".into();
    remote
        .register_actor_reminder(now.clone())
        .await
        .map(|_| ())
        .expect_err("only a hosting app registers reminders");
    local.register_actor_reminder(now).await.expect("register");
    wait_until(Duration::from_secs(10), || log.reminder_count("now") == 1).await;
    let fired = log
        .reminders
        .lock()
        .expect("log")
        .iter()
        .find(|(_, name, _)| name == "now")
        .map(|(_, _, body)| body.clone())
        .expect("fired");
    let fired: serde_json::Value = serde_json::from_str(&fired).expect("callback body");
    assert_eq!(fired["data"], "aGVsbG8=");

    // The record of a one-shot reminder is deleted right after its callback returns: poll.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = local
            .list_actor_reminders(rt::ListActorRemindersRequest {
                actor_type: "Counter".into(),
                actor_id: Some("g1".into()),
            })
            .await
            .expect("list")
            .into_inner();
        let names: Vec<String> = listed.reminders.into_iter().map(|r| r.name).collect();
        if names == ["later"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the one-shot reminder is gone after firing: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    local
        .register_actor_reminder(rt::RegisterActorReminderRequest {
            actor_id: "g2".into(),
            ..reminder("other", None)
        })
        .await
        .expect("register");
    let all = local
        .list_actor_reminders(rt::ListActorRemindersRequest {
            actor_type: "Counter".into(),
            actor_id: None,
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(all.reminders.len(), 2, "{all:?}");
    local
        .unregister_actor_reminders_by_type(rt::UnregisterActorRemindersByTypeRequest {
            actor_type: "Counter".into(),
            actor_id: None,
        })
        .await
        .expect("unregister by type");
    assert_eq!(
        failure(
            local
                .get_actor_reminder(rt::GetActorReminderRequest {
                    actor_type: "Counter".into(),
                    actor_id: "g2".into(),
                    name: "other".into(),
                })
                .await
        ),
        (tonic::Code::NotFound, "ERR_ACTOR_REMINDER_NOT_FOUND".into())
    );

    // Timers: registered through the sidecar that hosts nothing, run on the host.
    remote
        .register_actor_timer(rt::RegisterActorTimerRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            name: "tick".into(),
            due_time: "0s".into(),
            period: "100ms".into(),
            callback: String::new(),
            data: vec![],
            ttl: String::new(),
        })
        .await
        .expect("timer");
    let ticks = || {
        log.timers
            .lock()
            .expect("log")
            .iter()
            .filter(|(id, name)| id == "g1" && name == "tick")
            .count()
    };
    wait_until(Duration::from_secs(10), || ticks() >= 2).await;
    remote
        .unregister_actor_timer(rt::UnregisterActorTimerRequest {
            actor_type: "Counter".into(),
            actor_id: "g1".into(),
            name: "tick".into(),
        })
        .await
        .expect("stop timer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = ticks();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ticks(), stopped, "the timer stopped");
    assert_eq!(
        failure(
            local
                .register_actor_timer(rt::RegisterActorTimerRequest {
                    actor_type: "Counter".into(),
                    actor_id: "g1".into(),
                    name: "bad".into(),
                    due_time: "soon".into(),
                    ..Default::default()
                })
                .await
        ),
        (tonic::Code::InvalidArgument, "ERR_BAD_REQUEST".into())
    );
}
