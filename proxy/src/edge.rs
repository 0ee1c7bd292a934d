//! Edge policy: which client-sent forwarding headers are trusted, what the proxy sets instead,
//! and which request paths are refused before routing.

use std::net::IpAddr;

use http::{HeaderName, HeaderValue};

/// Client-controlled headers that claim something about the client or the original request.
pub const SPOOFABLE: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-prefix",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-ssl",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
];

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub const X_FORWARDED_SERVER: HeaderName = HeaderName::from_static("x-forwarded-server");
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Values the proxy sets often enough to keep ready-made.
pub const HTTP: HeaderValue = HeaderValue::from_static("http");
pub const PORT_80: HeaderValue = HeaderValue::from_static("80");

/// The client address as a header value (`X-Forwarded-For`, `X-Real-Ip`). A home server sees
/// the same few clients over and over, so each worker thread keeps the last one it built and
/// hands out shared copies instead of formatting and allocating per request.
pub fn client_ip_value(ip: IpAddr) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((cached, value)) = last.as_ref() {
            if *cached == ip {
                return value.clone();
            }
        }
        let value = HeaderValue::from_str(&ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        *last = Some((ip, value.clone()));
        value
    })
}

/// Whether `name` (lowercase, as `HeaderName::as_str` gives it) is in [`SPOOFABLE`].
pub fn is_spoofable(name: &str) -> bool {
    SPOOFABLE.contains(&name)
}

/// An IP network (`10.0.0.0/8`, `::1/128`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: prefix length must be 0..={max}"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 peers (`::ffff:10.0.0.1`) are compared as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The trusted networks of one entry point.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    nets: Vec<IpNet>,
    all: bool,
}

impl Trust {
    pub fn new(
        cfg: Option<&crate::config::static_config::ForwardedHeaders>,
    ) -> Result<Self, String> {
        let Some(cfg) = cfg else {
            return Ok(Trust::default());
        };
        Ok(Trust {
            nets: cfg
                .trusted_ips
                .iter()
                .map(|s| IpNet::parse(s))
                .collect::<Result<_, _>>()?,
            all: cfg.insecure,
        })
    }

    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        self.all || peer.is_some_and(|ip| self.nets.iter().any(|n| n.contains(ip)))
    }
}

/// True when the path has a `.` or `..` segment, raw or percent-encoded (`%2e`, `%2E`), or an
/// encoded slash or backslash that would form one after decoding (`..%2f`).
pub fn has_dot_segments(path: &str) -> bool {
    let bytes = path.as_bytes();
    // Segments end at '/', and also at the encoded separators an upstream might decode.
    let mut seg_start = 0usize;
    let mut i = 0usize;
    let check = |start: usize, end: usize| is_dot_segment(&bytes[start..end]);
    while i <= bytes.len() {
        let sep_len = if i == bytes.len() || bytes[i] == b'/' || bytes[i] == b'\\' {
            1
        } else if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && matches!(
                (bytes[i + 1], bytes[i + 2]),
                (b'2', b'f' | b'F') | (b'5', b'c' | b'C')
            )
        {
            3
        } else {
            0
        };
        if sep_len > 0 {
            if check(seg_start, i) {
                return true;
            }
            seg_start = i + sep_len;
            i += sep_len;
        } else {
            i += 1;
        }
    }
    false
}

fn is_dot_segment(seg: &[u8]) -> bool {
    // Decode only '%2e'/'%2E' (other escapes cannot make a dot).
    let mut dots = 0usize;
    let mut i = 0usize;
    while i < seg.len() {
        if seg[i] == b'.' {
            dots += 1;
            i += 1;
        } else if seg[i] == b'%'
            && seg.get(i + 1) == Some(&b'2')
            && matches!(seg.get(i + 2), Some(b'e' | b'E'))
        {
            dots += 1;
            i += 3;
        } else {
            return false;
        }
    }
    dots == 1 || dots == 2
}

/// `host:port` → `host` (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Port part of a Host header, if any.
pub fn host_port(host: &str) -> Option<&str> {
    let after = if host.starts_with('[') {
        &host[host.find(']')? + 1..]
    } else {
        host
    };
    let (_, port) = after.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments() {
        for bad in [
            "/..",
            "/../etc",
            "/a/../b",
            "/a/./b",
            "/.",
            "/a/%2e%2e/b",
            "/a/%2E%2E",
            "/%2e/x",
            "/a/.%2e/b",
            "/a/..%2fb",
            "/a/..%2Fb",
            "/a\\..\\b",
            "/a/..%5cb",
        ] {
            assert!(has_dot_segments(bad), "{bad} must be refused");
        }
        for ok in [
            "/",
            "/a/b",
            "/a/...",
            "/a/..b",
            "/a/b..",
            "/.well-known/x",
            "/a/%2e%2ex",
            "/file.txt",
        ] {
            assert!(!has_dot_segments(ok), "{ok} must pass");
        }
    }

    #[test]
    fn networks() {
        let net = IpNet::parse("10.0.0.0/8").expect("valid");
        assert!(net.contains("10.1.2.3".parse().expect("ip")));
        assert!(net.contains("::ffff:10.1.2.3".parse().expect("ip")));
        assert!(!net.contains("11.0.0.1".parse().expect("ip")));
        let one = IpNet::parse("::1").expect("valid");
        assert!(one.contains("::1".parse().expect("ip")));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("nope").is_err());
        let all = IpNet::parse("0.0.0.0/0").expect("valid");
        assert!(all.contains("1.2.3.4".parse().expect("ip")));
    }

    #[test]
    fn client_ip_values() {
        let a: IpAddr = "192.168.1.20".parse().expect("ip");
        let b: IpAddr = "fe80::1".parse().expect("ip");
        assert_eq!(client_ip_value(a), "192.168.1.20");
        assert_eq!(client_ip_value(a), "192.168.1.20");
        assert_eq!(client_ip_value(b), "fe80::1");
        assert_eq!(client_ip_value(a), "192.168.1.20");
    }

    #[test]
    fn hosts() {
        assert_eq!(strip_port("bloud.local:8080"), "bloud.local");
        assert_eq!(strip_port("bloud.local"), "bloud.local");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(host_port("bloud.local:8080"), Some("8080"));
        assert_eq!(host_port("[::1]:80"), Some("80"));
        assert_eq!(host_port("[::1]"), None);
        assert_eq!(host_port("bloud.local"), None);
    }
}
