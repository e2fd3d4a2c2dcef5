//! CPU time and memory of a process from `/proc/<pid>/stat` and `/proc/<pid>/status`.

use anyhow::{Context, bail};
use std::time::{Duration, Instant};

/// `USER_HZ`: the unit of `utime`/`stime` in `/proc/<pid>/stat`; fixed at 100 in Linux's ABI.
const USER_HZ: u64 = 100;

/// One look at a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    pub pid: u32,
    /// utime + stime, all threads, in microseconds (10 ms resolution).
    pub cpu_us: u64,
    /// VmRSS in KiB.
    pub rss_kb: u64,
    /// VmHWM (peak RSS since start) in KiB.
    pub hwm_kb: u64,
    /// RssAnon in KiB: the anonymous part of VmRSS (heap, stacks), without the executable's
    /// clean file-backed pages, which every process of the same binary shares.
    pub anon_kb: u64,
}

impl std::fmt::Display for ProcSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid={} cpu_us={} rss_kb={} hwm_kb={} anon_kb={}",
            self.pid, self.cpu_us, self.rss_kb, self.hwm_kb, self.anon_kb
        )
    }
}

/// utime + stime in clock ticks, from the text of `/proc/<pid>/stat`. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat_ticks(stat: &str) -> anyhow::Result<u64> {
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no ')' in /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (field 3) is index 0, so utime (14) is 11 and stime (15) is 12.
    let field = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .context("/proc/<pid>/stat is too short")?
            .parse::<u64>()
            .context("bad number in /proc/<pid>/stat")
    };
    Ok(field(11)? + field(12)?)
}

/// A `Name:   1234 kB` line of `/proc/<pid>/status`, in KiB.
pub fn parse_status_kb(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Samples `pid` now.
pub fn sample(pid: u32) -> anyhow::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    let ticks = parse_stat_ticks(&stat)?;
    let (Some(rss_kb), Some(hwm_kb)) = (
        parse_status_kb(&status, "VmRSS"),
        parse_status_kb(&status, "VmHWM"),
    ) else {
        bail!("process {pid} has no VmRSS/VmHWM (a zombie?)");
    };
    Ok(ProcSample {
        pid,
        cpu_us: ticks * (1_000_000 / USER_HZ),
        rss_kb,
        hwm_kb,
        anon_kb: parse_status_kb(&status, "RssAnon").unwrap_or(0),
    })
}

/// RSS over time for one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssSeries {
    pub pid: u32,
    pub samples_kb: Vec<u64>,
}

impl RssSeries {
    /// `pid=… samples=… first_kb=… last_kb=… min_kb=… max_kb=… drift_kb=…` (drift: last − first).
    pub fn summary(&self) -> String {
        let first = self.samples_kb.first().copied().unwrap_or(0);
        let last = self.samples_kb.last().copied().unwrap_or(0);
        let min = self.samples_kb.iter().copied().min().unwrap_or(0);
        let max = self.samples_kb.iter().copied().max().unwrap_or(0);
        format!(
            "pid={} samples={} first_kb={first} last_kb={last} min_kb={min} max_kb={max} drift_kb={}",
            self.pid,
            self.samples_kb.len(),
            last as i64 - first as i64
        )
    }
}

/// Samples the RSS of `pids` every `every` for `duration` (first sample at once, last at the end).
/// `on_sample` sees each round of samples, with the time since the start.
pub fn watch_rss(
    pids: &[u32],
    every: Duration,
    duration: Duration,
    mut on_sample: impl FnMut(Duration, &[ProcSample]),
) -> anyhow::Result<Vec<RssSeries>> {
    let mut series: Vec<RssSeries> = pids
        .iter()
        .map(|&pid| RssSeries {
            pid,
            samples_kb: Vec::new(),
        })
        .collect();
    let start = Instant::now();
    let mut next = start;
    loop {
        let now = Instant::now();
        let samples = pids
            .iter()
            .map(|&pid| sample(pid))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (s, sample) in series.iter_mut().zip(&samples) {
            s.samples_kb.push(sample.rss_kb);
        }
        on_sample(now - start, &samples);
        if now - start >= duration {
            return Ok(series);
        }
        next += every;
        let deadline = next.min(start + duration);
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_the_name() {
        let stat =
            "4242 (tokio (w) 1) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat_ticks(stat).expect("parse"), 325);
    }

    #[test]
    fn status_lines() {
        let status = "Name:\tx\nVmHWM:\t    9000 kB\nVmRSS:\t    8123 kB\nRssAnon:\t    2600 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(8123));
        assert_eq!(parse_status_kb(status, "RssAnon"), Some(2600));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(9000));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).expect("sample");
        assert!(s.rss_kb > 0 && s.hwm_kb >= s.rss_kb);
    }

    #[test]
    fn watch_summary() {
        let duration = Duration::from_millis(30);
        let mut rounds = Vec::new();
        let series = watch_rss(
            &[std::process::id()],
            Duration::from_millis(10),
            duration,
            |at, _| rounds.push(at),
        )
        .expect("watch");
        // A round at the start and one once `duration` has passed, however late the thread
        // wakes; the ones in between depend on the machine's speed.
        assert!(rounds.len() >= 2 && rounds.windows(2).all(|w| w[0] <= w[1]));
        assert!(rounds.last().is_some_and(|last| *last >= duration));
        assert_eq!(series[0].samples_kb.len(), rounds.len());
        assert!(series[0].summary().contains("drift_kb="));
    }
}
