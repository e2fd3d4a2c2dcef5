//! Kubernetes mode: an app id is the headless Service `<app-id>-dapr` the operator keeps for its
//! workload, so `<app-id>-dapr.<namespace>.svc.<cluster-domain>` resolves to the pod IPs of every
//! instance, and a peer sidecar listens on the same internal port as this one (as in Dapr).
//!
//! Lookups go through the system's resolver configuration (resolv.conf), with the answer cached
//! for its DNS TTL (hickory's cache) and bounded in time, so an unknown app id fails fast. Calls
//! are spread over all addresses in turn; an address that refused a connection is left out for a
//! few seconds, and when every address has refused, the cache is dropped and the name looked up
//! afresh.

use super::{ResolveError, Resolver};
use async_trait::async_trait;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use tandem_crds::cluster_dns::{DEFAULT_CLUSTER_DOMAIN, cluster_domain_from_resolv_conf};
/// One DNS query's time limit, and how many tries: an unknown app id fails within a few seconds.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
const QUERY_ATTEMPTS: usize = 2;
/// The most a lookup may take, all tries included.
const LOOKUP_LIMIT: Duration = Duration::from_secs(3);
/// How long an address that refused a connection is left out (a pod restarting, or gone before
/// its DNS record).
const REFUSED_FOR: Duration = Duration::from_secs(5);

/// The fully qualified name of an app's headless Service (trailing dot: no search-path tries).
pub fn service_name(app_id: &str, namespace: &str, cluster_domain: &str) -> String {
    format!("{app_id}-dapr.{namespace}.svc.{cluster_domain}.")
}

/// Where lookups go.
#[derive(Debug, Clone)]
pub enum Nameservers {
    /// resolv.conf's, read from this text.
    ResolvConf(String),
    /// One server (tests, or a cluster whose DNS is not in resolv.conf).
    Server(SocketAddr),
}

/// Resolves app ids through cluster DNS.
pub struct DnsResolver {
    resolver: TokioResolver,
    namespace: String,
    cluster_domain: String,
    port: u16,
    /// Addresses that refused a connection, per name, and until when they are left out.
    refused: Mutex<HashMap<String, HashMap<IpAddr, Instant>>>,
    next: AtomicUsize,
}

impl DnsResolver {
    /// A resolver for peers of `namespace`, on internal port `port`.
    pub fn new(
        nameservers: &Nameservers,
        namespace: &str,
        cluster_domain: &str,
        port: u16,
    ) -> Result<DnsResolver, String> {
        let (config, mut options) = match nameservers {
            Nameservers::ResolvConf(text) => {
                hickory_resolver::system_conf::parse_resolv_conf(text.as_bytes())
                    .map_err(|e| format!("cannot read the resolver configuration: {e}"))?
            }
            Nameservers::Server(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                (
                    ResolverConfig::from_name_servers(vec![server]),
                    ResolverOpts::default(),
                )
            }
        };
        options.timeout = QUERY_TIMEOUT;
        // Pod IPs are IPv4 first; AAAA is asked only when there is no A record, so a cached A
        // answer is not followed by an uncached AAAA query on every call.
        options.ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
        options.attempts = QUERY_ATTEMPTS;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| format!("cannot build the DNS resolver: {e}"))?;
        Ok(DnsResolver {
            resolver,
            namespace: namespace.to_owned(),
            cluster_domain: cluster_domain.to_owned(),
            port,
            refused: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
        })
    }

    fn refused(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<IpAddr, Instant>>> {
        self.refused.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer's addresses (cached for their TTL), and those of them that refused lately.
    async fn lookup(&self, name: &str) -> Result<(Vec<IpAddr>, HashSet<IpAddr>), ResolveError> {
        let looked_up = tokio::time::timeout(LOOKUP_LIMIT, self.resolver.lookup_ip(name)).await;
        let Ok(looked_up) = looked_up else {
            return Err(ResolveError::Failed(format!(
                "{name}: no DNS answer within {LOOKUP_LIMIT:?}"
            )));
        };
        match looked_up {
            Ok(found) => {
                let now = Instant::now();
                let mut refused = self.refused();
                let entry = refused.entry(name.to_owned()).or_default();
                entry.retain(|_, until| *until > now);
                Ok((found.iter().collect(), entry.keys().copied().collect()))
            }
            Err(error) if error.is_no_records_found() || error.is_nx_domain() => Err(
                ResolveError::NotFound(name.trim_end_matches('.').to_owned()),
            ),
            Err(error) => Err(ResolveError::Failed(format!("{name}: {error}"))),
        }
    }
}

/// The address to use next among `found`, leaving out `refused`; `None` when all refused.
pub fn pick(found: &[IpAddr], refused: &HashSet<IpAddr>, turn: usize) -> Option<IpAddr> {
    let usable: Vec<IpAddr> = found
        .iter()
        .filter(|ip| !refused.contains(ip))
        .copied()
        .collect();
    (!usable.is_empty()).then(|| usable[turn % usable.len()])
}

#[async_trait]
impl Resolver for DnsResolver {
    async fn resolve(
        &self,
        app_id: &str,
        namespace: Option<&str>,
    ) -> Result<SocketAddr, ResolveError> {
        let namespace = namespace.unwrap_or(&self.namespace);
        let name = service_name(app_id, namespace, &self.cluster_domain);
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let (found, refused) = self.lookup(&name).await?;
        if let Some(ip) = pick(&found, &refused, turn) {
            return Ok(SocketAddr::new(ip, self.port));
        }
        // Every address of this answer refused: the pods have moved on; ask DNS again.
        self.resolver.clear_cache();
        self.refused().remove(&name);
        let (found, refused) = self.lookup(&name).await?;
        pick(&found, &refused, turn)
            .map(|ip| SocketAddr::new(ip, self.port))
            .ok_or_else(|| ResolveError::NotFound(name.trim_end_matches('.').to_owned()))
    }

    fn forget(&self, app_id: &str, addr: SocketAddr) {
        // The address came from this app id's name in one of the namespaces looked up.
        let prefix = format!("{app_id}-dapr.");
        let until = Instant::now() + REFUSED_FOR;
        for (name, refused) in self.refused().iter_mut() {
            if name.starts_with(&prefix) {
                refused.insert(addr.ip(), until);
            }
        }
    }
}

#[cfg(test)]
mod tests;
