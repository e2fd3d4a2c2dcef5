//! Cluster DNS names, shared by the injector (the operator's address) and the sidecar (peers).

/// The cluster domain when nothing says otherwise.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// The cluster domain a pod's resolv.conf implies: the `<domain>` of its first `svc.<domain>`
/// search entry (the kubelet writes `<ns>.svc.<domain> svc.<domain> <domain>`).
pub fn cluster_domain_from_resolv_conf(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("search"))
        .filter(|rest| rest.starts_with(char::is_whitespace))
        .flat_map(str::split_whitespace)
        .find_map(|entry| entry.trim_end_matches('.').strip_prefix("svc."))
        .filter(|domain| !domain.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_domain_comes_from_the_svc_search_entry() {
        let cases = [
            (
                "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.0.0.10\noptions ndots:5\n",
                Some("cluster.local"),
            ),
            (
                "nameserver 10.0.0.10\nsearch prod.svc.corp.example. svc.corp.example. corp.example.\n",
                Some("corp.example"),
            ),
            ("search example.com\nnameserver 1.1.1.1\n", None),
            ("searchsvc.x\n", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                cluster_domain_from_resolv_conf(text).as_deref(),
                want,
                "{text:?}"
            );
        }
    }
}
