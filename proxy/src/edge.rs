//! Edge policy: which client-sent forwarding headers are trusted, what the proxy sets instead,
//! and which request paths are refused before routing.

use std::net::IpAddr;

use http::{HeaderName, HeaderValue};

use crate::config::static_config::ForwardedHeaders;
use crate::ipnet::IpNet;

/// Client-controlled headers that claim something about the client or the original request.
/// bloud-agent reads the same list to tell a forwarded request from the local CLI.
pub const SPOOFABLE: &[&str] = bloud_common::forwarding::HEADERS;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub const X_FORWARDED_SERVER: HeaderName = HeaderName::from_static("x-forwarded-server");
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Which of the forwarding headers the proxy sets are replaced or removed anyway by a `headers`
/// middleware of the router (Bloud's `embed-forwarded-headers` sets `X-Forwarded-Host` and
/// `X-Forwarded-Proto`). Middleware edits always come after the proxy's own, so the proxy skips
/// these instead of inserting a value that is overwritten a moment later. Decided per router
/// when the table is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardedOverrides {
    pub forwarded_for: bool,
    pub real_ip: bool,
    pub proto: bool,
    pub host: bool,
    pub port: bool,
    pub server: bool,
}

impl ForwardedOverrides {
    /// Records that a middleware sets or removes `name` unconditionally (an append does not
    /// count: it keeps the proxy's value).
    pub fn note(&mut self, name: &HeaderName) {
        let flag = if name == X_FORWARDED_FOR {
            &mut self.forwarded_for
        } else if name == X_REAL_IP {
            &mut self.real_ip
        } else if name == X_FORWARDED_PROTO {
            &mut self.proto
        } else if name == X_FORWARDED_HOST {
            &mut self.host
        } else if name == X_FORWARDED_PORT {
            &mut self.port
        } else if name == X_FORWARDED_SERVER {
            &mut self.server
        } else {
            return;
        };
        *flag = true;
    }
}

/// Values the proxy sets often enough to keep ready-made.
pub const HTTP: HeaderValue = HeaderValue::from_static("http");
pub const PORT_80: HeaderValue = HeaderValue::from_static("80");
pub const HTTPS: HeaderValue = HeaderValue::from_static("https");
pub const PORT_443: HeaderValue = HeaderValue::from_static("443");

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

/// The trusted networks of one entry point.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    nets: Vec<IpNet>,
    all: bool,
}

impl Trust {
    pub fn new(cfg: Option<&ForwardedHeaders>) -> Result<Self, String> {
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
///
/// Runs on every request, so it only looks at the bytes that could begin a dot segment (a `.`
/// or a `%` right after a separator) instead of splitting the path: `/app/index.html` costs one
/// pass and one look back. (A plain loop: request paths are short, and `memchr`'s set-up cost
/// more than the scan in callgrind.)
pub fn has_dot_segments(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        (b == b'.' || b == b'%') && starts_segment(bytes, i) && is_dot_segment(&bytes[i..])
    })
}

/// Whether the path holds a control character, percent-encoded (`%00`-`%1F`, `%7F`). No path
/// needs one, and Pingora percent-encodes a raw TAB or NUL in the request line before any hook
/// sees it, so this is also where a raw one is caught.
pub fn has_encoded_control(path: &str) -> bool {
    path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && match w[1] {
                b'0' | b'1' => w[2].is_ascii_hexdigit(),
                b'7' => w[2] == b'f' || w[2] == b'F',
                _ => false,
            }
    })
}

/// Separator length at `i`: `/` and `\` (1 byte) or the encoded `%2f`/`%5c` an upstream might
/// decode (3 bytes); 0 when there is none.
fn separator_len(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        Some(b'/' | b'\\') => 1,
        Some(b'%') => match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(b'2'), Some(b'f' | b'F')) | (Some(b'5'), Some(b'c' | b'C')) => 3,
            _ => 0,
        },
        _ => 0,
    }
}

/// Whether a segment begins at `i`: the path's start or right after a separator. Encoded
/// separators cannot overlap (`%2f` holds no second `%`), so looking back is exact.
fn starts_segment(bytes: &[u8], i: usize) -> bool {
    i == 0 || matches!(bytes[i - 1], b'/' | b'\\') || (i >= 3 && separator_len(bytes, i - 3) == 3)
}

