//! Which names and addresses the box's certificate covers, and which its CA may certify.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The name every box answers to (mDNS).
pub const BOX_NAME: &str = "bloud.local";

/// Address ranges the CA may certify: private, shared (CGNAT, e.g. Tailscale) and loopback
/// ranges. A public address would let a stolen CA key impersonate a host on the Internet.
pub const PERMITTED_NETS: &[(IpAddr, u8)] = &[
    (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8),
    (IpAddr::V4(Ipv4Addr::new(172, 16, 0, 0)), 12),
    (IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)), 16),
    (IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)), 10),
    (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
    (IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
    (IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 7),
];

/// A DNS name in lower case if `s` is one (letters, digits, hyphens; labels of 1-63 bytes;
/// no leading or trailing hyphen), else `None`.
pub fn parse_dns_name(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if s.is_empty() || s.len() > 253 || s.parse::<IpAddr>().is_ok() {
        return None;
    }
    let ok = s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    ok.then_some(s)
}

/// The kernel's host name, if it is a usable DNS label or name.
pub fn host_name() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    parse_dns_name(&raw).filter(|h| h != "localhost")
}

/// The DNS names of the certificate: `bloud.local`, the host name and `<host>.local`,
/// `localhost`, then `extra`.
pub fn dns_names(host: Option<&str>, extra: &[String]) -> BTreeSet<String> {
    let mut names = BTreeSet::from([BOX_NAME.to_string(), "localhost".to_string()]);
    if let Some(h) = host {
        names.insert(h.to_string());
        if !h.contains('.') {
            names.insert(format!("{h}.local"));
        }
    }
    names.extend(extra.iter().filter_map(|n| parse_dns_name(n)));
    names
}

/// The LAN addresses of the interfaces: IPv4 except link-local, IPv6 unique-local (global IPv6
/// addresses rotate with privacy extensions and would renew the certificate every day), and
/// loopback.
pub fn interface_addresses() -> BTreeSet<IpAddr> {
    let mut out = BTreeSet::from([
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ]);
    match if_addrs::get_if_addrs() {
        Ok(ifaces) => {
            for iface in ifaces {
                let ip = iface.ip();
                let keep = match ip {
                    IpAddr::V4(v4) => !v4.is_link_local() && !v4.is_unspecified(),
                    IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
                };
                if keep {
                    out.insert(ip);
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the network interfaces; the certificate covers loopback only")
        }
    }
    out
}

/// What a CA's name constraints permit (RFC 5280 4.2.1.10, permitted subtrees only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permitted {
    /// `None`: no DNS constraint (any name).
    pub dns: Option<Vec<String>>,
    /// `None`: no IP constraint (any address).
    pub ip: Option<Vec<(IpAddr, u8)>>,
}

impl Permitted {
    pub fn allows_name(&self, name: &str) -> bool {
        match &self.dns {
            None => true,
            Some(list) => list.iter().any(|c| {
                let c = c.trim_start_matches('.');
                name == c || name.ends_with(&format!(".{c}"))
            }),
        }
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        match &self.ip {
            None => true,
            Some(list) => list.iter().any(|(net, prefix)| in_net(ip, *net, *prefix)),
        }
    }
}

pub fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_are_checked_and_lowered() {
        assert_eq!(
            parse_dns_name("NAS.Home.arpa."),
            Some("nas.home.arpa".into())
        );
        for bad in ["", "a..b", "-a.b", "a_b.c", "192.168.1.2", "a b"] {
            assert_eq!(parse_dns_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_box_names_include_host_and_mdns_name() {
        let names = dns_names(Some("nas"), &["files.home.arpa".into()]);
        let v: Vec<_> = names.iter().map(String::as_str).collect();
        assert_eq!(
            v,
            [
                "bloud.local",
                "files.home.arpa",
                "localhost",
                "nas",
                "nas.local"
            ]
        );
    }

    #[test]
    fn constraints_match_suffixes_and_networks() {
        let p = Permitted {
            dns: Some(vec!["local".into(), "localhost".into()]),
            ip: Some(PERMITTED_NETS.to_vec()),
        };
        assert!(p.allows_name("bloud.local"));
        assert!(p.allows_name("localhost"));
        assert!(!p.allows_name("example.com"));
        assert!(!p.allows_name("notlocal"));
        assert!(p.allows_ip("192.168.1.20".parse().unwrap()));
        assert!(p.allows_ip("172.31.255.1".parse().unwrap()));
        assert!(!p.allows_ip("172.32.0.1".parse().unwrap()));
        assert!(p.allows_ip("fd12::1".parse().unwrap()));
        assert!(!p.allows_ip("8.8.8.8".parse().unwrap()));
        assert!(!p.allows_ip("2001:db8::1".parse().unwrap()));
    }
}
