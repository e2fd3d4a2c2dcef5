//! The rows of the invocation stack, B1–B3: each sidecar figure against an nginx hop measured in
//! the same round (issue 17's targets: the sidecar as cheap as nginx, hop for hop).

use super::Results;
use super::Verdict;
use super::rows::{Row, at_least, failed_row, row, rps, signed_us, times, us};

/// `value ≤ limit` for a ratio, or by how much it is over.
fn ratio_at_most(value: Option<f64>, limit: f64) -> Verdict {
    match value {
        None => Verdict::Missed("no measurement".to_owned()),
        Some(v) if v <= limit => Verdict::Met,
        Some(v) => Verdict::Missed(format!("{v:.2}× vs ≤ {limit:.2}×")),
    }
}

pub(super) fn b1_rows(r: &Results, out: &mut Vec<Row>) {
    if let Some(why) = r.failed("B1") {
        out.push(failed_row("B1", "invocation latency", "", why));
        return;
    }
    if !r.has_prefix("b1.") {
        return;
    }
    let rate = r.meta("rate").unwrap_or("1000");
    for (pct, limit) in [("p50", 2.0), ("p99", 2.5)] {
        let key = |path: &str| format!("b1.{path}.{pct}_us");
        let (chain, direct, nginx) = (key("chain"), key("direct"), key("nginx"));
        let added = r.delta(&chain, &direct);
        let nginx_added = r.delta(&nginx, &direct);
        // Per round: (chain − direct) / (nginx − direct), then the median.
        let hops = r.median_by_round(&[&chain, &direct, &nginx], |v| {
            let one = v[2] - v[1];
            if one > 0.0 {
                (v[0] - v[1]) / one
            } else {
                f64::NAN
            }
        });
        out.push(row(
            "B1",
            format!("invocation latency {pct}, {rate} req/s open loop"),
            format!(
                "two sidecars {} ({})",
                us(r.median(&chain)),
                signed_us(added)
            ),
            format!(
                "direct {}; one nginx hop {} ({})",
                us(r.median(&direct)),
                us(r.median(&nginx)),
                signed_us(nginx_added)
            ),
            format!("{} one nginx hop's added", times(hops)),
            format!("≤ {limit:.1}× one nginx hop"),
            ratio_at_most(hops, limit),
        ));
    }
    let requested: f64 = rate.parse().unwrap_or(1000.0);
    let achieved: Vec<f64> = ["direct", "nginx", "chain"]
        .iter()
        .flat_map(|p| r.all(&format!("b1.{p}.rps")))
        .collect();
    let min = achieved.iter().copied().reduce(f64::min);
    out.push(row(
        "B1",
        "achieved rate (all B1 runs)",
        format!("min {}", rps(min)),
        format!("{requested:.0} req/s requested"),
        min.map_or("n/a".to_owned(), |m| {
            format!("{:.1} %", m / requested * 100.0)
        }),
        "≥ 95 % of requested",
        match min {
            Some(m) if m >= 0.95 * requested => Verdict::Met,
            Some(m) => Verdict::Missed(format!("{:.1} % of the rate", m / requested * 100.0)),
            None => Verdict::Missed("no measurement".to_owned()),
        },
    ));
}

