//! `SubscribeTopicEventsAlpha1` over a durable broker (Redis Streams): events a streaming
//! subscriber received but never answered before its stream closed are not lost: they go back
//! to the broker and reach the next subscriber, and the one it answered is not sent again.
//! An open stream is listed in the metadata (HTTP and gRPC) with type `STREAMING`, as daprd
//! lists it, and unlisted when it closes.

use super::{BIN, connect, resources};
use dapr::dapr::proto::runtime::v1 as rt;
use rt::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as Incoming;
use rt::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Outgoing;
use std::collections::BTreeSet;
use std::time::Duration;
use tandem_crds::Component;
use tandem_sidecar::testing::RedisServer;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tokio::sync::mpsc;
use tonic::Streaming;

type Answers = mpsc::Sender<rt::SubscribeTopicEventsRequestAlpha1>;

/// Opens a stream on `orders` and waits for the initial response.
async fn open(
    client: &mut super::Client,
) -> (Answers, Streaming<rt::SubscribeTopicEventsResponseAlpha1>) {
    let (answers, outgoing) = mpsc::channel(16);
    answers
        .send(rt::SubscribeTopicEventsRequestAlpha1 {
            subscribe_topic_events_request_type: Some(Incoming::InitialRequest(
                rt::SubscribeTopicEventsRequestInitialAlpha1 {
                    pubsub_name: "pubsub".into(),
                    topic: "orders".into(),
                    ..Default::default()
                },
            )),
        })
        .await
        .expect("queue the initial request");
    let outgoing = futures_util::stream::unfold(outgoing, |mut rx| async move {
        rx.recv().await.map(|m| (m, rx))
    });
    let mut events = client
        .subscribe_topic_events_alpha1(outgoing)
        .await
        .expect("subscribe")
        .into_inner();
    let first = events
        .message()
        .await
        .expect("initial response")
        .expect("a message");
    assert!(matches!(
        first.subscribe_topic_events_response_type,
        Some(Outgoing::InitialResponse(_))
    ));
    (answers, events)
}

