//! Free loopback ports.

use std::net::TcpListener;

/// `n` distinct ports that were free on 127.0.0.1 a moment ago (all bound at once, then released).
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn distinct() {
        let mut p = super::free_ports(8).expect("ports");
        p.sort_unstable();
        p.dedup();
        assert_eq!(p.len(), 8);
    }
}