/// B2 with one load generator: `prefix` is `b2` (oha) or `b2wrk` (wrk).
fn b2_tool_rows(r: &Results, out: &mut Vec<Row>, prefix: &str, tool: &str) {
    let k = |path: &str| format!("{prefix}.{path}.rps");
    if r.median(&k("nginx")).is_none() {
        return;
    }
    out.push(row(
        "B2",
        format!("throughput, nginx hops ({tool}, closed loop, 16 conns)"),
        "–",
        format!(
            "one hop {}; two in series {}; direct {}",
            rps(r.median(&k("nginx"))),
            rps(r.median(&k("nginx2"))),
            rps(r.median(&k("direct")))
        ),
        format!("{} direct", times(r.ratio(&k("nginx"), &k("direct")))),
        "reference",
        Verdict::Info,
    ));
    let one = r.ratio(&k("sidecar1"), &k("nginx"));
    out.push(row(
        "B2",
        format!("throughput, one sidecar hop (self-invocation; {tool})"),
        rps(r.median(&k("sidecar1"))),
        format!("nginx hop {}", rps(r.median(&k("nginx")))),
        format!("{} nginx hop", times(one)),
        "≥ 0.95× nginx hop",
        at_least(one, 0.95),
    ));
    let chain = r.ratio(&k("chain"), &k("nginx2"));
    out.push(row(
        "B2",
        format!("throughput, two-sidecar chain ({tool})"),
        rps(r.median(&k("chain"))),
        format!("two nginx hops {}", rps(r.median(&k("nginx2")))),
        format!("{} two nginx hops", times(chain)),
        "≥ 0.90× two nginx hops",
        at_least(chain, 0.9),
    ));
}

pub(super) fn b2_rows(r: &Results, out: &mut Vec<Row>) {
    if let Some(why) = r.failed("B2") {
        out.push(failed_row("B2", "throughput", "", why));
        return;
    }
    if !r.has_prefix("b2") {
        return;
    }
    b2_tool_rows(r, out, "b2", "oha");
    b2_tool_rows(r, out, "b2wrk", "wrk");
    // The open-loop rate must stay ≤ 50 % of the slowest path's saturation.
    if let (Some(chain_rps), Some(rate)) = (
        r.median("b2.chain.rps"),
        r.meta("rate").and_then(|v| v.parse::<f64>().ok()),
    ) {
        out.push(row(
            "B2",
            "B1's rate vs the slowest path's saturation",
            format!("{rate:.0} req/s"),
            format!("chain saturates at {}", rps(Some(chain_rps))),
            format!("{:.0} %", rate / chain_rps * 100.0),
            "≤ 50 % (method)",
            if rate <= 0.5 * chain_rps {
                Verdict::Met
            } else {
                Verdict::Missed("B1's open-loop latency is measured too close to saturation".into())
            },
        ));
    }
}

pub(super) fn b3_rows(r: &Results, out: &mut Vec<Row>) {
    let nginx = r.median("b3.nginx.nginx.cpu_us_per_req");
    let echo = r.median("b3.direct.echo.cpu_us_per_req");
    let at_rate = [
        ("sidecar A (caller)", "b3.chain.sidecar_a.cpu_us_per_req"),
        ("sidecar B (callee)", "b3.chain.sidecar_b.cpu_us_per_req"),
    ];
    for (name, key) in at_rate.into_iter().filter(|_| r.has_prefix("b3.")) {
        let ratio = r.ratio(key, "b3.nginx.nginx.cpu_us_per_req");
        out.push(row(
            "B3",
            format!("CPU per request, {name}"),
            us(r.median(key)),
            format!("nginx worker {}; echo app {}", us(nginx), us(echo)),
            format!("{} nginx", times(ratio)),
            "≤ 1.0× the nginx worker",
            ratio_at_most(ratio, 1.0),
        ));
    }
    for (prefix, tool) in [("b2cpu", "oha"), ("b2wrkcpu", "wrk")] {
        if !r.has_prefix(&format!("{prefix}.")) {
            continue;
        }
        let k =
            |path: &str, proc: &str| r.median(&format!("{prefix}.{path}.{proc}.cpu_us_per_req"));
        out.push(row(
            "B3",
            format!("CPU per request at saturation (B2, closed loop, {tool})"),
            format!(
                "chain: A {} / B {}; one hop: B {}",
                us(k("chain", "sidecar_a")),
                us(k("chain", "sidecar_b")),
                us(k("sidecar1", "sidecar_b"))
            ),
            format!(
                "nginx worker {} (two hops {}); echo app {}",
                us(k("nginx", "nginx")),
                us(k("nginx2", "nginx")),
                us(k("direct", "echo"))
            ),
            format!(
                "one hop {} nginx",
                times(r.ratio(
                    &format!("{prefix}.sidecar1.sidecar_b.cpu_us_per_req"),
                    &format!("{prefix}.nginx.nginx.cpu_us_per_req")
                ))
            ),
            "reference (the target is at the B1 rate)",
            Verdict::Info,
        ));
    }
}

