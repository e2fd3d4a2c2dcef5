//! A small authoritative DNS server over UDP on a free loopback port: A records from a table the
//! test changes while it runs, NXDOMAIN for every other name, a fixed TTL, and a count of the
//! queries it answered (to see caching and TTLs at work). Real DNS on the wire, decoded and
//! encoded with hickory-proto, as a cluster's DNS would answer `<app>-dapr.<ns>.svc.<domain>`.

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;

/// The records, shared with the serving task.
#[derive(Default)]
struct Zone {
    records: Mutex<HashMap<String, Vec<Ipv4Addr>>>,
    queries: AtomicUsize,
}

/// A running DNS server; stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Zone>,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    /// Starts answering on 127.0.0.1 with records of `ttl` seconds.
    pub async fn start(ttl: u32) -> std::io::Result<DnsServer> {
        DnsServer::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), ttl).await
    }

    /// Starts answering on `addr` (port 53 of a bridge address, say, for resolv.conf files that
    /// cannot name a port).
    pub async fn start_on(addr: SocketAddr, ttl: u32) -> std::io::Result<DnsServer> {
        let socket = UdpSocket::bind(addr).await?;
        let addr = socket.local_addr()?;
        let zone = Arc::new(Zone::default());
        let task = tokio::spawn(serve(socket, Arc::clone(&zone), ttl));
        Ok(DnsServer { addr, zone, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets (or with no addresses, removes) the A records of `name` (without the trailing dot).
    pub fn set(&self, name: &str, ips: &[Ipv4Addr]) {
        let mut records = self.zone.records.lock().unwrap_or_else(|p| p.into_inner());
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        if ips.is_empty() {
            records.remove(&key);
        } else {
            records.insert(key, ips.to_vec());
        }
    }

    /// How many queries have been answered.
    pub fn queries(&self) -> usize {
        self.zone.queries.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(socket: UdpSocket, zone: Arc<Zone>, ttl: u32) {
    let mut buffer = vec![0_u8; 4096];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buffer).await else {
            return;
        };
        let Some(answer) = answer(&buffer[..len], &zone, ttl) else {
            continue;
        };
        zone.queries.fetch_add(1, Ordering::SeqCst);
        let _ = socket.send_to(&answer, from).await;
    }
}

/// The encoded answer to one encoded query; `None` for what is not a query.
fn answer(query: &[u8], zone: &Zone, ttl: u32) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    let records = zone.records.lock().unwrap_or_else(|p| p.into_inner());
    let mut known = false;
    for query in &request.queries {
        response.add_query(query.clone());
        let name = query
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if let Some(ips) = records.get(&name) {
            known = true;
            if query.query_type() == RecordType::A {
                for ip in ips {
                    response.add_answer(Record::from_rdata(
                        query.name().clone(),
                        ttl,
                        RData::A(A(*ip)),
                    ));
                }
            }
        }
    }
    if !known {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    response.to_vec().ok()
}
