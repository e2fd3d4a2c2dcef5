//! The numbers the suite takes from `oha --output-format json`.

use anyhow::Context;
use serde_json::Value;

/// One oha run.
#[derive(Debug, Clone, PartialEq)]
pub struct OhaRun {
    /// Requests that got a response (any status).
    pub responses: u64,
    /// Of those, 2xx.
    pub ok: u64,
    /// Requests that got no response (connection errors, timeouts, aborted at the deadline).
    pub errors: u64,
    /// Completed requests per second over the whole run (oha's `requestsPerSec`).
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub mean_us: f64,
    pub max_us: f64,
}

fn f(v: &Value, ptr: &str) -> anyhow::Result<f64> {
    v.pointer(ptr)
        .and_then(Value::as_f64)
        .with_context(|| format!("oha JSON has no number at {ptr}"))
}

fn sum_counts(v: Option<&Value>, pred: impl Fn(&str) -> bool) -> u64 {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| pred(k))
                .filter_map(|(_, n)| n.as_u64())
                .sum()
        })
        .unwrap_or(0)
}

impl OhaRun {
    pub fn parse(json: &str) -> anyhow::Result<Self> {
        let v: Value = serde_json::from_str(json).context("oha output is not JSON")?;
        let us = |ptr: &str| f(&v, ptr).map(|s| s * 1e6);
        let codes = v.get("statusCodeDistribution");
        Ok(OhaRun {
            responses: sum_counts(codes, |_| true),
            ok: sum_counts(codes, |k| k.starts_with('2')),
            errors: sum_counts(v.get("errorDistribution"), |_| true),
            rps: f(&v, "/summary/requestsPerSec")?,
            p50_us: us("/latencyPercentiles/p50")?,
            p99_us: us("/latencyPercentiles/p99")?,
            p999_us: us("/latencyPercentiles/p99.9")?,
            mean_us: us("/summary/average")?,
            max_us: us("/summary/slowest")?,
        })
    }

    /// `key=value` pairs for the shell.
    pub fn to_line(&self) -> String {
        format!(
            "responses={} ok={} errors={} rps={:.1} p50_us={:.1} p99_us={:.1} p999_us={:.1} mean_us={:.1} max_us={:.1}",
            self.responses,
            self.ok,
            self.errors,
            self.rps,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.mean_us,
            self.max_us
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oha_json() {
        let json = r#"{"summary":{"successRate":1.0,"total":2.0,"slowest":0.004,"fastest":0.00005,
            "average":0.0001,"requestsPerSec":999.5,"totalData":1024,"sizePerRequest":1024,"sizePerSec":1.0},
            "latencyPercentiles":{"p10":0.00005,"p50":0.0001,"p99":0.0003,"p99.9":0.001},
            "statusCodeDistribution":{"200":1990,"500":9},"errorDistribution":{"aborted due to deadline":1}}"#;
        let run = OhaRun::parse(json).expect("parse");
        assert_eq!((run.responses, run.ok, run.errors), (1999, 1990, 1));
        assert!((run.p50_us - 100.0).abs() < 1e-6);
        assert!((run.p99_us - 300.0).abs() < 1e-6);
        assert!(run.to_line().contains("rps=999.5"));
    }
}
