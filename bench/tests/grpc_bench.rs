//! `grpc-bench`'s echo app and load generator against each other over real loopback sockets:
//! every call is checked end to end (the echo carries the 1 KiB body back), the open loop keeps
//! its rate, the closed loop counts, and a dead target is an error, not a hang.

use bytes::Bytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tandem_bench::grpc::calls::{Conn, Kind, Target};
use tandem_bench::grpc::{app, load};
use tandem_bench::ports::free_ports;

fn target(port: u16) -> Target {
    Target {
        kind: Kind::Echo,
        address: format!("127.0.0.1:{port}"),
        app_id: None,
        store: "statestore".to_owned(),
        key: "k".to_owned(),
        body: Bytes::from(vec![b'x'; 1024]),
    }
}

async fn start_app() -> anyhow::Result<u16> {
    let port = free_ports(1)?[0];
    tokio::spawn(app::serve(SocketAddr::from(([127, 0, 0, 1], port))));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut c) = Conn::connect(&target(port)).await
            && c.call().await.is_ok()
        {
            return Ok(port);
        }
        anyhow::ensure!(Instant::now() < deadline, "the echo app did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn open_loop_keeps_the_rate_and_every_echo_checks_out() -> anyhow::Result<()> {
    let port = start_app().await?;
    let conns = load::connect_all(&target(port), 4).await?;
    let started = Instant::now();
    let mode = load::Mode::Open {
        rate: 400.0,
        requests: 400,
    };
    let (s, conns) = load::run(conns, mode).await?;
    let took = started.elapsed();
    assert_eq!((s.ok, s.errors), (400, 0), "{s:?}");
    assert!(
        took >= Duration::from_millis(990),
        "400 requests at 400/s took {took:?}"
    );
    assert!(s.rps > 300.0 && s.rps <= 410.0, "{s:?}");
    assert!(
        s.p50_us > 0.0 && s.p50_us <= s.p99_us && s.p99_us <= s.max_us,
        "{s:?}"
    );
    assert_eq!(conns.len(), 4, "the connections come back for the next run");

    let (closed, _) = load::run(
        conns,
        load::Mode::Closed {
            duration: Duration::from_millis(500),
        },
    )
    .await?;
    assert_eq!(closed.errors, 0, "{closed:?}");
    assert!(closed.ok > 50, "a closed loop on loopback: {closed:?}");
    Ok(())
}

#[tokio::test]
async fn a_wrong_answer_or_a_dead_target_is_an_error() -> anyhow::Result<()> {
    let port = start_app().await?;
    // InvokeService is not served by the app: every call fails with UNIMPLEMENTED.
    let mut t = target(port);
    t.kind = Kind::InvokeService;
    t.app_id = Some("b".to_owned());
    let conns = load::connect_all(&t, 2).await?;
    let (s, _) = load::run(
        conns,
        load::Mode::Open {
            rate: 100.0,
            requests: 10,
        },
    )
    .await?;
    assert_eq!((s.ok, s.errors), (0, 10), "{s:?}");
    assert!(
        s.first_error
            .as_deref()
            .is_some_and(|e| e.to_lowercase().contains("unimplemented")),
        "{s:?}"
    );
    let dead = free_ports(1)?[0];
    assert!(Conn::connect(&target(dead)).await.is_err());
    Ok(())
}
