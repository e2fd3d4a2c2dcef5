//! Seeded bad gRPC calls: the RPC, the metadata and the body bytes, each chosen to be wrong in
//! one way — bytes that are no gRPC frame, frames whose message is garbage or of another type,
//! lengths that lie (huge or short), a compressed flag with no encoding, several messages on a
//! unary call, unknown fields, and abusive metadata (oversized, numerous, invalid timeouts,
//! undecodable binary values, odd app ids for the proxy).

use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use prost::Message;
use rand::Rng;
use rand::rngs::StdRng;

/// RPCs of the Dapr service, an unknown one, and another service (which `dapr-app-id` proxies).
pub const PATHS: &[&str] = &[
    "/dapr.proto.runtime.v1.Dapr/GetState",
    "/dapr.proto.runtime.v1.Dapr/SaveState",
    "/dapr.proto.runtime.v1.Dapr/GetBulkState",
    "/dapr.proto.runtime.v1.Dapr/DeleteState",
    "/dapr.proto.runtime.v1.Dapr/ExecuteStateTransaction",
    "/dapr.proto.runtime.v1.Dapr/PublishEvent",
    "/dapr.proto.runtime.v1.Dapr/BulkPublishEvent",
    "/dapr.proto.runtime.v1.Dapr/InvokeService",
    "/dapr.proto.runtime.v1.Dapr/InvokeBinding",
    "/dapr.proto.runtime.v1.Dapr/GetSecret",
    "/dapr.proto.runtime.v1.Dapr/GetMetadata",
    "/dapr.proto.runtime.v1.Dapr/SetMetadata",
    "/dapr.proto.runtime.v1.Dapr/InvokeActor",
    "/dapr.proto.runtime.v1.Dapr/RegisterActorReminder",
    "/dapr.proto.runtime.v1.Dapr/QueryStateAlpha1",
    "/dapr.proto.runtime.v1.Dapr/TryLockAlpha1",
    "/dapr.proto.runtime.v1.Dapr/SubscribeTopicEventsAlpha1",
    "/dapr.proto.runtime.v1.Dapr/NoSuchMethod",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/some.other.Service/Method",
];

/// One call to make.
#[derive(Debug, Clone)]
pub struct Call {
    pub label: &'static str,
    pub path: &'static str,
    pub metadata: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// A gRPC frame: uncompressed flag and length prefix, then the message.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let len = rng.random_range(0..=max);
    (0..len).map(|_| rng.random()).collect()
}

/// Valid messages of several types, so that one sent to the wrong RPC is well-formed protobuf
/// of the wrong shape.
fn some_message(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..6) {
        0 => rt::GetStateRequest {
            store_name: "statestore".into(),
            key: format!("fuzz-{}", rng.random::<u16>()),
            ..Default::default()
        }
        .encode_to_vec(),
        1 => rt::SaveStateRequest {
            store_name: ["statestore", "nope", ""][rng.random_range(0..3)].into(),
            states: vec![common::StateItem {
                key: ["", "a||b", "k"][rng.random_range(0..3)].into(),
                value: random_bytes(rng, 64),
                etag: Some(common::Etag {
                    value: "not-a-number".into(),
                }),
                ..Default::default()
            }],
        }
        .encode_to_vec(),
        2 => rt::PublishEventRequest {
            pubsub_name: "nope".into(),
            topic: String::new(),
            data: random_bytes(rng, 64),
            ..Default::default()
        }
        .encode_to_vec(),
        3 => rt::InvokeServiceRequest {
            id: ["", "no-such-app", "a.b.c", "\u{0}"][rng.random_range(0..4)].into(),
            message: None,
        }
        .encode_to_vec(),
        4 => rt::InvokeActorRequest {
            actor_type: "T".into(),
            actor_id: String::new(),
            method: "m".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        _ => rt::GetSecretRequest {
            store_name: "nope".into(),
            key: "k".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    }
}

fn body(rng: &mut StdRng) -> (&'static str, Vec<u8>) {
    match rng.random_range(0..10) {
        0 => ("unframed bytes", random_bytes(rng, 40)),
        1 => ("framed garbage", frame(&random_bytes(rng, 200))),
        2 => ("a message of another type", frame(&some_message(rng))),
        3 => {
            let mut f = vec![0];
            f.extend_from_slice(&rng.random_range(0x0100_0000u32..=u32::MAX).to_be_bytes());
            f.extend(random_bytes(rng, 100));
            ("huge declared length", f)
        }
        4 => {
            let mut f = frame(&some_message(rng));
            let keep = rng.random_range(1..f.len().max(2));
            f.truncate(keep);
            ("truncated frame", f)
        }
        5 => {
            let mut f = frame(&some_message(rng));
            f[0] = 1;
            ("compressed flag without an encoding", f)
        }
        6 => {
            let mut f = frame(&some_message(rng));
            f.extend(frame(&some_message(rng)));
            ("two messages on one call", f)
        }
        7 => {
            let mut m = some_message(rng);
            // Field 999 (varint), field 1000 (length-delimited), field 15 (fixed64).
            m.extend([0xb8, 0x3e, 0x2a, 0xc2, 0x3e, 0x03, b'a', b'b', b'c', 0x79]);
            m.extend([0u8; 8]);
            ("unknown fields", frame(&m))
        }
        8 => ("empty body", Vec::new()),
        _ => ("an empty message", frame(&[])),
    }
}

fn metadata(rng: &mut StdRng) -> (&'static str, Vec<(String, Vec<u8>)>) {
    let text = |s: &str| s.as_bytes().to_vec();
    match rng.random_range(0..12) {
        0 => (
            "32 KiB metadata value",
            vec![("x-big".into(), vec![b'a'; 32 << 10])],
        ),
        1 => (
            "300 metadata entries",
            (0..300).map(|i| (format!("x-m{i}"), text("v"))).collect(),
        ),
        2 => (
            "invalid grpc-timeout",
            vec![(
                "grpc-timeout".into(),
                text(["abc", "99999999999H", "-1S", "1", "1x", ""][rng.random_range(0..6)]),
            )],
        ),
        3 => (
            "invalid -bin value",
            vec![("x-data-bin".into(), text("!!!not base64!!!"))],
        ),
        4 => (
            "odd dapr-app-id",
            vec![(
                "dapr-app-id".into(),
                text(["", " ", "a.b.c.d", "..", "%00", "no-such-app"][rng.random_range(0..6)]),
            )],
        ),
        5 => (
            "dapr-api-token garbage",
            vec![("dapr-api-token".into(), random_printable(rng))],
        ),
        6 => (
            "traceparent garbage",
            vec![
                ("traceparent".into(), random_printable(rng)),
                ("grpc-trace-bin".into(), text("zz")),
            ],
        ),
        _ => ("plain", Vec::new()),
    }
}

fn random_printable(rng: &mut StdRng) -> Vec<u8> {
    let len = rng.random_range(0..200);
    (0..len).map(|_| rng.random_range(0x20u8..0x7f)).collect()
}

/// One seeded bad call.
pub fn call(rng: &mut StdRng) -> Call {
    let path = PATHS[rng.random_range(0..PATHS.len())];
    let (body_label, body) = body(rng);
    let (md_label, metadata) = metadata(rng);
    let label = if md_label == "plain" {
        body_label
    } else {
        md_label
    };
    Call {
        label,
        path,
        metadata,
        body,
    }
}
