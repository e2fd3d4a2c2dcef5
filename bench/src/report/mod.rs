//! The results file `scripts/bench.sh` writes, and the Markdown report made from it.
//!
//! The results file has one tab-separated record a line:
//!
//! ```text
//! meta   <key>    <value>                                   date, command, machine, rate, …
//! m      <key>    <round>  <value>                          one measurement
//! round  <bench>  <round>  <attempt>  <loadavg>  <status>   noise guard: ok | repeated | noisy
//! fail   <bench>  <message>                                 a benchmark that could not run
//! warn   <bench>  <message>                                 a measurement to read with care
//! ```
//!
//! Latency and throughput rows quote the median of per-round results; deltas and ratios are
//! computed within each round first (Tandem vs the baseline measured next to it), then the
//! median is taken. Cold-start percentiles pool the samples of all rounds.

use crate::stats::{median, percentile};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One noise-guard record.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRecord {
    pub bench: String,
    pub round: u32,
    pub attempt: u32,
    pub loadavg: f64,
    pub status: String,
}

/// Everything in a results file.
#[derive(Debug, Default, Clone)]
pub struct Results {
    pub meta: Vec<(String, String)>,
    /// key → round → values.
    pub measurements: BTreeMap<String, BTreeMap<u32, Vec<f64>>>,
    pub rounds: Vec<RoundRecord>,
    pub fails: Vec<(String, String)>,
    pub warns: Vec<(String, String)>,
}

impl Results {
    /// Parses a results file; malformed lines are reported as warnings, not errors.
    pub fn parse(text: &str) -> Self {
        let mut r = Results::default();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let ok = match f.as_slice() {
                ["meta", key, value @ ..] => {
                    r.meta.push(((*key).to_owned(), value.join("\t")));
                    true
                }
                ["m", key, round, value] => match (round.parse(), value.parse::<f64>()) {
                    (Ok(round), Ok(value)) => {
                        r.measurements
                            .entry((*key).to_owned())
                            .or_default()
                            .entry(round)
                            .or_default()
                            .push(value);
                        true
                    }
                    _ => false,
                },
                ["round", bench, round, attempt, loadavg, status] => {
                    match (round.parse(), attempt.parse(), loadavg.parse()) {
                        (Ok(round), Ok(attempt), Ok(loadavg)) => {
                            r.rounds.push(RoundRecord {
                                bench: (*bench).to_owned(),
                                round,
                                attempt,
                                loadavg,
                                status: (*status).to_owned(),
                            });
                            true
                        }
                        _ => false,
                    }
                }
                ["fail", bench, msg @ ..] => {
                    r.fails.push(((*bench).to_owned(), msg.join(" ")));
                    true
                }
                ["warn", bench, msg @ ..] => {
                    r.warns.push(((*bench).to_owned(), msg.join(" ")));
                    true
                }
                _ => false,
            };
            if !ok {
                r.warns.push((
                    "results".to_owned(),
                    format!("line {} not understood: {line:?}", n + 1),
                ));
            }
        }
        r
    }

    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, all rounds.
    pub fn all(&self, key: &str) -> Vec<f64> {
        self.measurements
            .get(key)
            .map(|rounds| rounds.values().flatten().copied().collect())
            .unwrap_or_default()
    }

    /// One value per round (the mean when a round has several).
    pub fn per_round(&self, key: &str) -> BTreeMap<u32, f64> {
        self.measurements
            .get(key)
            .map(|rounds| {
                rounds
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(r, v)| (*r, v.iter().sum::<f64>() / v.len() as f64))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The median of per-round values of `key`.
    pub fn median(&self, key: &str) -> Option<f64> {
        median(&self.per_round(key).into_values().collect::<Vec<_>>())
    }

    /// The median over rounds of `f(values of keys in that round)`, using only rounds that have
    /// all the keys.
    pub fn median_by_round(&self, keys: &[&str], f: impl Fn(&[f64]) -> f64) -> Option<f64> {
        let per: Vec<BTreeMap<u32, f64>> = keys.iter().map(|k| self.per_round(k)).collect();
        let first = per.first()?;
        let values: Vec<f64> = first
            .keys()
            .filter_map(|round| {
                let row: Option<Vec<f64>> = per.iter().map(|m| m.get(round).copied()).collect();
                row.map(|row| f(&row))
            })
            .collect();
        median(&values)
    }

    /// `a − b` per round, median.
    pub fn delta(&self, a: &str, b: &str) -> Option<f64> {
        self.median_by_round(&[a, b], |v| v[0] - v[1])
    }

    /// `a / b` per round, median.
    pub fn ratio(&self, a: &str, b: &str) -> Option<f64> {
        self.median_by_round(&[a, b], |v| if v[1] > 0.0 { v[0] / v[1] } else { f64::NAN })
    }

    pub fn failed(&self, bench: &str) -> Option<&str> {
        self.fails
            .iter()
            .find(|(b, _)| b == bench)
            .map(|(_, m)| m.as_str())
    }

    pub(super) fn has_prefix(&self, prefix: &str) -> bool {
        self.measurements.keys().any(|k| k.starts_with(prefix))
    }
}

/// The verdict of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Met,
    Missed(String),
    /// A reference row, no target.
    Info,
    Failed(String),
    NotRun(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Met => write!(f, "met"),
            Verdict::Missed(by) => write!(f, "**missed**: {by}"),
            Verdict::Info => write!(f, "–"),
            Verdict::Failed(why) => write!(f, "**FAILED**: {why}"),
            Verdict::NotRun(why) => write!(f, "not run: {why}"),
        }
    }
}

