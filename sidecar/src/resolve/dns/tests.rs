use super::*;
use crate::testing::dns_server::DnsServer;
use std::net::Ipv4Addr;
use std::time::Instant;

#[test]
fn names_are_fully_qualified_service_names() {
    assert_eq!(
        service_name("catalog", "shop", "cluster.local"),
        "catalog-dapr.shop.svc.cluster.local."
    );
}

#[test]
fn picking_goes_round_and_skips_refused_addresses() {
    let ips: Vec<IpAddr> = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
        .iter()
        .map(|ip| ip.parse().expect("ip"))
        .collect();
    let none = HashSet::new();
    let picked: HashSet<IpAddr> = (0..3).filter_map(|turn| pick(&ips, &none, turn)).collect();
    assert_eq!(picked.len(), 3);
    let refused: HashSet<IpAddr> = [ips[1]].into();
    assert!((0..6).all(|turn| pick(&ips, &refused, turn) != Some(ips[1])));
    let all: HashSet<IpAddr> = ips.iter().copied().collect();
    assert_eq!(pick(&ips, &all, 0), None);
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, last)
}

async fn resolver_for(dns: &DnsServer) -> DnsResolver {
    DnsResolver::new(
        &Nameservers::Server(dns.addr()),
        "shop",
        "cluster.local",
        50002,
    )
    .expect("a resolver")
}

#[tokio::test]
async fn calls_spread_over_every_pod_on_the_internal_port_and_use_the_cache() {
    let dns = DnsServer::start(60).await.expect("dns");
    dns.set(
        "catalog-dapr.shop.svc.cluster.local",
        &[ip(1), ip(2), ip(3)],
    );
    dns.set("catalog-dapr.other.svc.cluster.local", &[ip(9)]);
    let resolver = resolver_for(&dns).await;
    let mut seen = HashSet::new();
    for _ in 0..9 {
        let addr = resolver.resolve("catalog", None).await.expect("resolves");
        assert_eq!(addr.port(), 50002);
        seen.insert(addr.ip());
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(dns.queries(), 1, "answers are cached for their TTL");
    // `catalog.other` reaches another namespace.
    let other = resolver
        .resolve("catalog", Some("other"))
        .await
        .expect("resolves");
    assert_eq!(other.ip(), IpAddr::V4(ip(9)));
}

#[tokio::test]
async fn an_unknown_app_id_fails_fast_as_not_found() {
    let dns = DnsServer::start(60).await.expect("dns");
    let resolver = resolver_for(&dns).await;
    let started = Instant::now();
    let error = resolver.resolve("nobody", None).await.expect_err("unknown");
    assert!(matches!(error, ResolveError::NotFound(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_dns_server_that_does_not_answer_fails_within_the_bound() {
    // A UDP port nobody reads: every query times out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr");
    let resolver = DnsResolver::new(&Nameservers::Server(addr), "shop", "cluster.local", 50002)
        .expect("a resolver");
    let started = Instant::now();
    let error = resolver
        .resolve("catalog", None)
        .await
        .expect_err("no answer");
    assert!(matches!(error, ResolveError::Failed(_)), "{error:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_new_answer_is_used_once_the_ttl_runs_out() {
    let dns = DnsServer::start(1).await.expect("dns");
    dns.set("catalog-dapr.shop.svc.cluster.local", &[ip(1)]);
    let resolver = resolver_for(&dns).await;
    assert_eq!(
        resolver
            .resolve("catalog", None)
            .await
            .expect("resolves")
            .ip(),
        IpAddr::V4(ip(1))
    );
    dns.set("catalog-dapr.shop.svc.cluster.local", &[ip(2)]);
    let changed = Instant::now();
    loop {
        let addr = resolver.resolve("catalog", None).await.expect("resolves");
        if addr.ip() == IpAddr::V4(ip(2)) {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(3),
            "the old address outlived its TTL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_refusing_address_is_skipped_and_when_all_refuse_the_name_is_looked_up_again() {
    let dns = DnsServer::start(60).await.expect("dns");
    dns.set("catalog-dapr.shop.svc.cluster.local", &[ip(1), ip(2)]);
    let resolver = resolver_for(&dns).await;
    resolver.resolve("catalog", None).await.expect("resolves");
    resolver.forget("catalog", SocketAddr::new(IpAddr::V4(ip(1)), 50002));
    for _ in 0..4 {
        let addr = resolver.resolve("catalog", None).await.expect("resolves");
        assert_eq!(addr.ip(), IpAddr::V4(ip(2)));
    }
    assert_eq!(dns.queries(), 1);
    // The pods were replaced: both old addresses refuse; DNS now has the new one.
    dns.set("catalog-dapr.shop.svc.cluster.local", &[ip(3)]);
    resolver.forget("catalog", SocketAddr::new(IpAddr::V4(ip(2)), 50002));
    let addr = resolver.resolve("catalog", None).await.expect("resolves");
    assert_eq!(addr.ip(), IpAddr::V4(ip(3)));
    assert_eq!(dns.queries(), 2);
}
