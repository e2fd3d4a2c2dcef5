//! B10's rows: `tandem-operator` against a real kube-apiserver (`operator-bench`), the real
//! reconciles next to the same binary with `--noop-reconcile` over the same objects, one run per
//! round. Keys (`scripts/bench.sh`, B10, written by `operator-bench --records`): `b10.n` and
//! `b10.{real,noop}.{first_reconcile_ms,done_s,reconciles_per_s,peak_rss_kb,rest_rss_kb,stop_ms,
//! converged}`.

use super::rows::{Row, at_most, failed_row, row};
use super::{Results, Verdict};

/// The targets at 5 000 workloads + 5 000 Components (issue 17).
const RECONCILES_PER_S: f64 = 1000.0;
const REST_RSS_MB: f64 = 64.0;
const FIRST_RECONCILE_MS: f64 = 300.0;
/// Below this many objects of each kind the figures are a smoke test, not judged.
const JUDGED_FROM_N: f64 = 5000.0;

fn figure(v: Option<f64>, unit: &str, digits: usize) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.digits$} {unit}"))
}

fn mb(kb: Option<f64>) -> Option<f64> {
    kb.map(|kb| kb / 1024.0)
}

/// `value ≥ limit`, or how far below it is.
fn at_least_rate(value: Option<f64>, limit: f64) -> Verdict {
    match value {
        Some(v) if v >= limit => Verdict::Met,
        Some(v) => Verdict::Missed(format!(
            "{v:.0}/s vs ≥ {limit:.0}/s (needs {:.0} % more)",
            (limit / v - 1.0) * 100.0
        )),
        None => Verdict::Missed("no measurement".to_owned()),
    }
}

