//! The load generator's loops: `conns` workers, one connection each, on the caller's runtime
//! (`grpc-bench` runs a single-threaded one, as `oha --worker-threads 1` does).
//!
//! - Open loop ([`Mode::Open`]): request `i` is due at `t0 + i / rate`; worker `w` sends requests
//!   `w, w + conns, …`. Latency is corrected for coordinated omission: a request that could not
//!   go out when due because its worker was still waiting for the previous answer is timed from
//!   when it was due ([`open_loop_start`]).
//! - Closed loop ([`Mode::Closed`]): every worker sends its next request as soon as the previous
//!   one is answered, for a fixed time; throughput is answers per second.

use super::calls::{Conn, Target};
use crate::stats::percentile;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Open { rate: f64, requests: u64 },
    Closed { duration: Duration },
}

/// What one run measured, printed in the key names `bench-util oha` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub responses: u64,
    pub ok: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub mean_us: f64,
    pub max_us: f64,
    pub first_error: Option<String>,
}

impl Summary {
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

/// When an open-loop request's latency starts: when it was due if its worker was late (the
/// previous answer came after the due time: the system held it back), else when it was sent
/// (a timer waking up late is the load generator's delay, not the system's).
pub fn open_loop_start(due: Instant, previous_answer: Option<Instant>, sent: Instant) -> Instant {
    match previous_answer {
        Some(prev) if prev > due => due,
        _ => sent.max(due),
    }
}

/// The due time of request `index` at `rate` requests per second.
pub fn due_at(t0: Instant, index: u64, rate: f64) -> Instant {
    t0 + Duration::from_secs_f64(index as f64 / rate)
}

/// Summarizes latencies (µs) of the successful requests; `rps` is successes per second.
pub fn summarize(latencies_us: &[f64], errors: u64, elapsed: Duration) -> Summary {
    let ok = latencies_us.len() as u64;
    let pct = |p| percentile(latencies_us, p).unwrap_or(0.0);
    let secs = elapsed.as_secs_f64();
    Summary {
        responses: ok + errors,
        ok,
        errors,
        rps: if secs > 0.0 { ok as f64 / secs } else { 0.0 },
        p50_us: pct(50.0),
        p99_us: pct(99.0),
        p999_us: pct(99.9),
        mean_us: if ok > 0 {
            latencies_us.iter().sum::<f64>() / ok as f64
        } else {
            0.0
        },
        max_us: latencies_us.iter().copied().fold(0.0, f64::max),
        first_error: None,
    }
}

struct WorkerResult {
    latencies_us: Vec<f64>,
    errors: u64,
    first_error: Option<String>,
    conn: Conn,
}

async fn worker(mut conn: Conn, w: u64, conns: u64, mode: Mode, t0: Instant) -> WorkerResult {
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut previous_answer = None;
    let mut index = w;
    loop {
        let start = match mode {
            Mode::Open { rate, requests } => {
                if index >= requests {
                    break;
                }
                let due = due_at(t0, index, rate);
                tokio::time::sleep_until(due.into()).await;
                open_loop_start(due, previous_answer, Instant::now())
            }
            Mode::Closed { duration } => {
                if t0.elapsed() >= duration {
                    break;
                }
                Instant::now()
            }
        };
        let result = conn.call().await;
        let end = Instant::now();
        previous_answer = Some(end);
        match result {
            Ok(()) => latencies_us.push((end - start).as_secs_f64() * 1e6),
            Err(e) => {
                errors += 1;
                if first_error.is_none() {
                    first_error = Some(format!("{e:#}"));
                }
            }
        }
        index += conns;
    }
    WorkerResult {
        latencies_us,
        errors,
        first_error,
        conn,
    }
}

/// Runs `mode` over the connections (one worker each) and gives them back for the next run.
pub async fn run(conns: Vec<Conn>, mode: Mode) -> anyhow::Result<(Summary, Vec<Conn>)> {
    let n = conns.len() as u64;
    let t0 = Instant::now();
    let handles: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(w, c)| tokio::spawn(worker(c, w as u64, n, mode, t0)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut back = Vec::new();
    for h in handles {
        let r = h.await?;
        latencies.extend(r.latencies_us);
        errors += r.errors;
        first_error = first_error.or(r.first_error);
        back.push(r.conn);
    }
    let mut summary = summarize(&latencies, errors, t0.elapsed());
    summary.first_error = first_error;
    Ok((summary, back))
}

/// Opens `n` connections to the target.
pub async fn connect_all(target: &Target, n: usize) -> anyhow::Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(Conn::connect(target).await?);
    }
    Ok(conns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_is_due_time_only_when_the_worker_was_held_back() {
        let t0 = Instant::now();
        let due = t0 + Duration::from_millis(10);
        let late_timer = due + Duration::from_micros(700);
        // The previous answer came before the due time: the timer's lateness is not counted.
        assert_eq!(
            open_loop_start(due, Some(t0 + Duration::from_millis(5)), late_timer),
            late_timer
        );
        assert_eq!(open_loop_start(due, None, late_timer), late_timer);
        // The previous answer came after the due time: the wait counts (coordinated omission).
        let prev = due + Duration::from_millis(3);
        assert_eq!(open_loop_start(due, Some(prev), prev), due);
    }

    #[test]
    fn due_times_follow_the_rate() {
        let t0 = Instant::now();
        assert_eq!(due_at(t0, 1000, 1000.0) - t0, Duration::from_secs(1));
        assert_eq!(due_at(t0, 5, 1000.0) - t0, Duration::from_millis(5));
    }

    #[test]
    fn summary_of_latencies() {
        let lat: Vec<f64> = (1..=1000).map(f64::from).collect();
        let s = summarize(&lat, 3, Duration::from_secs(2));
        assert_eq!((s.responses, s.ok, s.errors), (1003, 1000, 3));
        assert_eq!(s.rps, 500.0);
        assert_eq!((s.p50_us, s.p99_us, s.max_us), (500.0, 990.0, 1000.0));
        assert!((s.mean_us - 500.5).abs() < 1e-9);
        assert!(
            s.to_line()
                .starts_with("responses=1003 ok=1000 errors=3 rps=500.0 p50_us=500.0")
        );
        let empty = summarize(&[], 0, Duration::ZERO);
        assert_eq!((empty.ok, empty.rps, empty.p99_us), (0, 0.0, 0.0));
    }
}
