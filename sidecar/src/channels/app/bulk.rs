//! A batch of pub/sub events for one app route (bulk subscribe) and Dapr's reading of the
//! app's answer, one outcome per entry.

use super::Outcome;
use bytes::Bytes;
use serde::Deserialize;

/// A batch of events for the app: Dapr's bulk envelope, already serialised, and the ids of its
/// entries in the order their outcomes are wanted.
#[derive(Debug)]
pub struct BulkEventDelivery<'a> {
    /// The route the subscription chose for every entry of the batch.
    pub path: &'a str,
    pub pubsub: &'a str,
    /// The envelope `{"id","type","topic","pubsubname","metadata","entries":[..]}`.
    pub body: Bytes,
    pub entry_ids: &'a [String],
    /// The context the app's request carries (a delivery span's).
    pub traceparent: Option<&'a str>,
}

#[derive(Deserialize)]
struct BulkAnswer {
    #[serde(default)]
    statuses: Vec<EntryStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryStatus {
    #[serde(default)]
    entry_id: String,
    #[serde(default)]
    status: String,
}

/// The outcome of each entry of `entry_ids` from the app's answer, as Dapr reads it: on a 2xx,
/// `{"statuses":[{"entryId","status"}]}` gives SUCCESS, DROP or RETRY per entry, and an entry
/// without a status (or with an empty or unknown one) is retried, as is every entry when the
/// body is not that JSON; a 404 means the route does not exist for any entry; any other status
/// retries them all. Statuses for ids not in the batch are ignored.
pub fn read_bulk_answer(status: u16, body: &[u8], entry_ids: &[String]) -> Vec<Outcome> {
    let all = |outcome| vec![outcome; entry_ids.len()];
    match status {
        200..=299 => {}
        404 => return all(Outcome::NoRoute),
        _ => return all(Outcome::Retry),
    }
    let Ok(answer) = serde_json::from_slice::<BulkAnswer>(body) else {
        return all(Outcome::Retry);
    };
    entry_ids
        .iter()
        .map(|id| {
            let status = answer
                .statuses
                .iter()
                .find(|s| s.entry_id == *id)
                .map(|s| s.status.as_str());
            match status {
                Some(s) if s.eq_ignore_ascii_case("SUCCESS") => Outcome::Success,
                Some(s) if s.eq_ignore_ascii_case("DROP") => Outcome::Drop,
                _ => Outcome::Retry,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::{Drop, NoRoute, Retry, Success};

    #[test]
    fn each_entry_gets_the_status_the_app_gave_it() {
        let ids: Vec<String> = ["a", "b", "c", "d"].map(str::to_owned).into();
        let cases: &[(u16, &str, [Outcome; 4])] = &[
            (
                200,
                r#"{"statuses":[{"entryId":"a","status":"SUCCESS"},{"entryId":"b","status":"DROP"},{"entryId":"c","status":"RETRY"},{"entryId":"d","status":"SUCCESS"}]}"#,
                [Success, Drop, Retry, Success],
            ),
            // Order does not matter; a missing entry, an empty and an unknown status are retried.
            (
                200,
                r#"{"statuses":[{"entryId":"c","status":""},{"entryId":"a","status":"success"},{"entryId":"b","status":"MAYBE"},{"entryId":"zz","status":"SUCCESS"}]}"#,
                [Success, Retry, Retry, Retry],
            ),
            (200, "", [Retry; 4]),
            (200, "not json", [Retry; 4]),
            (200, "{}", [Retry; 4]),
            (204, r#"{"statuses":[]}"#, [Retry; 4]),
            (404, "", [NoRoute; 4]),
            (
                500,
                r#"{"statuses":[{"entryId":"a","status":"SUCCESS"}]}"#,
                [Retry; 4],
            ),
            (503, "", [Retry; 4]),
        ];
        for (status, body, want) in cases {
            assert_eq!(
                read_bulk_answer(*status, body.as_bytes(), &ids),
                want.to_vec(),
                "{status} {body}"
            );
        }
    }
}
