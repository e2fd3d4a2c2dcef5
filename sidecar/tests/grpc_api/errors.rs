//! Failures over gRPC: the table's codes with an `ErrorInfo` (reason, domain `dapr.io`) and the
//! component's name in the message; the API token; `--max-body-size`; RPCs Tandem does not
//! serve; and server reflection (behind the token, as in daprd).

use super::{
    BIN, Client, assert_status, connect, everyday_components, everyday_sidecar, resources,
};
use dapr::dapr::proto::common::v1::StateItem;
use dapr::dapr::proto::runtime::v1 as rt;
use std::time::{Duration, Instant};
use tandem_sidecar::testing::sidecar::SidecarBuilder;
use tonic::Code;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

fn get(store: &str, key: &str) -> rt::GetStateRequest {
    rt::GetStateRequest {
        store_name: store.into(),
        key: key.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_components_and_bad_input_answer_with_the_tables_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = everyday_sidecar(dir.path(), "grpc-errors");
    let mut c = connect(&s).await;

    let message = assert_status(
        c.get_state(get("nostore", "k")).await,
        Code::InvalidArgument,
        "DAPR_STATE_NOT_FOUND",
    );
    assert!(message.contains("nostore"), "{message}");
    let illegal = c.get_state(get("statestore", "a||b")).await;
    assert_status(illegal, Code::InvalidArgument, "DAPR_STATE_ILLEGAL_KEY");
    let no_key = c.get_state(get("statestore", "")).await;
    assert_status(no_key, Code::InvalidArgument, "ERR_MALFORMED_REQUEST");

    let publish = |pubsub: &str, topic: &str| rt::PublishEventRequest {
        pubsub_name: pubsub.into(),
        topic: topic.into(),
        data: b"{}".to_vec(),
        ..Default::default()
    };
    let message = assert_status(
        c.publish_event(publish("nobus", "t")).await,
        Code::InvalidArgument,
        "DAPR_PUBSUB_NOT_FOUND",
    );
    assert!(message.contains("nobus"), "{message}");
    let empty_topic = c.publish_event(publish("pubsub", "")).await;
    assert_status(
        empty_topic,
        Code::InvalidArgument,
        "DAPR_PUBSUB_TOPIC_NAME_EMPTY",
    );

    let secret = rt::GetSecretRequest {
        store_name: "novault".into(),
        key: "DB".into(),
        ..Default::default()
    };
    let message = assert_status(
        c.get_secret(secret).await,
        Code::InvalidArgument,
        "ERR_SECRET_STORE_NOT_FOUND",
    );
    assert!(message.contains("novault"), "{message}");

    let binding = rt::InvokeBindingRequest {
        name: "nobinding".into(),
        operation: "create".into(),
        ..Default::default()
    };
    let message = assert_status(
        c.invoke_binding(binding).await,
        Code::Internal,
        "ERR_INVOKE_OUTPUT_BINDING",
    );
    assert!(message.contains("nobinding"), "{message}");

    let tx = rt::ExecuteStateTransactionRequest {
        store_name: "statestore".into(),
        operations: vec![rt::TransactionalStateOperation {
            operation_type: "merge".into(),
            request: Some(StateItem {
                key: "k".into(),
                ..Default::default()
            }),
        }],
        ..Default::default()
    };
    let refused = c.execute_state_transaction(tx).await;
    assert_status(
        refused,
        Code::Unimplemented,
        "ERR_NOT_SUPPORTED_STATE_OPERATION",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpcs_tandem_does_not_serve_answer_unimplemented_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = everyday_sidecar(dir.path(), "grpc-unimplemented");
    let mut c = connect(&s).await;
    let started = Instant::now();
    let unary = c
        .get_configuration(rt::GetConfigurationRequest::default())
        .await;
    let status = unary.expect_err("not served");
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(
        status.message(),
        "GetConfiguration is not implemented by Tandem"
    );
    let crypto = c
        .subtle_get_key_alpha1(rt::SubtleGetKeyRequest::default())
        .await
        .expect_err("not served");
    assert_eq!(
        (crypto.code(), crypto.message()),
        (
            Code::Unimplemented,
            "SubtleGetKeyAlpha1 is not implemented by Tandem"
        )
    );
    let stream = c
        .subscribe_configuration(rt::SubscribeConfigurationRequest::default())
        .await;
    let status = stream.expect_err("not served");
    assert_eq!(
        status.message(),
        "SubscribeConfiguration is not implemented by Tandem"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert("dapr-api-token", token.parse().expect("ascii token"));
    req
}

/// One server reflection question and its answer.
async fn reflect(
    s: &tandem_sidecar::testing::sidecar::Sidecar,
    token: Option<&str>,
    question: MessageRequest,
) -> Result<MessageResponse, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(s.grpc_endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut r = ServerReflectionClient::new(channel);
    let ask = ServerReflectionRequest {
        message_request: Some(question),
        ..Default::default()
    };
    let mut req = tonic::Request::new(futures_util::stream::iter([ask]));
    if let Some(token) = token {
        req.metadata_mut()
            .insert("dapr-api-token", token.parse().expect("ascii token"));
    }
    let mut answers = r.server_reflection_info(req).await?.into_inner();
    let answer = answers.message().await?.expect("one answer");
    Ok(answer.message_response.expect("an answer"))
}

/// What `grpcurl list` shows.
async fn list_services(
    s: &tandem_sidecar::testing::sidecar::Sidecar,
    token: Option<&str>,
) -> Result<Vec<String>, tonic::Status> {
    match reflect(s, token, MessageRequest::ListServices(String::new())).await? {
        MessageResponse::ListServicesResponse(list) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => panic!("not a service list: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_token_guards_every_service_including_reflection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let res = resources(dir.path(), &everyday_components(dir.path()));
    let s = SidecarBuilder::new(BIN, "grpc-token", &dir.path().join("data"))
        .resources(&res)
        .env("DAPR_API_TOKEN", "grpc-secret")
        .start();
    let mut c: Client = connect(&s).await;
    let missing = c
        .get_state(get("statestore", "k"))
        .await
        .expect_err("no token");
    assert_eq!(
        (missing.code(), missing.message()),
        (
            Code::Unauthenticated,
            "missing api token in request metadata"
        )
    );
    let wrong = c
        .get_state(with_token(get("statestore", "k"), "grpc-secreT"))
        .await
        .expect_err("wrong");
    assert_eq!(
        (wrong.code(), wrong.message()),
        (
            Code::Unauthenticated,
            "authentication error: api token mismatch"
        )
    );
    let right = c
        .get_state(with_token(get("statestore", "k"), "grpc-secret"))
        .await;
    assert!(right.expect("right token").into_inner().data.is_empty());

    let refused = list_services(&s, None)
        .await
        .expect_err("reflection needs the token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let services = list_services(&s, Some("grpc-secret"))
        .await
        .expect("reflection");
    assert!(
        services.iter().any(|n| n == "dapr.proto.runtime.v1.Dapr"),
        "{services:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_are_resource_exhausted_and_reflection_describes_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let res = resources(dir.path(), &everyday_components(dir.path()));
    let s = SidecarBuilder::new(BIN, "grpc-limit", &dir.path().join("data"))
        .resources(&res)
        .arg("--max-body-size")
        .arg("1Ki")
        .start();
    let mut c = connect(&s).await;
    let save = |size: usize| rt::SaveStateRequest {
        store_name: "statestore".into(),
        states: vec![StateItem {
            key: "k".into(),
            value: vec![b'x'; size],
            ..Default::default()
        }],
    };
    c.save_state(save(512)).await.expect("under the limit");
    let refused = c.save_state(save(4096)).await;
    let message = assert_status(refused, Code::ResourceExhausted, "ERR_BODY_TOO_LARGE");
    // grpc-go's words, as daprd answers (SDKs show them; the JS SDK's tests compare them).
    assert!(
        message.starts_with("grpc: received message larger than max (")
            && message.ends_with(" vs. 1024)"),
        "{message}"
    );
    let kept = c
        .get_state(get("statestore", "k"))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(kept.data.len(), 512, "the refused save changed nothing");
    let services = list_services(&s, None)
        .await
        .expect("reflection without a token configured");
    assert!(
        services
            .iter()
            .any(|n| n == "grpc.reflection.v1.ServerReflection"),
        "{services:?}"
    );
    // What `grpcurl describe` needs: the file that defines the service, and its dependencies.
    let symbol = MessageRequest::FileContainingSymbol("dapr.proto.runtime.v1.Dapr".into());
    let files = match reflect(&s, None, symbol).await.expect("describe") {
        MessageResponse::FileDescriptorResponse(files) => files.file_descriptor_proto,
        other => panic!("not file descriptors: {other:?}"),
    };
    let text: Vec<String> = files
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    assert!(
        text.iter()
            .any(|f| f.contains("dapr/proto/runtime/v1/dapr.proto") && f.contains("GetState")),
        "{} files",
        files.len()
    );
}
