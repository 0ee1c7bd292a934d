//! Free loopback ports: bind 127.0.0.1:0, read the port, release it for a child to bind. Another
//! process may take it in between, so starting a system retries with new ports on a bind error.

use std::collections::BTreeSet;
use std::net::TcpListener;

use anyhow::Context;

/// `n` distinct free ports (held together while picking, so they differ from each other).
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let mut held = Vec::with_capacity(n);
    let mut seen = BTreeSet::new();
    while held.len() < n {
        let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 for a free port")?;
        let port = l.local_addr().context("reading a bound port")?.port();
        if seen.insert(port) {
            held.push((port, l));
        }
    }
    Ok(held.into_iter().map(|(p, _)| p).collect())
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn is_listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_millis(300),
    )
    .is_ok()
}
