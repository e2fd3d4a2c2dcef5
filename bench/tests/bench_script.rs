//! The benchmark script's smoke run (issue 17: "a CI-sized smoke run of the benchmark script stays
//! in the test suite so the script cannot rot"): `scripts/bench.sh --quick --only B5` with the
//! suite's own debug binaries, into a temp dir. It exercises the script end to end (free ports,
//! the noise guard, processes started and stopped by PID, a real sidecar, a real redis-server,
//! the records and the report) and checks that the report judged B5 from real measurements.
//! The figures of a debug build on a busy machine mean nothing; only the machinery is checked.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_bench-util"))
        .parent()
        .expect("a binary lives in a directory")
        .to_path_buf()
}

#[test]
fn quick_b5_runs_the_script_end_to_end_and_reports_real_measurements() {
    let bins = bin_dir();
    let sidecar = bins.join("tandem-sidecar");
    assert!(
        sidecar.exists(),
        "{} is missing: the smoke run uses the workspace's tandem-sidecar binary \
         (`cargo build -p tandem-sidecar`, or run the whole suite with scripts/test.sh)",
        sidecar.display()
    );
    let out = tempfile_dir();
    let status = Command::new(repo_root().join("scripts/bench.sh"))
        .args(["--quick", "--only", "B5"])
        .env("TANDEM_BENCH_NO_BUILD", "1")
        .env("TANDEM_BENCH_BIN_DIR", &bins)
        .env("TANDEM_BENCH_OUT_DIR", &out)
        .env("TANDEM_BENCH_COOLDOWN_MAX", "0")
        .env("TANDEM_BENCH_MAX_ATTEMPTS", "1")
        .status()
        .expect("scripts/bench.sh runs");
    assert!(
        status.success(),
        "scripts/bench.sh --quick --only B5 failed: {status}"
    );

    let tsv = std::fs::read_to_string(out.join("results.tsv")).expect("results.tsv written");
    let samples = |key: &str| -> Vec<f64> {
        tsv.lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                (f.len() == 4 && f[0] == "m" && f[1] == key).then(|| f[3].parse().ok())?
            })
            .collect()
    };
    for key in [
        "b5.hello.sample_ms",
        "b5.inmem.sample_ms",
        "b5.redis.sample_ms",
    ] {
        let v = samples(key);
        assert_eq!(
            v.len(),
            5,
            "{key}: quick mode takes 5 cold starts, got {v:?}"
        );
        assert!(
            v.iter().all(|ms| *ms > 0.0 && *ms < 10_000.0),
            "{key}: every cold start is a positive time under the 10 s timeout: {v:?}"
        );
    }
    assert!(
        !tsv.lines().any(|l| l.starts_with("fail\t")),
        "no benchmark failed:\n{tsv}"
    );

    let md = std::fs::read_to_string(out.join("results.md")).expect("results.md written");
    let b5: Vec<&str> = md.lines().filter(|l| l.starts_with("| B5 |")).collect();
    assert!(
        b5.len() >= 2,
        "the report has B5's in-memory and Redis rows:\n{md}"
    );
    assert!(
        b5.iter()
            .all(|row| !row.contains("FAILED") && !row.contains("n/a")),
        "every B5 row was judged from a measurement:\n{}",
        b5.join("\n")
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// A fresh directory under the system temp dir (the script creates what it needs inside).
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tandem-bench-smoke-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
