//! The summary rows of the report: one function per benchmark, each comparing Tandem with the
//! baseline measured in the same run and judging the target.

use super::*;

/// One table row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub bench: &'static str,
    pub measure: String,
    pub tandem: String,
    pub baseline: String,
    pub result: String,
    pub target: String,
    pub verdict: Verdict,
}

pub(super) fn us(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.0} µs"))
}

pub(super) fn signed_us(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:+.0} µs"))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.1} ms"))
}

pub(super) fn rps(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.0} req/s"))
}

fn mib(kb: Option<f64>) -> String {
    kb.map_or("n/a".to_owned(), |kb| format!("{:.1} MiB", kb / 1024.0))
}

pub(super) fn times(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.2}×"))
}

/// `value ≤ limit`, or by how much it is over.
pub(super) fn at_most(value: Option<f64>, limit: f64, unit: &str) -> Verdict {
    match value {
        None => Verdict::Missed("no measurement".to_owned()),
        Some(v) if v <= limit => Verdict::Met,
        Some(v) => Verdict::Missed(format!(
            "{:.1} {unit} over ({:.1}× the limit)",
            v - limit,
            if limit > 0.0 {
                v / limit
            } else {
                f64::INFINITY
            }
        )),
    }
}

/// `value ≥ limit`, or by how much it is under.
pub(super) fn at_least(value: Option<f64>, limit: f64) -> Verdict {
    match value {
        None => Verdict::Missed("no measurement".to_owned()),
        Some(v) if v >= limit => Verdict::Met,
        Some(v) => Verdict::Missed(format!(
            "{v:.2}× vs ≥ {limit:.2}× (needs {:.0} % more)",
            (limit / v - 1.0) * 100.0
        )),
    }
}

fn both(a: Verdict, b: Verdict) -> Verdict {
    match (a, b) {
        (Verdict::Met, Verdict::Met) => Verdict::Met,
        (Verdict::Missed(x), Verdict::Missed(y)) => Verdict::Missed(format!("{x}; {y}")),
        (Verdict::Missed(x), _) | (_, Verdict::Missed(x)) => Verdict::Missed(x),
        (x, _) => x,
    }
}

pub(super) fn row(
    bench: &'static str,
    measure: impl Into<String>,
    tandem: impl Into<String>,
    baseline: impl Into<String>,
    result: impl Into<String>,
    target: impl Into<String>,
    verdict: Verdict,
) -> Row {
    Row {
        bench,
        measure: measure.into(),
        tandem: tandem.into(),
        baseline: baseline.into(),
        result: result.into(),
        target: target.into(),
        verdict,
    }
}

pub(super) fn failed_row(bench: &'static str, measure: &str, target: &str, why: &str) -> Row {
    row(
        bench,
        measure,
        "–",
        "–",
        "–",
        target,
        Verdict::Failed(why.to_owned()),
    )
}