/// B1M: the chain with mTLS between the sidecars against the same chain in plaintext.
pub(super) fn b1m_rows(r: &Results, out: &mut Vec<Row>) {
    if let Some(why) = r.failed("B1M") {
        out.push(failed_row("B1M", "invocation latency with mTLS", "", why));
        return;
    }
    if !r.has_prefix("b1m.") {
        return;
    }
    for pct in ["p50", "p99"] {
        let key = |path: &str| format!("b1m.{path}.{pct}_us");
        let added = r.delta(&key("mtls"), &key("direct"));
        out.push(row(
            "B1M",
            format!("two sidecars with mTLS, {pct} at B1's rate"),
            us(r.median(&key("mtls"))),
            format!(
                "plaintext {}; direct {}",
                us(r.median(&key("plain"))),
                us(r.median(&key("direct")))
            ),
            format!(
                "{} vs direct; {} vs plaintext",
                signed_us(added),
                signed_us(r.delta(&key("mtls"), &key("plain")))
            ),
            // Issue 15: two sidecars over mTLS add ≤ 150 µs p50 over direct.
            if pct == "p50" {
                "≤ +150 µs over direct"
            } else {
                "reference"
            },
            if pct == "p50" {
                super::rows::at_most(added, 150.0, "µs")
            } else {
                Verdict::Info
            },
        ));
    }
    out.push(row(
        "B1M",
        "CPU per request, both sidecars together",
        format!("mTLS {}", us(r.median("b1m.mtls.cpu_us_per_req"))),
        format!("plaintext {}", us(r.median("b1m.plain.cpu_us_per_req"))),
        format!(
            "{} plaintext",
            times(r.ratio("b1m.mtls.cpu_us_per_req", "b1m.plain.cpu_us_per_req"))
        ),
        "reference",
        Verdict::Info,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b1m(text: &str) -> Vec<Row> {
        let mut out = Vec::new();
        b1m_rows(&Results::parse(text), &mut out);
        out
    }

    #[test]
    fn b1m_judges_mtls_against_direct_per_round() {
        // Per round: 250 − 120 = 130 and 300 − 140 = 160 → median 145 µs ≤ 150.
        let rows = b1m(
            "m\tb1m.direct.p50_us\t1\t120\nm\tb1m.mtls.p50_us\t1\t250\nm\tb1m.plain.p50_us\t1\t230\n\
             m\tb1m.direct.p50_us\t2\t140\nm\tb1m.mtls.p50_us\t2\t300\nm\tb1m.plain.p50_us\t2\t260\n",
        );
        let p50 = rows
            .iter()
            .find(|r| r.measure.contains("p50"))
            .expect("p50 row");
        assert_eq!(p50.verdict, Verdict::Met);
        assert!(
            p50.result
                .starts_with("+145 µs vs direct; +30 µs vs plaintext"),
            "{}",
            p50.result
        );
        let slow = b1m("m\tb1m.direct.p50_us\t1\t100\nm\tb1m.mtls.p50_us\t1\t400\n");
        let p50 = slow
            .iter()
            .find(|r| r.measure.contains("p50"))
            .expect("p50 row");
        assert!(matches!(p50.verdict, Verdict::Missed(ref m) if m.starts_with("150.0 µs over")));
        assert!(b1m("fail\tB1M\tbm did not start\n")[0].verdict != Verdict::Met);
    }
}
