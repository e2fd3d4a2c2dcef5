//! Judging answers: a tally per phase, with a few example failures per label.

use crate::common::raw_http::{Outcome, exchange};
use crate::generate::Bad;
use futures_util::StreamExt;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Tally {
    pub sent: usize,
    pub json: usize,
    pub with_body_expected: usize,
    /// Answers accepted although their body broke off (oversize chunked invocations only).
    pub incomplete: usize,
    pub by_label: BTreeMap<&'static str, (usize, usize)>,
    pub statuses: BTreeMap<u16, usize>,
    pub codes: BTreeMap<String, usize>,
    pub failures: BTreeMap<&'static str, (usize, Vec<String>)>,
}

impl Tally {
    fn fail(&mut self, label: &'static str, what: String) {
        let entry = self.failures.entry(label).or_default();
        entry.0 += 1;
        if entry.1.len() < 3 {
            entry.1.push(what);
        }
    }

    /// Counts, as acceptable, an answer whose head came but whose body broke off.
    pub fn accept_incomplete(&mut self, label: &'static str, status: u16) {
        self.sent += 1;
        self.incomplete += 1;
        *self.statuses.entry(status).or_default() += 1;
        let entry = self.by_label.entry(label).or_default();
        entry.0 += 1;
        entry.1 += 1;
    }

    pub fn failure_report(&self) -> String {
        self.failures
            .iter()
            .map(|(label, (n, examples))| {
                format!(
                    "  [{label}] {n} failures, e.g.:\n    {}",
                    examples.join("\n    ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The start of `bytes`, quoted, for failure messages.
pub fn show(bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(240)]).into_owned();
    if bytes.len() > 240 {
        format!("{shown:?}… ({} bytes)", bytes.len())
    } else {
        format!("{shown:?}")
    }
}

/// `want_json`: the answer must carry a JSON errorCode (HEAD excepted).
pub fn judge(
    bad: &Bad,
    outcome: Outcome,
    tally: &mut Tally,
    want_json: bool,
    status_ok: impl Fn(u16, Option<&str>) -> bool,
) {
    tally.sent += 1;
    let label = bad.label;
    tally.by_label.entry(label).or_default().0 += 1;
    let response = match outcome {
        Outcome::Answer(r) => r,
        Outcome::ClosedSilently => {
            tally.fail(
                label,
                format!("closed without an answer for request {}", show(bad.bytes())),
            );
            return;
        }
        Outcome::Incomplete { status, error } => {
            tally.fail(
                label,
                format!(
                    "no usable answer ({status} with an incomplete body: {error}) for request {}",
                    show(bad.bytes())
                ),
            );
            return;
        }
        Outcome::Broken(e) => {
            tally.fail(
                label,
                format!("no usable answer ({e}) for request {}", show(bad.bytes())),
            );
            return;
        }
    };
    *tally.statuses.entry(response.status).or_default() += 1;
    let code = response.json_error_code();
    let head = bad.method == "HEAD";
    if !head {
        tally.with_body_expected += 1;
        if code.is_some() {
            tally.json += 1;
        }
    }
    if let Some(c) = &code {
        *tally.codes.entry(c.clone()).or_default() += 1;
    }
    let mut problems = Vec::new();
    if !status_ok(response.status, code.as_deref()) {
        problems.push(format!("status {}", response.status));
    }
    if want_json && !head {
        if code.is_none() {
            problems.push("no JSON errorCode".to_owned());
        } else if !response.has_json_content_type() {
            problems.push(format!(
                "content-type {:?}",
                response.header("content-type")
            ));
        }
    }
    if problems.is_empty() {
        tally.by_label.entry(label).or_default().1 += 1;
    } else {
        tally.fail(
            label,
            format!(
                "{} for request {} → {} {}",
                problems.join(", "),
                show(bad.bytes()),
                response.status,
                show(&response.body)
            ),
        );
    }
}

/// A malformed request's status: a 4xx, or Dapr's 500 `ERR_DIRECT_INVOKE` for an app id that
/// resolves to nothing.
pub fn api_status_ok(bad: &Bad) -> impl Fn(u16, Option<&str>) -> bool + '_ {
    move |status, code| {
        (400..500).contains(&status)
            || (bad.allow_invoke_500 && status == 500 && code == Some("ERR_DIRECT_INVOKE"))
    }
}

/// Sends `batch` eight at a time and judges every answer as a malformed API request's.
pub async fn run_batch(port: u16, batch: &[Bad], tally: &mut Tally, want_json: bool) {
    let outcomes: Vec<(usize, Outcome)> = futures_util::stream::iter(batch.iter().enumerate())
        .map(|(i, bad)| async move {
            (
                i,
                exchange(port, bad.send.clone(), bad.method == "HEAD").await,
            )
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (i, outcome) in outcomes {
        judge(
            &batch[i],
            outcome,
            tally,
            want_json,
            api_status_ok(&batch[i]),
        );
    }
}