pub(super) fn b10_rows(r: &Results, out: &mut Vec<Row>) {
    if let Some(why) = r.failed("B10") {
        out.push(failed_row("B10", "operator benchmark", "", why));
        return;
    }
    let Some(n) = r.median("b10.n") else {
        return;
    };
    let judged = n >= JUDGED_FROM_N;
    let judge = |verdict: Verdict| if judged { verdict } else { Verdict::Info };
    let target = |text: String| {
        if judged {
            text
        } else {
            format!("{text} (at N = 5 000; this run N = {n:.0})")
        }
    };
    let objects = format!("N = {n:.0} workloads + {n:.0} Components");
    let (real, noop) = (
        |k: &str| format!("b10.real.{k}"),
        |k: &str| format!("b10.noop.{k}"),
    );
    let converged = r.median(&real("converged"));
    if converged.is_some_and(|c| c < 1.0) {
        out.push(row(
            "B10",
            format!("{objects}: convergence"),
            "not every object done before the timeout",
            "–",
            "–",
            "all converged",
            judge(Verdict::Missed("did not converge".to_owned())),
        ));
    }
    let per_s = r.median(&real("reconciles_per_s"));
    out.push(row(
        "B10",
        format!("{objects}: reconciles/s, first reconcile → all done"),
        figure(per_s, "/s", 0),
        format!(
            "no-op reconciles {}; all done after {} (no-op {})",
            figure(r.median(&noop("reconciles_per_s")), "/s", 0),
            figure(r.median(&real("done_s")), "s", 1),
            figure(r.median(&noop("done_s")), "s", 1)
        ),
        "–",
        target(format!("≥ {RECONCILES_PER_S:.0}/s")),
        judge(at_least_rate(per_s, RECONCILES_PER_S)),
    ));
    let first = r.median(&real("first_reconcile_ms"));
    out.push(row(
        "B10",
        format!("{objects}: first reconcile (ms from exec)"),
        figure(first, "ms", 0),
        format!(
            "no-op {}",
            figure(r.median(&noop("first_reconcile_ms")), "ms", 0)
        ),
        "–",
        target(format!("≤ {FIRST_RECONCILE_MS:.0} ms")),
        judge(at_most(first, FIRST_RECONCILE_MS, "ms")),
    ));
    let rest = mb(r.median(&real("rest_rss_kb")));
    out.push(row(
        "B10",
        format!("{objects}: RSS at rest, 5 s after all done (peak)"),
        format!(
            "{} ({})",
            figure(rest, "MB", 1),
            figure(mb(r.median(&real("peak_rss_kb"))), "MB", 1)
        ),
        format!(
            "no-op {} ({})",
            figure(mb(r.median(&noop("rest_rss_kb"))), "MB", 1),
            figure(mb(r.median(&noop("peak_rss_kb"))), "MB", 1)
        ),
        "–",
        target(format!("≤ {REST_RSS_MB:.0} MB")),
        judge(at_most(rest, REST_RSS_MB, "MB")),
    ));
    out.push(row(
        "B10",
        format!("{objects}: exit after SIGTERM"),
        figure(r.median(&real("stop_ms")), "ms", 0),
        format!("no-op {}", figure(r.median(&noop("stop_ms")), "ms", 0)),
        "–",
        "reference",
        Verdict::Info,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(text: &str) -> Vec<Row> {
        let mut out = Vec::new();
        b10_rows(&Results::parse(text), &mut out);
        out
    }

    fn find<'a>(rows: &'a [Row], what: &str) -> &'a Row {
        rows.iter()
            .find(|row| row.measure.contains(what))
            .unwrap_or_else(|| panic!("no row with {what:?} in {rows:#?}"))
    }

    const ROUNDS: &str = "m\tb10.n\t1\t5000\nm\tb10.n\t2\t5000\nm\tb10.n\t3\t5000\n\
        m\tb10.real.reconciles_per_s\t1\t900\nm\tb10.real.reconciles_per_s\t2\t1200\n\
        m\tb10.real.reconciles_per_s\t3\t1100\n\
        m\tb10.real.first_reconcile_ms\t1\t350\nm\tb10.real.first_reconcile_ms\t2\t280\n\
        m\tb10.real.first_reconcile_ms\t3\t400\n\
        m\tb10.real.rest_rss_kb\t1\t40960\nm\tb10.real.peak_rss_kb\t1\t61440\n\
        m\tb10.real.converged\t1\t1\nm\tb10.noop.first_reconcile_ms\t1\t200\n";

    #[test]
    fn medians_over_rounds_are_judged_at_5000() {
        let rows = rows_of(ROUNDS);
        let rate = find(&rows, "reconciles/s");
        assert_eq!(rate.tandem, "1100 /s");
        assert_eq!(rate.verdict, Verdict::Met);
        let first = find(&rows, "first reconcile (ms");
        assert!(
            matches!(first.verdict, Verdict::Missed(ref m) if m.starts_with("50.0 ms over")),
            "{first:?}"
        );
        let rss = find(&rows, "RSS at rest");
        assert_eq!(rss.tandem, "40.0 MB (60.0 MB)");
        assert_eq!(rss.verdict, Verdict::Met);
        assert!(!rows.iter().any(|r| r.measure.contains("convergence")));
    }

    #[test]
    fn a_small_run_is_not_judged_and_a_failure_is_a_row() {
        let rows = rows_of("m\tb10.n\t1\t500\nm\tb10.real.reconciles_per_s\t1\t10\n");
        let rate = find(&rows, "reconciles/s");
        assert_eq!(rate.verdict, Verdict::Info);
        assert!(rate.target.contains("this run N = 500"), "{}", rate.target);
        let failed = rows_of("fail\tB10\tno envtest binaries\n");
        assert!(matches!(failed.as_slice(), [row] if matches!(row.verdict, Verdict::Failed(_))));
        assert!(rows_of("m\tb1.direct.p50_us\t1\t1\n").is_empty());
        let stuck = rows_of("m\tb10.n\t1\t5000\nm\tb10.real.converged\t1\t0\n");
        assert!(matches!(
            find(&stuck, "convergence").verdict,
            Verdict::Missed(_)
        ));
    }
}
