//! Sampling rates and a collector that never answers: counts, not timings.

use super::*;

async fn metadata_calls(sc: &Sidecar, n: usize) {
    let client = client();
    let url = sc.url("/v1.0/metadata");
    let mut ok = 0;
    let mut left = n;
    // 32 at a time: enough to be quick, few enough for two cores.
    while left > 0 {
        let batch = left.min(32);
        left -= batch;
        let calls = (0..batch).map(|_| {
            let (client, url) = (client.clone(), url.clone());
            async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
        });
        for status in futures_util::future::join_all(calls).await {
            if status.expect("request") == 200 {
                ok += 1;
            }
        }
    }
    assert_eq!(ok, n, "every request succeeded");
}

fn from(spans: &[Value], service: &str) -> usize {
    spans
        .iter()
        .filter(|s| str_of(s, "service") == service && str_of(s, "name") == "/v1.0/metadata")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sampling_zero_half_and_one() {
    let receiver = Receiver::otlp();
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |rate: &str, app_id: &str| {
        let cfg = config(dir.path(), app_id, &otlp_grpc(&receiver, rate));
        sidecar(dir.path(), app_id, &cfg, None).start()
    };
    let (mut zero, mut half, one) = (start("0", "zero"), start("0.5", "half"), start("1", "one"));
    metadata_calls(&zero, 200).await;
    metadata_calls(&half, 2000).await;
    metadata_calls(&one, 200).await;
    // Stopping flushes; then one more span from `one` marks the end of everything before it
    // (the receiver prints each batch before it answers the export).
    stop(&mut zero);
    stop(&mut half);
    metadata_calls(&one, 1).await;
    let spans = receiver.wait_for(WAIT, |s| from(s, "one") == 201).await;
    assert_eq!(from(&spans, "zero"), 0, "sampling rate 0 exports nothing");
    let sampled = from(&spans, "half");
    assert!(
        (850..=1150).contains(&sampled),
        "rate 0.5 over 2000 roots sampled {sampled}"
    );
}

fn dropped(metrics: &str, reason: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("tandem_trace_spans_dropped_total")
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collector_that_never_answers_costs_requests_nothing() {
    // Accepts connections (the kernel's backlog) and never reads: every export hangs.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = blackhole.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let tracing = format!(
        "{{samplingRate: '1', otel: {{endpointAddress: '127.0.0.1:{port}', protocol: grpc, isSecure: false, timeout: 60s}}}}"
    );
    let cfg = config(dir.path(), "tracing", &tracing);
    let mut sc = sidecar(dir.path(), "stuck", &cfg, None).start();
    let n = 3000;
    metadata_calls(&sc, n).await;
    let metrics = client()
        .get(format!("http://127.0.0.1:{}/metrics", sc.metrics_port))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    // At most the queue (2048) and one batch in flight (512) are held; the rest is dropped.
    let full = dropped(&metrics, "queue_full");
    assert!(full >= 3000 - 2048 - 512, "dropped {full}:\n{metrics}");
    // Shutdown gives the stuck exports the grace period (5 s), not their 60 s timeout.
    stop(&mut sc);
    drop(blackhole);
}