fn b4_rows(r: &Results, out: &mut Vec<Row>) {
    if let Some(why) = r.failed("B4") {
        out.push(failed_row("B4", "sidecar memory", "", why));
    }
    if !r.has_prefix("b4.") {
        return;
    }
    let idle_wait = r.meta("idle_wait_s").unwrap_or("30");
    let max2 = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let idle_a = r.median("b4.sidecar_a.idle_rss_kb");
    let idle_b = r.median("b4.sidecar_b.idle_rss_kb");
    out.push(row(
        "B4",
        format!("idle RSS {idle_wait} s after start (A / B)"),
        format!("{} / {}", mib(idle_a), mib(idle_b)),
        format!("hello server {}", mib(r.median("b4.echo.idle_rss_kb"))),
        "–",
        "≤ 10 MiB",
        at_most(max2(idle_a, idle_b).map(|kb| kb / 1024.0), 10.0, "MiB"),
    ));
    let (anon_a, anon_b) = (
        r.median("b4.sidecar_a.idle_anon_kb"),
        r.median("b4.sidecar_b.idle_anon_kb"),
    );
    if anon_a.is_some() || anon_b.is_some() {
        // The part of the idle RSS a sidecar costs on its own: the rest is the executable's
        // clean pages, shared by every sidecar of the same image on a node.
        out.push(row(
            "B4",
            "idle anonymous RSS (RssAnon; A / B)",
            format!("{} / {}", mib(anon_a), mib(anon_b)),
            format!("hello server {}", mib(r.median("b4.echo.idle_anon_kb"))),
            "–",
            "–",
            Verdict::Info,
        ));
    }
    let peak_a = r.median("b4.sidecar_a.peak_kb");
    let peak_b = r.median("b4.sidecar_b.peak_kb");
    if peak_a.is_some() || peak_b.is_some() {
        out.push(row(
            "B4",
            "peak RSS (VmHWM) after B1 (A / B)",
            format!("{} / {}", mib(peak_a), mib(peak_b)),
            format!("hello server {}", mib(r.median("b4.echo.peak_kb"))),
            "–",
            "≤ 20 MiB",
            at_most(max2(peak_a, peak_b).map(|kb| kb / 1024.0), 20.0, "MiB"),
        ));
    }
    let drift_a = r.median("b4.sidecar_a.soak_drift_kb");
    let drift_b = r.median("b4.sidecar_b.soak_drift_kb");
    if drift_a.is_some() || drift_b.is_some() {
        let worst = max2(drift_a, drift_b);
        out.push(row(
            "B4",
            format!(
                "RSS drift over the soak ({} min at the B1 rate; A / B)",
                r.meta("soak_minutes").unwrap_or("10")
            ),
            format!("{} / {}", mib(drift_a), mib(drift_b)),
            format!("hello server {}", mib(r.median("b4.echo.soak_drift_kb"))),
            "–",
            "≤ 1 MiB",
            at_most(worst.map(|kb| kb / 1024.0), 1.0, "MiB"),
        ));
    } else {
        out.push(row(
            "B4",
            "RSS drift over a 10-min soak",
            "–",
            "–",
            "–",
            "≤ 1 MiB",
            Verdict::NotRun("needs `--soak`".into()),
        ));
    }
}

fn b5_rows(r: &Results, out: &mut Vec<Row>) {
    let hello = r.all("b5.hello.sample_ms");
    let inmem = r.all("b5.inmem.sample_ms");
    let redis = r.all("b5.redis.sample_ms");
    if hello.is_empty() && inmem.is_empty() && redis.is_empty() && r.failed("B5").is_none() {
        return;
    }
    let p = |v: &[f64], q: f64| percentile(v, q);
    let baseline = format!(
        "hello server p50 {} / p99 {} (n={})",
        ms(p(&hello, 50.0)),
        ms(p(&hello, 99.0)),
        hello.len()
    );
    let fail_of = |what: &str| {
        r.fails
            .iter()
            .find(|(b, m)| b == "B5" && m.starts_with(what))
            .map(|(_, m)| m.as_str())
    };
    if inmem.is_empty() {
        out.push(failed_row(
            "B5",
            "cold start, in-memory components",
            "p50 ≤ 15 ms, p99 ≤ 50 ms",
            fail_of("in-memory").unwrap_or("no samples"),
        ));
    } else {
        out.push(row(
            "B5",
            format!(
                "cold start exec → healthz/outbound 204, in-memory (n={})",
                inmem.len()
            ),
            format!("p50 {} / p99 {}", ms(p(&inmem, 50.0)), ms(p(&inmem, 99.0))),
            baseline.clone(),
            format!(
                "{} p50 vs hello",
                p(&inmem, 50.0)
                    .zip(p(&hello, 50.0))
                    .map_or("n/a".to_owned(), |(a, b)| format!("{:+.1} ms", a - b))
            ),
            "p50 ≤ 15 ms, p99 ≤ 50 ms",
            both(
                at_most(p(&inmem, 50.0), 15.0, "ms"),
                at_most(p(&inmem, 99.0), 50.0, "ms"),
            ),
        ));
    }
    let redis_fail = fail_of("with a local Redis");
    if redis.is_empty() {
        out.push(failed_row(
            "B5",
            "cold start with a local Redis state store",
            "p99 ≤ 100 ms",
            redis_fail.unwrap_or("no samples"),
        ));
    } else {
        out.push(row(
            "B5",
            format!(
                "cold start with a local Redis state store (n={})",
                redis.len()
            ),
            format!("p50 {} / p99 {}", ms(p(&redis, 50.0)), ms(p(&redis, 99.0))),
            baseline,
            "–",
            "p99 ≤ 100 ms",
            at_most(p(&redis, 99.0), 100.0, "ms"),
        ));
    }
}