/// The next event's id and data, within `wait`.
async fn next_event(
    events: &mut Streaming<rt::SubscribeTopicEventsResponseAlpha1>,
    wait: Duration,
) -> Option<(String, String)> {
    let message = tokio::time::timeout(wait, events.message()).await.ok()?;
    match message
        .expect("stream healthy")?
        .subscribe_topic_events_response_type
    {
        Some(Outgoing::EventMessage(event)) => {
            Some((event.id, String::from_utf8(event.data).expect("utf-8 data")))
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

fn success(id: &str) -> rt::SubscribeTopicEventsRequestAlpha1 {
    rt::SubscribeTopicEventsRequestAlpha1 {
        subscribe_topic_events_request_type: Some(Incoming::EventProcessed(
            rt::SubscribeTopicEventsRequestProcessedAlpha1 {
                id: id.to_owned(),
                status: Some(rt::TopicEventResponse { status: 0 }),
            },
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_events_outlive_their_stream() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pubsub = Component::test("pubsub", "pubsub.redis")
        .with_metadata("redisHost", &redis.addr())
        .with_metadata("processingTimeout", "1s")
        .with_metadata("redeliverInterval", "300ms");
    let sc = SidecarBuilder::new(BIN, "stream-durable", &dir.path().join("data"))
        .resources(&resources(dir.path(), &[pubsub]))
        .start();
    sc.wait_ready(Duration::from_secs(30));
    let mut client = connect(&sc).await;
    let (answers, mut events) = open(&mut client).await;

    let http = tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    for n in 0..3 {
        let r = http
            .post(sc.url("/v1.0/publish/pubsub/orders"))
            .json(&serde_json::json!({"n": n}))
            .send()
            .await
            .expect("publish");
        assert_eq!(r.status().as_u16(), 204);
    }
    let mut received = Vec::new();
    while received.len() < 3 {
        let event = next_event(&mut events, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("only {received:?} arrived\n{}", sc.log()));
        received.push(event);
    }
    // The first is answered; the other two are held when the stream goes away.
    let (answered_id, answered_data) = received[0].clone();
    answers.send(success(&answered_id)).await.expect("answer");
    // A fourth event arrives on this stream and is held too.
    let r = http
        .post(sc.url("/v1.0/publish/pubsub/orders"))
        .json(&serde_json::json!({"n": 3}))
        .send()
        .await
        .expect("publish");
    assert_eq!(r.status().as_u16(), 204);
    let fourth = next_event(&mut events, Duration::from_secs(15))
        .await
        .expect("the fourth event");
    drop(answers);
    drop(events);

    let held: BTreeSet<String> = received[1..]
        .iter()
        .map(|(id, _)| id.clone())
        .chain([fourth.0.clone()])
        .collect();
    let (answers, mut events) = open(&mut client).await;
    let mut again = BTreeSet::new();
    while again.len() < held.len() {
        let (id, data) = next_event(&mut events, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("redelivered only {again:?} of {held:?}\n{}", sc.log()));
        assert_ne!(data, answered_data, "the answered event came back");
        answers.send(success(&id)).await.expect("answer");
        again.insert(id);
    }
    assert_eq!(again, held);
    // Settled now: nothing more comes (redelivery runs every 300 ms after a 1 s timeout).
    assert_eq!(next_event(&mut events, Duration::from_secs(3)).await, None);
}

/// The `STREAMING` entries of `/v1.0/metadata` `subscriptions`.
async fn streaming_entries(http: &reqwest::Client, sc: &Sidecar) -> Vec<serde_json::Value> {
    let document: serde_json::Value = http
        .get(sc.url("/v1.0/metadata"))
        .send()
        .await
        .expect("GET /v1.0/metadata")
        .json()
        .await
        .expect("a JSON document");
    let subscriptions = document["subscriptions"]
        .as_array()
        .expect("a subscriptions list");
    subscriptions
        .iter()
        .filter(|s| s["type"] == "STREAMING")
        .cloned()
        .collect()
}

/// Polls until the metadata lists `count` streaming subscriptions; returns them.
async fn wait_streaming(
    http: &reqwest::Client,
    sc: &Sidecar,
    count: usize,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let entries = streaming_entries(http, sc).await;
        if entries.len() == count {
            return entries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {count} streaming subscriptions, the metadata lists {entries:?}\n{}",
            sc.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_is_listed_as_streaming_until_it_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sc = super::everyday_sidecar(dir.path(), "stream-listed");
    sc.wait_ready(Duration::from_secs(30));
    let http = tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    assert_eq!(
        streaming_entries(&http, &sc).await,
        Vec::<serde_json::Value>::new()
    );
    let mut client = connect(&sc).await;
    let (answers, events) = open(&mut client).await;

    let entries = wait_streaming(&http, &sc, 1).await;
    assert_eq!(entries[0]["pubsubname"], "pubsub");
    assert_eq!(entries[0]["topic"], "orders");
    assert_eq!(
        entries[0]["rules"],
        serde_json::json!([{"match": "", "path": "/"}])
    );
    let typed = client
        .get_metadata(rt::GetMetadataRequest::default())
        .await
        .expect("GetMetadata")
        .into_inner();
    let streaming: Vec<&rt::PubsubSubscription> = typed
        .subscriptions
        .iter()
        .filter(|s| s.r#type == rt::PubsubSubscriptionType::Streaming as i32)
        .collect();
    assert_eq!(streaming.len(), 1, "{:?}", typed.subscriptions);
    assert_eq!(
        (
            streaming[0].pubsub_name.as_str(),
            streaming[0].topic.as_str()
        ),
        ("pubsub", "orders")
    );

    // A second stream on the same topic is a second entry.
    let (second_answers, second_events) = open(&mut client).await;
    wait_streaming(&http, &sc, 2).await;
    drop(second_answers);
    drop(second_events);
    wait_streaming(&http, &sc, 1).await;
    drop(answers);
    drop(events);
    wait_streaming(&http, &sc, 0).await;
}
