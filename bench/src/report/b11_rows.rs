//! B11's rows: the gRPC paths (`grpc-bench`) against a direct gRPC call, an nginx `grpc_pass` hop
//! and the HTTP routes, all measured in the same rounds. Keys (`scripts/bench.sh`, B11):
//! `b11.<path>.{p50_us,p99_us,rps}` open loop, `b11t.<path>.rps` closed loop and
//! `b11cpu.<path>.<process>.cpu_us_per_req`, with paths `direct`, `nginx`, `proxy` (two sidecars,
//! `dapr-app-id`), `invoke` (`InvokeService`), `http` (`/v1.0/invoke`), `state_grpc`, `state_http`.

use super::rows::{Row, at_least, at_most, failed_row, row, rps, signed_us, times, us};
use super::{Results, Verdict};

/// The B11 target: two sidecars add at most this many times what one nginx hop adds (p50).
const ADDED_VS_NGINX_P50: f64 = 2.0;

/// `(path − direct) / (nginx − direct)` per round, median: how many nginx hops a path costs.
fn added_vs_nginx(r: &Results, path: &str, pct: &str) -> Option<f64> {
    let key = |p: &str| format!("b11.{p}.{pct}_us");
    r.median_by_round(&[&key(path), &key("direct"), &key("nginx")], |v| {
        let nginx_added = v[2] - v[1];
        if nginx_added > 0.0 {
            (v[0] - v[1]) / nginx_added
        } else {
            f64::NAN
        }
    })
}