/// Whether the segment at the start of `rest` is `.` or `..` (each dot raw or `%2e`).
fn is_dot_segment(rest: &[u8]) -> bool {
    let mut dots = 0usize;
    let mut i = 0usize;
    loop {
        if i == rest.len() || separator_len(rest, i) > 0 {
            return dots == 1 || dots == 2;
        }
        if rest[i] == b'.' {
            i += 1;
        } else if rest[i] == b'%'
            && rest.get(i + 1) == Some(&b'2')
            && matches!(rest.get(i + 2), Some(b'e' | b'E'))
        {
            i += 3;
        } else {
            return false;
        }
        dots += 1;
        if dots > 2 {
            return false;
        }
    }
}

/// `host:port` → `host` (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    match port_start(host) {
        Some(colon) => &host[..colon],
        None => host,
    }
}

/// Port part of a Host header, if any.
pub fn host_port(host: &str) -> Option<&str> {
    let colon = port_start(host)?;
    let port = &host[colon + 1..];
    (!port.is_empty()).then_some(port)
}

/// Index of the `:` before a port made of digits (possibly none), if the host has one. Byte
/// scans: both callers run on every request, and `rsplit_once` is a general string search.
fn port_start(host: &str) -> Option<usize> {
    let bytes = host.as_bytes();
    let colon = bytes.iter().rposition(|&b| b == b':')?;
    if !bytes[colon + 1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.first() == Some(&b'[') {
        // `[::1]:80`: only a colon right after the closing bracket starts a port.
        return (colon > 0 && bytes[colon - 1] == b']').then_some(colon);
    }
    Some(colon)
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
            "..",
            "/a/%2f..",
            "/a/%2F%2e",
            "/a/%5C.%2E/b",
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
            "/a/.../b",
            "/a/%2e%2e%2e",
            "/a%2e/b",
            "/a/%2",
            "/a/.%",
        ] {
            assert!(!has_dot_segments(ok), "{ok} must pass");
        }
    }

    #[test]
    fn encoded_controls() {
        for bad in [
            "/a%09b", "/a%00", "%0a", "/x%1F/", "/%7f", "/a%7Fb", "/%0D%0A",
        ] {
            assert!(has_encoded_control(bad), "{bad} must be refused");
        }
        for ok in [
            "/", "/a%20b", "/%2e", "/a%2", "/a%", "/%20%21", "/a%8f", "/a%7e", "/0909",
        ] {
            assert!(!has_encoded_control(ok), "{ok} must pass");
        }
    }

    /// The straightforward form of the rule: split into segments at every separator, decode
    /// the dots of each, count. `has_dot_segments` must agree with it on every path.
    fn dot_segments_by_splitting(path: &str) -> bool {
        let bytes = path.as_bytes();
        let mut segments = Vec::new();
        let (mut start, mut i) = (0, 0);
        while i < bytes.len() {
            match separator_len(bytes, i) {
                0 => i += 1,
                n => {
                    segments.push(&bytes[start..i]);
                    i += n;
                    start = i;
                }
            }
        }
        segments.push(&bytes[start..]);
        segments.iter().any(|seg| {
            let decoded = String::from_utf8_lossy(seg)
                .replace("%2e", ".")
                .replace("%2E", ".");
            decoded == "." || decoded == ".."
        })
    }

    #[test]
    fn dot_segments_agree_with_splitting_on_random_paths() {
        // Paths made of the bytes that matter (dots, separators raw and encoded, escapes that
        // are not dots), every length up to 12: no false positive, no miss.
        const PIECES: &[&str] = &[
            "/", "\\", ".", "%2e", "%2E", "%2f", "%2F", "%5c", "%5C", "%", "2", "e", "a", "%41",
        ];
        let mut next = crate::test_rng();
        for _ in 0..50_000 {
            let len = (next() % 12) as usize;
            let path: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            assert_eq!(
                has_dot_segments(&path),
                dot_segments_by_splitting(&path),
                "{path:?}"
            );
        }
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
    fn spoofable_headers_include_what_the_agent_treats_as_forwarding() {
        for name in [
            "x-forwarded-for",
            "x-forwarded-prefix",
            "true-client-ip",
            "cf-connecting-ip",
            "x-client-ip",
        ] {
            assert!(is_spoofable(name), "{name}");
        }
        for name in ["host", "user-agent", "x-forwarded", "X-Forwarded-For"] {
            assert!(!is_spoofable(name), "{name}");
        }
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
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("[fe80::1"), "[fe80::1");
        assert_eq!(strip_port("bloud.local:"), "bloud.local");
        assert_eq!(host_port("bloud.local:"), None);
        assert_eq!(strip_port("a:b"), "a:b");
        assert_eq!(host_port("a:b"), None);
    }
}
