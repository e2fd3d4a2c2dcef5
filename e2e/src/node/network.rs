//! The test node's network, with iproute2: a Linux bridge with the node's address, and per pod a
//! network namespace joined to it by a veth pair, with its own address in the bridge's /24, a
//! default route through the bridge, and a resolv.conf (`/etc/netns/<ns>/resolv.conf`, which
//! `ip netns exec` puts over `/etc/resolv.conf`) naming the cluster DNS on the node's address.
//! The host reaches every pod address directly; pods reach each other and the host's listeners on
//! the bridge address. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN). Everything is removed on drop.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

/// Runs `ip args…`; its error output when it fails.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip (iproute2 is needed): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A bridge with address `10.<a>.<b>.1/24`; pods get `.2` onwards.
#[derive(Debug)]
pub struct Bridge {
    name: String,
    /// The first three octets of the subnet.
    subnet: [u8; 3],
    next_host: AtomicU8,
    /// Names start with this (bridge, veths, namespaces), unique to this bridge.
    prefix: String,
}

impl Bridge {
    /// Creates a bridge on a subnet derived from this process's ID (so concurrent test processes
    /// do not collide) and brings it up.
    pub fn create() -> Result<Bridge, String> {
        let id = std::process::id();
        let prefix = format!("tn{:x}", id & 0xffff);
        let subnet = [10, 200 + (id % 50) as u8, ((id / 50) % 256) as u8];
        let bridge = Bridge {
            name: format!("{prefix}br"),
            subnet,
            next_host: AtomicU8::new(2),
            prefix,
        };
        // A bridge of a killed earlier run with the same PID would be in the way.
        let _ = ip(&["link", "del", &bridge.name]);
        ip(&["link", "add", &bridge.name, "type", "bridge"])?;
        let cidr = format!("{}/24", bridge.address());
        ip(&["addr", "add", &cidr, "dev", &bridge.name])?;
        ip(&["link", "set", &bridge.name, "up"])?;
        Ok(bridge)
    }

    /// The node's address on the bridge (`.1`): the pods' gateway and DNS server.
    pub fn address(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// A new pod network: namespace, veth pair, the next free address. `resolv_conf` is the
    /// pod's `/etc/resolv.conf`.
    pub fn attach_pod(&self, resolv_conf: &str) -> Result<PodNetwork, String> {
        let host = self.next_host.fetch_add(1, Ordering::SeqCst);
        if host == 255 || host < 2 {
            return Err("the test bridge's /24 is out of addresses".to_owned());
        }
        let [a, b, c] = self.subnet;
        let address = Ipv4Addr::new(a, b, c, host);
        let network = PodNetwork {
            netns: format!("{}-p{host}", self.prefix),
            address,
        };
        let (outside, inside) = (
            format!("{}h{host}", self.prefix),
            format!("{}c{host}", self.prefix),
        );
        let netns = network.netns.as_str();
        ip(&["netns", "add", netns])?;
        // From here on, dropping `network` removes the namespace (and the veth with it).
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ])?;
        ip(&["link", "set", &inside, "netns", netns])?;
        ip(&["link", "set", &outside, "master", &self.name, "up"])?;
        ip(&["-n", netns, "link", "set", "lo", "up"])?;
        ip(&["-n", netns, "link", "set", &inside, "name", "eth0"])?;
        ip(&[
            "-n",
            netns,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", netns, "link", "set", "eth0", "up"])?;
        ip(&[
            "-n",
            netns,
            "route",
            "add",
            "default",
            "via",
            &self.address().to_string(),
        ])?;
        let etc = network.etc_dir();
        std::fs::create_dir_all(&etc).map_err(|e| format!("creating {}: {e}", etc.display()))?;
        std::fs::write(etc.join("resolv.conf"), resolv_conf)
            .map_err(|e| format!("writing {}/resolv.conf: {e}", etc.display()))?;
        Ok(network)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.name]);
    }
}

/// One pod's network namespace and address; removed on drop.
#[derive(Debug)]
pub struct PodNetwork {
    pub netns: String,
    pub address: Ipv4Addr,
}

impl PodNetwork {
    fn etc_dir(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.netns)
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.netns]);
        let _ = std::fs::remove_dir_all(self.etc_dir());
    }
}

/// A pod's resolv.conf, as the kubelet writes it for `dnsPolicy: ClusterFirst`.
pub fn resolv_conf(nameserver: Ipv4Addr, namespace: &str, cluster_domain: &str) -> String {
    format!(
        "search {namespace}.svc.{cluster_domain} svc.{cluster_domain} {cluster_domain}\n\
         nameserver {nameserver}\noptions ndots:5\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_has_the_cluster_search_path() {
        let text = resolv_conf(Ipv4Addr::new(10, 1, 2, 1), "shop", "cluster.local");
        assert_eq!(
            text,
            "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.1.2.1\noptions ndots:5\n"
        );
        let domain = tandem_sidecar_cluster_domain(&text);
        assert_eq!(domain.as_deref(), Some("cluster.local"));
    }

    fn tandem_sidecar_cluster_domain(text: &str) -> Option<String> {
        tandem_crds::cluster_dns::cluster_domain_from_resolv_conf(text)
    }
}
