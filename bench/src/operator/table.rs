//! B10's results: a Markdown table per size point (targets judged), and the same figures as
//! `scripts/bench.sh` measurement records for its report.

use super::{RunResult, SizePoint};

/// B10's targets (issue 17), at 5 000 workloads + 5 000 Components (15 000 cached objects).
pub const TARGET_RECONCILES_PER_S: f64 = 1000.0;
/// RSS at rest.
pub const TARGET_RSS_MB: f64 = 64.0;
pub const TARGET_FIRST_RECONCILE_MS: f64 = 300.0;
pub const TARGET_SIDECAR_MB: f64 = 25.0;
/// The RSS target applies from this many cached objects on.
pub const RSS_TARGET_FROM: usize = 15_000;

/// The figures of `points` as `scripts/bench.sh` records (`m <key> <round> <value>`), keys
/// `b10.n` and `b10.{real,noop}.{first_reconcile_ms,done_s,reconciles_per_s,peak_rss_kb,
/// rest_rss_kb,stop_ms,converged}`; only the largest size point is recorded.
pub fn records(points: &[SizePoint], round: u32) -> String {
    let Some(p) = points.iter().max_by_key(|p| p.n) else {
        return String::new();
    };
    let mut out = format!("m\tb10.n\t{round}\t{}\n", p.n);
    for (name, run) in [("real", &p.real), ("noop", &p.baseline)] {
        let values = [
            (
                "first_reconcile_ms",
                run.first_reconcile.as_secs_f64() * 1e3,
            ),
            ("done_s", run.done.as_secs_f64()),
            ("reconciles_per_s", run.reconciles_per_s),
            ("peak_rss_kb", run.peak_rss_kb as f64),
            ("rest_rss_kb", run.rest_rss_kb as f64),
            ("converged", if run.converged { 1.0 } else { 0.0 }),
        ];
        let stop = run.stop.map(|d| ("stop_ms", d.as_secs_f64() * 1e3));
        for (key, value) in values.into_iter().chain(stop) {
            if value.is_finite() {
                out.push_str(&format!("m\tb10.{name}.{key}\t{round}\t{value:.1}\n"));
            }
        }
    }
    out
}

