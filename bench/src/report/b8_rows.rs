//! B8's rows: pub/sub end to end through one sidecar (`pubsub-bench`, run by `scripts/bench.sh`
//! with `--records`). Keys: `b8.memory.{rps,lost,latency_lost,cpu_us_per_msg,ack_p50_ms,
//! ack_p99_ms,delivery_p50_ms,delivery_p99_ms}` for `pubsub.in-memory` and
//! `b8.redis.{rps,xadd_rps,lost,cpu_us_per_msg}` for `pubsub.redis` against `redis-benchmark`'s
//! XADD rate on the same redis-server, one value per round.

use super::rows::{Row, at_least, at_most, failed_row, row, times};
use super::{Results, Verdict};

/// Issue 17's targets.
const MEMORY_RPS: f64 = 30_000.0;
const ACK_P99_MS: f64 = 0.5;
const DELIVERY_P99_MS: f64 = 1.0;
const REDIS_VS_XADD: f64 = 0.5;

fn msgs(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.0} msgs/s"))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.2} ms"))
}

fn cpu(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("; sidecar CPU {v:.1} µs/msg"))
}

/// Messages answered 204 and never delivered, over every round of `keys`.
fn lost_row(r: &Results, label: &str, keys: &[&str], out: &mut Vec<Row>) {
    let lost: f64 = keys.iter().flat_map(|k| r.all(k)).sum();
    out.push(row(
        "B8",
        format!("{label}: lost (acknowledged, never delivered), all rounds"),
        format!("{lost:.0}"),
        "–",
        "–",
        "0",
        if lost == 0.0 {
            Verdict::Met
        } else {
            Verdict::Missed(format!("{lost:.0} lost"))
        },
    ));
}

fn memory_rows(r: &Results, out: &mut Vec<Row>) {
    let rate = r.median("b8.memory.rps");
    out.push(row(
        "B8",
        "B8a in-memory pub/sub throughput (publish → delivery, closed loop)",
        format!(
            "{}{}",
            msgs(rate),
            cpu(r.median("b8.memory.cpu_us_per_msg"))
        ),
        "–",
        format!("{} the target", times(rate.map(|v| v / MEMORY_RPS))),
        format!("≥ {MEMORY_RPS:.0} msgs/s"),
        at_least(rate.map(|v| v / MEMORY_RPS), 1.0),
    ));
    for (what, key, limit) in [
        ("publish-ack", "ack", ACK_P99_MS),
        ("publish → delivery", "delivery", DELIVERY_P99_MS),
    ] {
        let p99 = r.median(&format!("b8.memory.{key}_p99_ms"));
        out.push(row(
            "B8",
            format!("B8a {what} latency p99 (p50), 1 000 msg/s open loop"),
            format!(
                "{} ({})",
                ms(p99),
                ms(r.median(&format!("b8.memory.{key}_p50_ms")))
            ),
            "–",
            "–",
            format!("p99 ≤ {limit} ms"),
            at_most(p99, limit, "ms"),
        ));
    }
    lost_row(r, "B8a", &["b8.memory.lost", "b8.memory.latency_lost"], out);
}

fn redis_rows(r: &Results, out: &mut Vec<Row>) {
    let ratio = r.ratio("b8.redis.rps", "b8.redis.xadd_rps");
    out.push(row(
        "B8",
        "B8b Redis Streams pub/sub throughput (publish → delivery, closed loop)",
        format!(
            "{}{}",
            msgs(r.median("b8.redis.rps")),
            cpu(r.median("b8.redis.cpu_us_per_msg"))
        ),
        format!(
            "redis-benchmark -c 50 XADD: {}",
            msgs(r.median("b8.redis.xadd_rps"))
        ),
        format!("{} XADD", times(ratio)),
        format!("≥ {REDIS_VS_XADD:.2}× XADD"),
        at_least(ratio, REDIS_VS_XADD),
    ));
    lost_row(r, "B8b", &["b8.redis.lost"], out);
}

/// B8's rows, after the others.
pub(super) fn b8_rows(r: &Results, out: &mut Vec<Row>) {
    if let Some(why) = r.failed("B8") {
        out.push(failed_row("B8", "pub/sub end to end", "", why));
        return;
    }
    if r.median("b8.memory.rps").is_some() {
        memory_rows(r, out);
    }
    if r.median("b8.redis.rps").is_some() {
        redis_rows(r, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(text: &str) -> Vec<Row> {
        let mut out = Vec::new();
        b8_rows(&Results::parse(text), &mut out);
        out
    }

    fn find<'a>(rows: &'a [Row], what: &str) -> &'a Row {
        rows.iter()
            .find(|row| row.measure.contains(what))
            .unwrap_or_else(|| panic!("no row with {what:?} in {rows:#?}"))
    }

    #[test]
    fn judges_medians_and_per_round_ratios_against_issue_17s_targets() {
        let rows = rows_of(
            "m\tb8.memory.rps\t1\t20000\nm\tb8.memory.rps\t2\t31000\nm\tb8.memory.rps\t3\t32000\n\
             m\tb8.memory.ack_p99_ms\t1\t0.4\nm\tb8.memory.ack_p50_ms\t1\t0.2\n\
             m\tb8.memory.delivery_p99_ms\t1\t1.5\nm\tb8.memory.lost\t1\t0\n\
             m\tb8.memory.latency_lost\t1\t0\n\
             m\tb8.redis.rps\t1\t10000\nm\tb8.redis.xadd_rps\t1\t40000\n\
             m\tb8.redis.rps\t2\t30000\nm\tb8.redis.xadd_rps\t2\t50000\n\
             m\tb8.redis.rps\t3\t20000\nm\tb8.redis.xadd_rps\t3\t60000\n\
             m\tb8.redis.lost\t1\t0\nm\tb8.redis.lost\t2\t2\n",
        );
        assert_eq!(
            find(&rows, "in-memory pub/sub throughput").verdict,
            Verdict::Met
        );
        assert_eq!(find(&rows, "publish-ack").verdict, Verdict::Met);
        assert!(matches!(
            find(&rows, "publish → delivery latency").verdict,
            Verdict::Missed(_)
        ));
        assert_eq!(find(&rows, "B8a: lost").verdict, Verdict::Met);
        // Per round: 0.25, 0.60, 0.33 → median 0.33, under 0.5.
        let redis = find(&rows, "Redis Streams");
        assert_eq!(redis.result, "0.33× XADD");
        assert!(matches!(redis.verdict, Verdict::Missed(_)));
        assert!(
            matches!(find(&rows, "B8b: lost").verdict, Verdict::Missed(ref m) if m == "2 lost")
        );
    }

    #[test]
    fn nothing_without_b8_and_one_failed_row_when_it_failed() {
        assert!(rows_of("m\tb1.direct.p50_us\t1\t1\n").is_empty());
        let rows = rows_of("fail\tB8\tpubsub-bench: redis-server did not start\n");
        assert!(matches!(rows.as_slice(), [row] if matches!(row.verdict, Verdict::Failed(_))));
    }
}
