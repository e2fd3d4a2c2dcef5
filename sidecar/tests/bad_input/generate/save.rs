//! Malformed state saves (`POST`/`PUT /v1.0/state/{store}`).

use super::{Absent, Bad, alnum, content_type, garbage, nested, pick, store};
use crate::common::raw_http::request;
use rand::Rng;
use rand::rngs::StdRng;

/// A save whose body is not JSON.
pub fn invalid_json(rng: &mut StdRng, write_method: &str, fresh: &str) -> Bad {
    let valid = format!(r#"[{{"key":"{fresh}","value":{{"a":[1,2,3]}}}}]"#);
    let body = match rng.random_range(0..4) {
        0 => garbage(rng, 300),
        1 => valid.as_bytes()[..rng.random_range(1..valid.len())].to_vec(),
        _ => pick(
            rng,
            &[
                "{",
                "nul",
                r#"[{"key":"a",}]"#,
                "[{'key':'a'}]",
                "[NaN]",
                r#"[{"key":"a","value":01}]"#,
                r#"[{"key":"a" "value":1}]"#,
                "[]]",
                "[]x",
                "\u{feff}[]",
                r#"[{"key":"\ud800","value":1}]"#,
                r#"[{"key":"a","value":"\x"}]"#,
                "[{\"key\":\"a\",\"value\":\"tab\there\"}]",
            ],
        )
        .as_bytes()
        .to_vec(),
    };
    let target = format!("/v1.0/state/{}", store(rng));
    Bad::new(
        "save: invalid JSON",
        write_method,
        request(write_method, &target, &content_type(rng), &body),
    )
}

/// A save whose body is JSON of the wrong shape.
pub fn wrong_shape(
    rng: &mut StdRng,
    absent: &mut Absent,
    write_method: &str,
    fresh: String,
) -> Bad {
    let depth = rng.random_range(200..5000);
    let shapes = [
        format!(r#"{{"key":"{fresh}","value":1}}"#),
        "[1,2,3]".to_owned(),
        format!(r#"["{fresh}"]"#),
        format!(r#"[[{{"key":"{fresh}","value":1}}]]"#),
        format!(r#"{{"0":{{"key":"{fresh}"}}}}"#),
        format!(r#"[{{"key":{},"value":1}}]"#, rng.random::<u32>()),
        format!(r#"[{{"key":["{fresh}"]}}]"#),
        format!(r#"[{{"key":{{"k":"{fresh}"}}}}]"#),
        r#"[{"key":true}]"#.to_owned(),
        format!(r#"[{{"key":"{fresh}","metadata":"x"}}]"#),
        format!(r#"[{{"key":"{fresh}","metadata":[1,2]}}]"#),
        format!(r#"[{{"key":"{fresh}","options":"strong"}}]"#),
        format!(r#"[{{"key":"{fresh}","options":5}}]"#),
        format!(r#"[{{"key":"{fresh}","options":{{"concurrency":5}}}}]"#),
        format!(r#"[{{"key":"{fresh}","options":{{"consistency":["strong"]}}}}]"#),
        format!(r#"[{{"key":"{fresh}","contentType":5}}]"#),
        format!(r#"[{{"key":"{fresh}","value":1}},7]"#),
        "null".to_owned(),
        "\"[]\"".to_owned(),
        "true".to_owned(),
        nested(depth, "[", "]", ""),
        nested(depth, r#"{"a":"#, "}", "1"),
        // (A deeply nested *value* is opaque bytes to the store, as in Dapr: not here.)
    ];
    let body = pick(rng, &shapes).clone();
    absent.0.push(fresh);
    let target = format!("/v1.0/state/{}", store(rng));
    Bad::new(
        "save: wrong shape",
        write_method,
        request(write_method, &target, &content_type(rng), body.as_bytes()),
    )
}

/// A save with a legal item followed by one with an illegal key.
pub fn illegal_key(
    rng: &mut StdRng,
    absent: &mut Absent,
    write_method: &str,
    fresh: String,
) -> Bad {
    let illegal = pick(
        rng,
        &[
            r#"{"key":"a||b","value":1}"#,
            r#"{"key":"||","value":1}"#,
            r#"{"key":"x||","value":1}"#,
            r#"{"key":"||x","value":1}"#,
            r#"{"key":"","value":1}"#,
            r#"{"value":1}"#,
            r#"{"key":null,"value":1}"#,
        ],
    );
    // A legal item first: the whole request must be refused, so it must not be written.
    let body = format!(r#"[{{"key":"{fresh}","value":"must not be saved"}},{illegal}]"#);
    absent.0.push(fresh);
    Bad::new(
        "save: illegal key",
        write_method,
        request(write_method, "/v1.0/state/statestore", &[], body.as_bytes()),
    )
}

/// A save with a bad `ttlInSeconds` (in the item's metadata or the query).
pub fn bad_ttl(rng: &mut StdRng, absent: &mut Absent, write_method: &str, fresh: String) -> Bad {
    let ttl = *pick(
        rng,
        &[
            r#""soon""#,
            r#""-2""#,
            r#""1.5""#,
            r#""1e3""#,
            r#""0x10""#,
            r#""99999999999999999999""#,
            r#"" ""#,
            r#""abc123""#,
            "true",
            "{}",
            "[1]",
            "-100",
            "1.5",
            r#""NaN""#,
            "99999999999999999999",
        ],
    );
    let (target, body) = if rng.random_bool(0.7) {
        (
            "/v1.0/state/statestore".to_owned(),
            format!(r#"[{{"key":"{fresh}","value":1,"metadata":{{"ttlInSeconds":{ttl}}}}}]"#),
        )
    } else {
        let q = pick(
            rng,
            &["abc", "-7", "1.5", "%FF", "9999999999999999999999", "%20"],
        );
        (
            format!("/v1.0/state/statestore?metadata.ttlInSeconds={q}"),
            format!(r#"[{{"key":"{fresh}","value":1}}]"#),
        )
    };
    absent.0.push(fresh);
    Bad::new(
        "save: bad ttlInSeconds",
        write_method,
        request(write_method, &target, &[], body.as_bytes()),
    )
}

/// A save with an unknown concurrency or consistency.
pub fn bad_options(
    rng: &mut StdRng,
    absent: &mut Absent,
    write_method: &str,
    fresh: String,
) -> Bad {
    let bogus = if rng.random_bool(0.5) {
        {
            let n = rng.random_range(1..12);
            alnum(rng, n)
        }
    } else {
        (*pick(
            rng,
            &[
                "First-Write",
                "firstwrite",
                "LAST_WRITE",
                "eventual",
                "strong",
                "first_write",
                "caf\u{e9}",
                "last-write-wins",
            ],
        ))
        .to_owned()
    };
    let field = if rng.random_bool(0.5) {
        "concurrency"
    } else {
        "consistency"
    };
    let bogus = match (field, bogus.as_str()) {
        ("concurrency", "first-write" | "last-write") | ("consistency", "strong" | "eventual") => {
            format!("{bogus}!")
        }
        _ => bogus,
    };
    let body = format!(r#"[{{"key":"{fresh}","value":1,"options":{{"{field}":"{bogus}"}}}}]"#);
    absent.0.push(fresh);
    Bad::new(
        "save: bad concurrency/consistency",
        write_method,
        request(write_method, "/v1.0/state/statestore", &[], body.as_bytes()),
    )
}