/// The results as a Markdown table: one block of rows per size, then the binary sizes.
pub fn table(points: &[SizePoint], sizes: &[(&str, u64)]) -> String {
    let mb = |kb: u64| kb as f64 / 1024.0;
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let mut out = String::from(
        "| N (cached objects) | measure | tandem-operator | no-op baseline | real / baseline | target |\n\
         |---|---|---|---|---|---|\n",
    );
    for p in points {
        let (r, b) = (&p.real, &p.baseline);
        let cached = 3 * p.n;
        let rows = [
            (
                "first reconcile (ms from exec)",
                r.first_reconcile.as_secs_f64() * 1e3,
                b.first_reconcile.as_secs_f64() * 1e3,
                format!(
                    "≤ {TARGET_FIRST_RECONCILE_MS} ms: {}",
                    verdict(r.first_reconcile.as_secs_f64() * 1e3 <= TARGET_FIRST_RECONCILE_MS)
                ),
            ),
            (
                "all done (s from exec)",
                r.done.as_secs_f64(),
                b.done.as_secs_f64(),
                if r.converged {
                    String::new()
                } else {
                    format!(
                        "NOT converged at the timeout: {}/{} Components judged, {}/{} Services",
                        r.judged, p.n, r.services, p.n
                    )
                },
            ),
            (
                "reconciles in the window",
                r.reconciles as f64,
                b.reconciles as f64,
                String::new(),
            ),
            (
                "reconciles/s",
                r.reconciles_per_s,
                b.reconciles_per_s,
                format!(
                    "≥ {TARGET_RECONCILES_PER_S}: {}",
                    verdict(r.reconciles_per_s >= TARGET_RECONCILES_PER_S)
                ),
            ),
            (
                "peak RSS (VmHWM, MB)",
                mb(r.peak_rss_kb),
                mb(b.peak_rss_kb),
                String::new(),
            ),
            (
                "RSS at rest (MB)",
                mb(r.rest_rss_kb),
                mb(b.rest_rss_kb),
                if cached >= RSS_TARGET_FROM {
                    format!(
                        "≤ {TARGET_RSS_MB} MB at 15 k cached: {}",
                        verdict(mb(r.rest_rss_kb) <= TARGET_RSS_MB)
                    )
                } else {
                    String::new()
                },
            ),
        ];
        let stop = |run: &RunResult| run.stop.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        let rows = rows.into_iter().chain([(
            "exit after SIGTERM (ms; NaN: killed after 15 s)",
            stop(r),
            stop(b),
            String::new(),
        )]);
        for (what, real, baseline, target) in rows {
            out.push_str(&format!(
                "| {} ({cached}) | {what} | {real:.1} | {baseline:.1} | {:.2} | {target} |\n",
                p.n,
                real / baseline
            ));
        }
    }
    for (name, bytes) in sizes {
        let size = *bytes as f64 / (1024.0 * 1024.0);
        let target = if *name == "tandem-sidecar" {
            format!(
                "≤ {TARGET_SIDECAR_MB} MB: {}",
                verdict(size <= TARGET_SIDECAR_MB)
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| | {name} stripped release binary (MB) | {size:.1} | | | {target} |\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn table_marks_missed_targets() {
        let run = |per_s, first_ms, rss_kb| RunResult {
            first_reconcile: Duration::from_millis(first_ms),
            done: Duration::from_secs(3),
            converged: true,
            judged: 0,
            services: 0,
            reconciles: 4000,
            reconciles_per_s: per_s,
            peak_rss_kb: rss_kb,
            rest_rss_kb: rss_kb,
            stop: None,
        };
        let point = SizePoint {
            n: 5000,
            baseline: run(4000.0, 100, 10_000),
            real: run(400.0, 150, 20_000),
        };
        let text = table(&[point], &[("tandem-sidecar", 20 << 20)]);
        assert!(
            text.contains("| reconciles/s | 400.0 | 4000.0 | 0.10 | ≥ 1000: MISSED |"),
            "{text}"
        );
        assert!(text.contains("≤ 300 ms: met"), "{text}");
        assert!(text.contains("≤ 64 MB at 15 k cached: met"), "{text}");
        assert!(
            text.contains("tandem-sidecar stripped release binary (MB) | 20.0"),
            "{text}"
        );
    }

    #[test]
    fn records_the_largest_size_point_for_the_report() {
        let run = |per_s, stop| RunResult {
            first_reconcile: Duration::from_millis(250),
            done: Duration::from_millis(9500),
            converged: true,
            judged: 5000,
            services: 5000,
            reconciles: 20_000,
            reconciles_per_s: per_s,
            peak_rss_kb: 60_000,
            rest_rss_kb: 50_000,
            stop,
        };
        let point = |n| SizePoint {
            n,
            baseline: run(f64::NAN, None),
            real: run(2000.0, Some(Duration::from_millis(40))),
        };
        let text = records(&[point(5000), point(1000)], 2);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "m\tb10.n\t2\t5000");
        assert!(
            lines.contains(&"m\tb10.real.reconciles_per_s\t2\t2000.0"),
            "{text}"
        );
        assert!(
            lines.contains(&"m\tb10.real.first_reconcile_ms\t2\t250.0"),
            "{text}"
        );
        assert!(lines.contains(&"m\tb10.real.stop_ms\t2\t40.0"), "{text}");
        assert!(
            lines.contains(&"m\tb10.noop.rest_rss_kb\t2\t50000.0"),
            "{text}"
        );
        assert!(
            !text.contains("b10.noop.reconciles_per_s") && !text.contains("b10.noop.stop_ms"),
            "NaN and a kill are left out: {text}"
        );
        assert_eq!(records(&[], 1), "");
    }
}
