//! A real Prometheus server (Debian's `prometheus` package; `scripts/lib/deps.sh` ensure_promtool
//! installs it) for the dashboard tests: started on a free port with a scrape configuration
//! written here, queried over its HTTP API, and stopped by PID when dropped.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often the sidecars are scraped: short, so `rate()` has two samples within seconds.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);

/// One scrape target with the target labels Prometheus's Kubernetes discovery would add.
pub struct Target {
    pub address: String,
    pub namespace: String,
    pub service: String,
}

pub struct Prometheus {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

/// The scrape configuration for `targets`, one static group each.
pub fn config(targets: &[Target]) -> String {
    let mut yaml = format!(
        "global:\n  scrape_interval: {}s\n  evaluation_interval: {}s\nscrape_configs:\n  - job_name: dapr\n    static_configs:\n",
        SCRAPE_INTERVAL.as_secs(),
        SCRAPE_INTERVAL.as_secs()
    );
    for t in targets {
        yaml.push_str(&format!(
            "      - targets: ['{}']\n        labels: {{namespace: '{}', service: '{}'}}\n",
            t.address, t.namespace, t.service
        ));
    }
    yaml
}

impl Prometheus {
    /// Starts Prometheus (`TANDEM_PROMETHEUS` or `prometheus` on PATH) scraping `targets`, and
    /// waits until it is ready.
    pub fn start(dir: &Path, targets: &[Target]) -> Prometheus {
        let binary = std::env::var("TANDEM_PROMETHEUS").unwrap_or_else(|_| "prometheus".to_owned());
        std::fs::create_dir_all(dir).expect("prometheus dir");
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config(targets)).expect("write prometheus.yml");
        let port = tandem_testkit::free_port();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).expect("prometheus log");
        let err = out.try_clone().expect("prometheus log");
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} (scripts/lib/deps.sh ensure_promtool): {e}"));
        let mut prometheus = Prometheus { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tandem_testkit::http_status(port, "/-/ready") != Some(200) {
            assert!(
                prometheus.child.try_wait().ok().flatten().is_none(),
                "prometheus exited; log:\n{}",
                prometheus.log()
            );
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 30 s; log:\n{}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs an instant query; the `data.result` array (empty when nothing matched).
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let answer: Value = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "query={}",
                percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC)
            ))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("query {expr}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("query {expr}: {e}"))?;
        if answer["status"] != "success" {
            return Err(format!("query {expr}: {answer}"));
        }
        Ok(answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until `targets` targets are up, then for `scrapes` more scrapes of each.
    pub async fn wait_scrapes(&self, targets: usize, scrapes: u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = self
                .query("up{job=\"dapr\"} == 1")
                .await
                .map_or(0, |r| r.len());
            if up >= targets {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{up} of {targets} targets up in Prometheus after 30 s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(SCRAPE_INTERVAL * scrapes + Duration::from_millis(500)).await;
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // By PID: this child only.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
