//! Sending the matrix over raw HTTP/1.1 and judging each answer.

use crate::common::raw_http::{self, Payload, RawResponse};
use crate::matrix::{Case, exempt};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Default)]
pub struct Tally {
    pub sent: usize,
    pub refused_401_json: usize,
    pub exempt_ok: usize,
    pub accepted_valid: usize,
    pub by_tok: BTreeMap<String, usize>,
    pub codes: BTreeMap<String, usize>,
    pub failures: Vec<String>,
}

/// Writes `request` (which should say `Connection: close`) and reads the answer to the end.
pub async fn send_raw(port: u16, request: Vec<u8>, head_only: bool) -> Result<RawResponse, String> {
    raw_http::exchange_within(
        port,
        Payload::Whole(request),
        head_only,
        Duration::from_secs(15),
    )
    .await
    .into_result()
}

async fn run_case(case: &Case) -> Result<RawResponse, String> {
    let body: &[u8] = if matches!(case.method, "POST" | "PUT" | "PATCH") {
        b"[]"
    } else {
        b""
    };
    let headers: Vec<(&str, Vec<u8>)> = case
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone().into_bytes()))
        .collect();
    let bytes = raw_http::request(case.method, &case.target, &headers, body);
    send_raw(case.port, bytes, case.method == "HEAD").await
}

pub fn judge(case: &Case, result: Result<RawResponse, String>, tally: &mut Tally) {
    tally.sent += 1;
    *tally.by_tok.entry(format!("{:?}", case.tok)).or_default() += 1;
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            tally
                .failures
                .push(format!("{}: no HTTP answer: {e}", case.describe()));
            return;
        }
    };
    if case.tok.valid() {
        if response.status == 401 {
            tally.failures.push(format!(
                "{}: a valid token (header name in another case) was refused: {} {:?}",
                case.describe(),
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        } else {
            tally.accepted_valid += 1;
        }
        return;
    }
    if exempt(case.method, &case.target) {
        if response.status == 204 {
            tally.exempt_ok += 1;
        } else {
            tally.failures.push(format!(
                "{}: exempt health check answered {}",
                case.describe(),
                response.status
            ));
        }
        return;
    }
    if response.status != 401 {
        tally.failures.push(format!(
            "BYPASS {}: answered {} {:?}",
            case.describe(),
            response.status,
            String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
        ));
        return;
    }
    if case.method == "HEAD" {
        tally.refused_401_json += 1;
        *tally.codes.entry("(HEAD: no body)".into()).or_default() += 1;
        return;
    }
    // A refusal must say what and why: a JSON errorCode and a message.
    let code = response
        .json_error_code()
        .filter(|_| response.json_message().is_some());
    match code {
        Some(code) if response.has_json_content_type() => {
            tally.refused_401_json += 1;
            *tally.codes.entry(code).or_default() += 1;
        }
        _ => tally.failures.push(format!(
            "{}: 401 without a JSON errorCode/message body: content-type {:?}, body {:?}",
            case.describe(),
            response.header("content-type"),
            String::from_utf8_lossy(&response.body)
        )),
    }
}

pub async fn run_matrix(cases: &[Case], tally: &mut Tally) {
    let results: Vec<(usize, Result<RawResponse, String>)> =
        futures_util::stream::iter(cases.iter().enumerate())
            .map(|(i, case)| async move { (i, run_case(case).await) })
            .buffer_unordered(12)
            .collect()
            .await;
    for (i, result) in results {
        judge(&cases[i], result, tally);
    }
}