fn b7_rows(r: &Results, out: &mut Vec<Row>) {
    if let Some(why) = r.failed("B7") {
        out.push(failed_row(
            "B7",
            "state GET/SET via the sidecar to Redis",
            "own share of GET p50 ≤ 10 µs; GET ≥ 0.30×, SET ≥ 0.25× redis-benchmark",
            why,
        ));
        return;
    }
    if !r.has_prefix("b7.") {
        return;
    }
    let rate = r.meta("rate").unwrap_or("1000");
    // The sidecar's own share of a GET (issue 17's B7): its p50 minus a bare HTTP round trip
    // and a raw Redis GET, per round.
    let share = r.median_by_round(
        &[
            "b7.sidecar.get_p50_us",
            "b7.echo.get_p50_us",
            "b7.rb1.get_p50_us",
        ],
        |v| v[0] - v[1] - v[2],
    );
    if r.median("b7.echo.get_p50_us").is_some() {
        out.push(row(
            "B7",
            format!("state GET p50, the sidecar's own share ({rate} req/s open loop)"),
            format!(
                "{} ({})",
                us(r.median("b7.sidecar.get_p50_us")),
                signed_us(share)
            ),
            format!(
                "HTTP GET to a hello server p50 {} + redis-benchmark -c 1 GET p50 {}",
                us(r.median("b7.echo.get_p50_us")),
                us(r.median("b7.rb1.get_p50_us"))
            ),
            format!("{} own share", signed_us(share)),
            "≤ 10 µs",
            at_most(share, 10.0, "µs"),
        ));
    }
    for op in ["get", "set"] {
        let added = r.delta(
            &format!("b7.sidecar.{op}_p50_us"),
            &format!("b7.rb1.{op}_p50_us"),
        );
        let upper = op.to_uppercase();
        out.push(row(
            "B7",
            format!("state {upper} p50 / p99, {rate} req/s open loop, 16 conns"),
            format!(
                "{} / {}",
                us(r.median(&format!("b7.sidecar.{op}_p50_us"))),
                us(r.median(&format!("b7.sidecar.{op}_p99_us")))
            ),
            format!(
                "redis-benchmark -c 1 {upper} p50 {}",
                us(r.median(&format!("b7.rb1.{op}_p50_us")))
            ),
            format!("{} added p50", signed_us(added)),
            "reference (the target is the own share)",
            Verdict::Info,
        ));
    }
    for (op, limit) in [("get", 0.30), ("set", 0.25)] {
        let ratio = r.ratio(
            &format!("b7.sidecar.{op}_rps"),
            &format!("b7.rb16.{op}_rps"),
        );
        let upper = op.to_uppercase();
        out.push(row(
            "B7",
            format!("state {upper} throughput, 16 conns closed loop"),
            rps(r.median(&format!("b7.sidecar.{op}_rps"))),
            format!(
                "redis-benchmark -c 16 {upper} {}",
                rps(r.median(&format!("b7.rb16.{op}_rps")))
            ),
            format!("{} redis-benchmark", times(ratio)),
            format!("≥ {limit:.2}×"),
            at_least(ratio, limit),
        ));
    }
}

/// The summary rows, in suite order.
pub fn rows(r: &Results) -> Vec<Row> {
    let mut out = Vec::new();
    super::hop_rows::b1_rows(r, &mut out);
    super::hop_rows::b1m_rows(r, &mut out);
    super::hop_rows::b2_rows(r, &mut out);
    super::hop_rows::b3_rows(r, &mut out);
    b4_rows(r, &mut out);
    b5_rows(r, &mut out);
    b7_rows(r, &mut out);
    super::b10_rows::b10_rows(r, &mut out);
    super::b8_rows::b8_rows(r, &mut out);
    super::b11_rows::b11_rows(r, &mut out);
    out
}
