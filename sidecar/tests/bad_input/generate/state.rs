//! Malformed state gets, deletes, bulk gets and transactions, unknown stores, bad UTF-8.

use super::{Absent, Bad, UNKNOWN_STORES, alnum, content_type, garbage, nested, pick, store};
use crate::common::raw_http::request;
use rand::Rng;
use rand::rngs::StdRng;

/// A get with an illegal key, a bad consistency or an unknown store.
pub fn get_bad(rng: &mut StdRng, fresh: &str) -> Bad {
    let key = *pick(
        rng,
        &[
            "a%7C%7Cb",
            "%7C%7C",
            "a||b",
            "%FF",
            "%C3%28",
            "%ED%A0%80",
            "caf%C3",
            "%FE%FF",
        ],
    );
    let (target, label) = match rng.random_range(0..3) {
        0 => (
            format!("/v1.0/state/statestore/{key}"),
            "get: illegal or non-UTF-8 key",
        ),
        1 => {
            let c = pick(rng, &["sometimes", "STRONG", "%FF", "linearizable", "1"]);
            (
                format!("/v1.0/state/statestore/{fresh}?consistency={c}"),
                "get: bad consistency",
            )
        }
        _ => (
            format!("/v1.0/state/{}/{fresh}", pick(rng, UNKNOWN_STORES)),
            "get: unknown store",
        ),
    };
    Bad::new(label, "GET", request("GET", &target, &[], b""))
}

/// A delete with a bad If-Match, bad options or an illegal key.
pub fn delete_bad(rng: &mut StdRng, fresh: &str) -> Bad {
    let etags: &[&[u8]] = &[
        b"abc",
        b"\"abc\"",
        b"1.5",
        b"99999999999999999999999",
        b"*",
        b"0x1",
        b"W/\"1\"",
        b"\xff\xfe",
        b"1 2",
        b"1",
        b"-1",
        b"\xc3\x28",
        b"\"",
    ];
    let etag = pick(rng, etags).to_vec();
    let (target, headers, label) = match rng.random_range(0..4) {
        0 | 1 => (
            format!("/v1.0/state/statestore/{fresh}"),
            vec![("If-Match", etag)],
            "delete: bad If-Match",
        ),
        2 => {
            let (field, v) = *pick(
                rng,
                &[
                    ("concurrency", "sometimes"),
                    ("concurrency", "FIRST-WRITE"),
                    ("consistency", "weak"),
                    ("consistency", "%FF"),
                ],
            );
            (
                format!("/v1.0/state/statestore/{fresh}?{field}={v}"),
                vec![],
                "delete: bad concurrency/consistency",
            )
        }
        _ => (
            format!(
                "/v1.0/state/statestore/{}",
                pick(rng, &["a%7C%7Cb", "%FF", "x||", "%C3%28"])
            ),
            vec![],
            "delete: illegal or non-UTF-8 key",
        ),
    };
    Bad::new(label, "DELETE", request("DELETE", &target, &headers, b""))
}