fn latency_rows(r: &Results, out: &mut Vec<Row>) {
    let rate = r.meta("rate").unwrap_or("1000");
    let paths = [
        ("proxy", "gRPC proxy (dapr-app-id), two sidecars"),
        ("invoke", "InvokeService, two sidecars"),
        ("http", "HTTP /v1.0/invoke to the gRPC app, two sidecars"),
    ];
    for (path, label) in paths {
        for pct in ["p50", "p99"] {
            let key = |p: &str| format!("b11.{p}.{pct}_us");
            if r.median(&key(path)).is_none() {
                continue;
            }
            let ratio = added_vs_nginx(r, path, pct);
            let judged = path == "proxy" && pct == "p50";
            out.push(row(
                "B11",
                format!("{label}: latency {pct}, {rate} req/s open loop"),
                format!(
                    "{} ({} vs direct)",
                    us(r.median(&key(path))),
                    signed_us(r.delta(&key(path), &key("direct")))
                ),
                format!(
                    "direct {}; nginx grpc_pass hop {} ({})",
                    us(r.median(&key("direct"))),
                    us(r.median(&key("nginx"))),
                    signed_us(r.delta(&key("nginx"), &key("direct")))
                ),
                format!("{} the nginx hop's added latency", times(ratio)),
                if judged {
                    format!("≤ {ADDED_VS_NGINX_P50:.1}× the nginx hop's")
                } else {
                    "reference".to_owned()
                },
                if judged {
                    at_most(ratio, ADDED_VS_NGINX_P50, "×")
                } else {
                    Verdict::Info
                },
            ));
        }
    }
    let achieved: Vec<f64> = r
        .measurements
        .keys()
        .filter(|k| k.starts_with("b11.") && k.ends_with(".rps"))
        .flat_map(|k| r.all(k))
        .collect();
    let requested: f64 = rate.parse().unwrap_or(1000.0);
    let min = achieved.iter().copied().reduce(f64::min);
    out.push(row(
        "B11",
        "achieved rate (all B11 open-loop runs)",
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

fn throughput_rows(r: &Results, out: &mut Vec<Row>) {
    if r.median("b11t.proxy.rps").is_some() {
        out.push(row(
            "B11",
            "gRPC proxy throughput, two sidecars (closed loop, 16 conns)",
            rps(r.median("b11t.proxy.rps")),
            format!(
                "nginx grpc_pass hop {}; direct {}",
                rps(r.median("b11t.nginx.rps")),
                rps(r.median("b11t.direct.rps"))
            ),
            format!(
                "{} nginx hop",
                times(r.ratio("b11t.proxy.rps", "b11t.nginx.rps"))
            ),
            "reference",
            Verdict::Info,
        ));
    }
    for pct in ["p50", "p99"] {
        let key = |p: &str| format!("b11.{p}.{pct}_us");
        if r.median(&key("state_grpc")).is_none() {
            continue;
        }
        out.push(row(
            "B11",
            format!("GetState latency {pct} (in-memory store, open loop)"),
            format!("gRPC {}", us(r.median(&key("state_grpc")))),
            format!("HTTP GET /v1.0/state {}", us(r.median(&key("state_http")))),
            format!(
                "{} HTTP",
                times(r.ratio(&key("state_grpc"), &key("state_http")))
            ),
            "reference",
            Verdict::Info,
        ));
    }
    if r.median("b11t.state_grpc.rps").is_some() {
        let ratio = r.ratio("b11t.state_grpc.rps", "b11t.state_http.rps");
        out.push(row(
            "B11",
            "GetState throughput (in-memory store, closed loop, 16 conns)",
            format!("gRPC {}", rps(r.median("b11t.state_grpc.rps"))),
            format!(
                "HTTP GET /v1.0/state {}",
                rps(r.median("b11t.state_http.rps"))
            ),
            format!("{} HTTP", times(ratio)),
            "≥ 1.00× the HTTP route's",
            at_least(ratio, 1.0),
        ));
    }
}

fn cpu_rows(r: &Results, out: &mut Vec<Row>) {
    let nginx = r.median("b11cpu.nginx.nginx.cpu_us_per_req");
    for (path, label) in [
        ("proxy", "gRPC proxy"),
        ("invoke", "InvokeService"),
        ("http", "HTTP invoke"),
    ] {
        let a = r.median(&format!("b11cpu.{path}.sidecar_a.cpu_us_per_req"));
        let b = r.median(&format!("b11cpu.{path}.sidecar_b.cpu_us_per_req"));
        if a.is_none() && b.is_none() {
            continue;
        }
        out.push(row(
            "B11",
            format!("CPU per request, {label} (at the open-loop rate)"),
            format!("sidecar A {}; sidecar B {}", us(a), us(b)),
            format!(
                "nginx worker {}; app {}",
                us(nginx),
                us(r.median(&format!("b11cpu.{path}.app.cpu_us_per_req")))
            ),
            format!(
                "A {} / B {} nginx",
                times(a.zip(nginx).map(|(a, n)| a / n)),
                times(b.zip(nginx).map(|(b, n)| b / n))
            ),
            "reference (B3: ≤ 1.0× nginx per sidecar)",
            Verdict::Info,
        ));
    }
    let g = r.median("b11cpu.state_grpc.sidecar_a.cpu_us_per_req");
    let h = r.median("b11cpu.state_http.sidecar_a.cpu_us_per_req");
    if g.is_some() || h.is_some() {
        out.push(row(
            "B11",
            "CPU per request, GetState (at the open-loop rate)",
            format!("gRPC {}", us(g)),
            format!("HTTP {}", us(h)),
            format!("{} HTTP", times(g.zip(h).map(|(g, h)| g / h))),
            "reference",
            Verdict::Info,
        ));
    }
}

/// B11's rows, after the others.
pub(super) fn b11_rows(r: &Results, out: &mut Vec<Row>) {
    if let Some(why) = r.failed("B11") {
        out.push(failed_row("B11", "gRPC benchmark", "", why));
        return;
    }
    if !r.measurements.keys().any(|k| k.starts_with("b11")) {
        return;
    }
    latency_rows(r, out);
    throughput_rows(r, out);
    cpu_rows(r, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "meta\trate\t1000\n\
        m\tb11.direct.p50_us\t1\t100\nm\tb11.nginx.p50_us\t1\t150\nm\tb11.proxy.p50_us\t1\t250\n\
        m\tb11.direct.p50_us\t2\t100\nm\tb11.nginx.p50_us\t2\t200\nm\tb11.proxy.p50_us\t2\t260\n\
        m\tb11.direct.p50_us\t3\t100\nm\tb11.nginx.p50_us\t3\t140\nm\tb11.proxy.p50_us\t3\t500\n\
        m\tb11.direct.rps\t1\t1000\nm\tb11.proxy.rps\t1\t930\n\
        m\tb11t.state_grpc.rps\t1\t30000\nm\tb11t.state_http.rps\t1\t40000\n\
        m\tb11cpu.proxy.sidecar_a.cpu_us_per_req\t1\t90\nm\tb11cpu.nginx.nginx.cpu_us_per_req\t1\t45\n";

    fn find<'a>(rows: &'a [Row], what: &str) -> &'a Row {
        rows.iter()
            .find(|row| row.measure.contains(what))
            .unwrap_or_else(|| panic!("no row with {what:?} in {rows:#?}"))
    }

    #[test]
    fn proxy_p50_is_judged_against_the_nginx_hop_per_round() {
        let r = Results::parse(SAMPLE);
        // Per round: 150/50 = 3.0, 160/100 = 1.6, 400/40 = 10 → median 3.0.
        assert_eq!(added_vs_nginx(&r, "proxy", "p50"), Some(3.0));
        let rows = {
            let mut out = Vec::new();
            b11_rows(&r, &mut out);
            out
        };
        let p50 = find(&rows, "gRPC proxy (dapr-app-id), two sidecars: latency p50");
        assert!(matches!(p50.verdict, Verdict::Missed(ref m) if m.contains("1.5× the limit")));
        assert!(matches!(
            find(&rows, "achieved rate").verdict,
            Verdict::Missed(_)
        ));
        let state = find(&rows, "GetState throughput");
        assert_eq!(state.result, "0.75× HTTP");
        assert!(matches!(state.verdict, Verdict::Missed(_)));
        assert!(
            find(&rows, "CPU per request, gRPC proxy")
                .result
                .starts_with("A 2.00×")
        );
    }

    #[test]
    fn met_when_within_target_and_failed_when_the_bench_failed() {
        let ok = "m\tb11.direct.p50_us\t1\t100\nm\tb11.nginx.p50_us\t1\t150\n\
                  m\tb11.proxy.p50_us\t1\t180\nm\tb11t.state_grpc.rps\t1\t50000\n\
                  m\tb11t.state_http.rps\t1\t40000\n";
        let mut out = Vec::new();
        b11_rows(&Results::parse(ok), &mut out);
        assert_eq!(find(&out, "latency p50").verdict, Verdict::Met);
        assert_eq!(find(&out, "GetState throughput").verdict, Verdict::Met);
        let mut out = Vec::new();
        b11_rows(
            &Results::parse("fail\tB11\tnginx did not start\n"),
            &mut out,
        );
        assert!(matches!(out.as_slice(), [row] if matches!(row.verdict, Verdict::Failed(_))));
        let mut out = Vec::new();
        b11_rows(&Results::parse("m\tb1.direct.p50_us\t1\t1\n"), &mut out);
        assert!(out.is_empty(), "no B11 rows without B11 measurements");
    }
}