mod b10_rows;
mod b11_rows;
mod b8_rows;
mod hop_rows;
mod rows;
pub use rows::{Row, rows};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report.
pub fn render(r: &Results) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Results\n");
    for (key, label) in [
        ("date", "Date"),
        ("command", "Command"),
        ("machine", "Machine"),
        ("commit", "Commit"),
        ("mode", "Mode"),
    ] {
        if let Some(v) = r.meta(key) {
            let _ = writeln!(md, "- {label}: {v}");
        }
    }
    let _ = writeln!(
        md,
        "- Method: rounds interleave the paths (A B C A B C …); each row is the median of \
         per-round results (deltas and ratios are taken within a round first). Load generator \
         on CPU 0, everything under test on CPU 1; HTTP/1.1 keep-alive, 16 connections, 1 KiB bodies.\n"
    );
    let _ = writeln!(
        md,
        "| # | Measure | Tandem | Baseline (same run) | Δ / ratio | Target | Result |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    let rows = rows(r);
    for row in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.bench,
            cell(&row.measure),
            cell(&row.tandem),
            cell(&row.baseline),
            cell(&row.result),
            cell(&row.target),
            cell(&row.verdict.to_string())
        );
    }
    let met = rows.iter().filter(|r| r.verdict == Verdict::Met).count();
    let missed = rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Missed(_)))
        .count();
    let failed = rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Failed(_)))
        .count();
    let _ = writeln!(
        md,
        "\nTargets: {met} met, {missed} missed, {failed} failed to run. B6 (injector) has a \
         binary of its own; B1M, B1T, B8, B9, B10 and B11 run with `--only`.\n"
    );

    if !r.fails.is_empty() || !r.warns.is_empty() {
        let _ = writeln!(md, "### Failures and warnings\n");
        for (bench, msg) in &r.fails {
            let _ = writeln!(md, "- **{bench} failed**: {msg}");
        }
        for (bench, msg) in &r.warns {
            let _ = writeln!(md, "- {bench}: {msg}");
        }
        let _ = writeln!(md);
    }

    if !r.rounds.is_empty() {
        let _ = writeln!(
            md,
            "### Noise guard (1-min load average before each round)\n"
        );
        let _ = writeln!(md, "| bench | round | attempt | loadavg | status |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for rr in &r.rounds {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2} | {} |",
                rr.bench, rr.round, rr.attempt, rr.loadavg, rr.status
            );
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "### All measurements (per round; median)\n");
    let _ = writeln!(md, "| key | per round | median |");
    let _ = writeln!(md, "|---|---|---|");
    for key in r.measurements.keys() {
        if key.ends_with(".sample_ms") {
            let v = r.all(key);
            let _ = writeln!(
                md,
                "| {key} | n={} min {:.1} p50 {:.1} p99 {:.1} max {:.1} | {:.1} |",
                v.len(),
                percentile(&v, 0.0).unwrap_or(f64::NAN),
                percentile(&v, 50.0).unwrap_or(f64::NAN),
                percentile(&v, 99.0).unwrap_or(f64::NAN),
                percentile(&v, 100.0).unwrap_or(f64::NAN),
                percentile(&v, 50.0).unwrap_or(f64::NAN),
            );
            continue;
        }
        let per: Vec<String> = r
            .per_round(key)
            .iter()
            .map(|(round, v)| format!("r{round}: {v:.1}"))
            .collect();
        let _ = writeln!(
            md,
            "| {key} | {} | {:.1} |",
            per.join(", "),
            r.median(key).unwrap_or(f64::NAN)
        );
    }
    md
}

#[cfg(test)]
mod tests;