/// A bulk get whose body has the wrong shape.
pub fn bulk_wrong_shape(rng: &mut StdRng, write_method: &str) -> Bad {
    let bodies = [
        r#"{"keys":"a"}"#.to_owned(),
        r#"{"keys":[1,2]}"#.to_owned(),
        r#"{"keys":[["a"]]}"#.to_owned(),
        r#"{"keys":["a"],"parallelism":-1}"#.to_owned(),
        r#"{"keys":["a"],"parallelism":"x"}"#.to_owned(),
        r#"{"keys":null}"#.to_owned(),
        r#"{"keys":["a||b"]}"#.to_owned(),
        r#"{"keys":["ok",""]}"#.to_owned(),
        r#"{"keys":["a"],"metadata":5}"#.to_owned(),
        r#"{"keys":["a"],"parallelism":1e400}"#.to_owned(),
        "5".to_owned(),
        "null".to_owned(),
        r#""keys""#.to_owned(),
        "{".to_owned(),
        nested(rng.random_range(200..3000), r#"{"keys":"#, "}", "[]"),
        String::from_utf8_lossy(&garbage(rng, 200)).into_owned(),
        "{\"keys\":[\"\\u0000\\ud800\"]}".to_owned(),
        // An array where the request object belongs: Dapr (Go) refuses it.
        "[]".to_owned(),
        r#"[["a","b"],5]"#.to_owned(),
    ];
    let body = pick(rng, &bodies).clone();
    let target = format!("/v1.0/state/{}/bulk", store(rng));
    Bad::new(
        "bulk: wrong shape",
        write_method,
        request(write_method, &target, &content_type(rng), body.as_bytes()),
    )
}

/// A transaction with bad operations.
pub fn transaction_bad(
    rng: &mut StdRng,
    absent: &mut Absent,
    write_method: &str,
    fresh: String,
) -> Bad {
    let op = *pick(
        rng,
        &[
            r#""merge""#,
            r#""UPSERT""#,
            r#""""#,
            r#""get""#,
            "5",
            "null",
            r#""upsert ""#,
            r#""Delete""#,
        ],
    );
    let bodies = [
        format!(
            r#"{{"operations":[{{"operation":"upsert","request":{{"key":"{fresh}","value":1}}}},{{"operation":{op},"request":{{"key":"x"}}}}]}}"#
        ),
        r#"{"operations":[{"operation":"upsert"}]}"#.to_owned(),
        format!(r#"{{"operations":[{{"request":{{"key":"{fresh}"}}}}]}}"#),
        r#"{"operations":{}}"#.to_owned(),
        r#"{"operations":"upsert"}"#.to_owned(),
        format!(
            r#"{{"operations":[{{"operation":"upsert","request":{{"key":"{fresh}","value":1}}}},{{"operation":"upsert","request":{{"key":"a||b"}}}}]}}"#
        ),
        format!(
            r#"{{"operations":[{{"operation":"upsert","request":{{"key":"{fresh}","value":1}}}},{{"operation":"delete","request":{{}}}}]}}"#
        ),
        format!(
            r#"{{"operations":[{{"operation":"upsert","request":{{"key":"{fresh}","value":1,"metadata":{{"ttlInSeconds":"later"}}}}}}]}}"#
        ),
        format!(
            r#"{{"metadata":{{"ttlInSeconds":"x"}},"operations":[{{"operation":"upsert","request":{{"key":"{fresh}","value":1}}}}]}}"#
        ),
        format!(
            r#"{{"operations":[{{"operation":"upsert","request":{{"key":"{fresh}","value":1,"options":{{"concurrency":"often"}}}}}}]}}"#
        ),
        format!(r#"{{"operations":[{{"operation":"upsert","request":"{fresh}"}}]}}"#),
        format!(
            r#"{{"operations":[{{"operation":"upsert","request":{{"key":"{fresh}","value":1}}}}],"metadata":[1]}}"#
        ),
        "[]".to_owned(),
        format!(r#"[[{{"operation":"upsert","request":{{"key":"{fresh}","value":1}}}}]]"#),
        "{\"operations\":[".to_owned(),
    ];
    let body = pick(rng, &bodies).clone();
    absent.0.push(fresh);
    let target = format!("/v1.0/state/{}/transaction", store(rng));
    Bad::new(
        "transaction: bad operations",
        write_method,
        request(write_method, &target, &content_type(rng), body.as_bytes()),
    )
}

/// A well-formed save, bulk get or transaction on a store that does not exist.
pub fn unknown_state_store(rng: &mut StdRng, write_method: &str) -> Bad {
    let unknown = format!("store-{}", alnum(rng, 6));
    let (target, body) = *pick(
        rng,
        &[
            ("", r#"[{"key":"k","value":1}]"#),
            ("/bulk", r#"{"keys":["k"]}"#),
            (
                "/transaction",
                r#"{"operations":[{"operation":"upsert","request":{"key":"k","value":1}}]}"#,
            ),
        ],
    );
    Bad::new(
        "unknown state store",
        write_method,
        request(
            write_method,
            &format!("/v1.0/state/{unknown}{target}"),
            &[],
            body.as_bytes(),
        ),
    )
}

/// Invalid UTF-8 inside JSON strings.
pub fn invalid_utf8_in_json(rng: &mut StdRng) -> Bad {
    let mut body = br#"[{"key":""#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    body.extend_from_slice(br#"","value":1}]"#);
    let (target, body) = match rng.random_range(0..3) {
        0 => ("/v1.0/state/statestore", body),
        1 => {
            let mut b = br#"{"keys":[""#.to_vec();
            b.extend_from_slice(&[0xed, 0xa0, 0x80]);
            b.extend_from_slice(br#""]}"#);
            ("/v1.0/state/statestore/bulk", b)
        }
        _ => {
            let mut b =
                br#"{"operations":[{"operation":"upsert","request":{"key":"k","value":""#.to_vec();
            b.push(0xfe);
            b.extend_from_slice(br#""}}]}"#);
            ("/v1.0/state/statestore/transaction", b)
        }
    };
    Bad::new(
        "invalid UTF-8 in JSON",
        "POST",
        request("POST", target, &content_type(rng), &body),
    )
}
