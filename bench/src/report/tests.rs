//! The report over hand-written records: medians, deltas, verdicts.

use super::rows::at_least;
use super::*;

const SAMPLE: &str = "meta\tdate\t2026-01-01\nmeta\trate\t1000\n\
    m\tb1.direct.p50_us\t1\t100\nm\tb1.chain.p50_us\t1\t300\nm\tb1.nginx.p50_us\t1\t150\n\
    m\tb1.direct.p50_us\t2\t110\nm\tb1.chain.p50_us\t2\t180\nm\tb1.nginx.p50_us\t2\t150\n\
    m\tb1.direct.p50_us\t3\t90\nm\tb1.chain.p50_us\t3\t200\nm\tb1.nginx.p50_us\t3\t140\n\
    m\tb1.direct.rps\t1\t999\nm\tb1.chain.rps\t1\t940\n\
    m\tb2.direct.rps\t1\t40000\nm\tb2.nginx.rps\t1\t16000\n\
    m\tb2.sidecar1.rps\t1\t15500\nm\tb2.chain.rps\t1\t12000\nm\tb2.nginx2.rps\t1\t12500\n\
    round\tB1\t1\t1\t0.42\tok\n\
    fail\tB7\tstate.redis did not start\n\
    bogus line\n";

#[test]
fn medians_of_per_round_deltas() {
    let r = Results::parse(SAMPLE);
    assert_eq!(r.median("b1.direct.p50_us"), Some(100.0));
    // Per round: 200, 70, 110 → median 110 (not 200 − 100).
    assert_eq!(r.delta("b1.chain.p50_us", "b1.direct.p50_us"), Some(110.0));
    assert_eq!(r.warns.len(), 1);
    assert_eq!(r.meta("rate"), Some("1000"));
}

#[test]
fn verdicts() {
    let r = Results::parse(SAMPLE);
    let rows = rows(&r);
    let p50 = rows
        .iter()
        .find(|row| row.measure.contains("p50"))
        .expect("p50 row");
    // Added per round: 200/50, 70/40, 110/50 → median 2.2× one nginx hop (limit 2.0×).
    assert!(matches!(p50.verdict, Verdict::Missed(ref m) if m.starts_with("2.20× vs")));
    let rate = rows
        .iter()
        .find(|row| row.measure.contains("achieved"))
        .expect("rate row");
    assert!(matches!(rate.verdict, Verdict::Missed(_)), "940 < 950");
    let one = rows
        .iter()
        .find(|row| row.measure.contains("one sidecar"))
        .expect("one hop");
    assert_eq!(one.verdict, Verdict::Met, "15500/16000 = 0.97");
    let chain = rows
        .iter()
        .find(|row| row.measure.contains("chain (oha)"))
        .expect("chain");
    assert_eq!(
        chain.verdict,
        Verdict::Met,
        "12000/12500 = 0.96 two nginx hops"
    );
    let b7 = rows.iter().find(|row| row.bench == "B7").expect("b7");
    assert!(matches!(b7.verdict, Verdict::Failed(_)));
    let md = render(&r);
    assert!(md.contains("| B1 |") && md.contains("**FAILED**"));
}

#[test]
fn b4_reports_the_anonymous_part_of_the_idle_rss_without_judging_it() {
    let r = Results::parse(
        "m\tb4.sidecar_a.idle_rss_kb\t0\t18432\nm\tb4.sidecar_b.idle_rss_kb\t0\t17408\n\
         m\tb4.sidecar_a.idle_anon_kb\t0\t3072\nm\tb4.sidecar_b.idle_anon_kb\t0\t2560\n",
    );
    let rows = rows(&r);
    let total = rows
        .iter()
        .find(|row| row.measure.starts_with("idle RSS"))
        .expect("idle row");
    assert!(
        matches!(total.verdict, Verdict::Missed(_)),
        "18 MiB > 10 MiB"
    );
    let anon = rows
        .iter()
        .find(|row| row.measure.starts_with("idle anonymous"))
        .expect("anonymous row");
    assert_eq!(anon.verdict, Verdict::Info);
    assert_eq!(anon.tandem, "3.0 MiB / 2.5 MiB");
}

#[test]
fn at_least_says_how_far() {
    assert_eq!(at_least(Some(0.5), 0.25), Verdict::Met);
    assert!(
        matches!(at_least(Some(0.2), 0.25), Verdict::Missed(m) if m.contains("needs 25 % more"))
    );
}
