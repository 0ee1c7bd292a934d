//! `Set-Cookie` scoping for an embedded app (`cookiePath: true`).
//!
//! - `Path=/x` becomes `Path=<prefix>/x` (so `Path=/` becomes `Path=<prefix>/`), unless the
//!   path is already under the prefix, excluded, or in Authentik's namespace.
//! - A cookie without `Path` is left alone: the browser's default path is the directory of the
//!   URL it requested, which already lies under `<prefix>/`, so adding one would widen or
//!   narrow the scope the app asked for.
//! - A `Domain` that does not domain-match the public host (`localhost`, a container name) is
//!   dropped, making the cookie host-only; the browser would reject it otherwise.

use super::config::EmbedRewriter;
use super::location::Origins;

impl EmbedRewriter {
    /// Rewrites one `Set-Cookie` value; `None` means unchanged.
    pub fn rewrite_set_cookie(&self, value: &str, origins: &Origins) -> Option<String> {
        let mut parts = value.split(';');
        let name_value = parts.next()?;
        let mut out = String::with_capacity(value.len() + self.prefix().len());
        out.push_str(name_value);
        let mut changed = false;
        for attr in parts {
            let (name, val) = match attr.split_once('=') {
                Some((n, v)) => (n.trim(), v.trim()),
                None => (attr.trim(), ""),
            };
            if name.eq_ignore_ascii_case("path") && self.needs_prefix(val.as_bytes()) {
                let lead = &attr[..attr.len() - attr.trim_start().len()];
                out.push(';');
                out.push_str(lead);
                out.push_str(&attr.trim_start()[..name.len()]);
                out.push('=');
                out.push_str(self.prefix());
                out.push_str(val);
                changed = true;
                continue;
            }
            if name.eq_ignore_ascii_case("domain") && !domain_matches(val, origins.public_host()) {
                changed = true;
                continue;
            }
            out.push(';');
            out.push_str(attr);
        }
        changed.then_some(out)
    }
}

/// RFC 6265 domain-match of the public host against a `Domain` attribute value.
fn domain_matches(domain: &str, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    if domain.is_empty() {
        return false;
    }
    if host.eq_ignore_ascii_case(domain) {
        return true;
    }
    // Subdomain matching never applies to IP addresses.
    let is_ip = host.starts_with('[') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    !is_ip
        && host.len() > domain.len()
        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
}

#[cfg(test)]
mod tests {
    use super::super::config::EmbedConfig;
    use super::*;

    #[test]
    fn set_cookie_table() {
        let mut cfg = EmbedConfig::new("/embed/app");
        cfg.exclude = vec!["/openid-cb".into()];
        cfg.cookie_path = true;
        let rw = cfg.compile().expect("valid");
        let o = Origins::new("http", Some("bloud.local:8080"), Some("127.0.0.1:3001"));
        let cases: &[(&str, Option<&str>)] = &[
            (
                "sid=abc; Path=/; HttpOnly",
                Some("sid=abc; Path=/embed/app/; HttpOnly"),
            ),
            (
                "sid=abc; path=/api; Secure",
                Some("sid=abc; path=/embed/app/api; Secure"),
            ),
            ("sid=abc;Path=/", Some("sid=abc;Path=/embed/app/")),
            ("sid=abc; PATH = /", Some("sid=abc; PATH=/embed/app/")),
            ("sid=abc; Path=/embed/app/", None),
            ("sid=abc; Path=/embed/app", None),
            ("sid=abc; Path=/openid-cb", None),
            ("authentik_proxy=x; Path=/outpost.goauthentik.io", None),
            ("sid=abc; HttpOnly", None),
            ("sid=abc; Path=relative", None),
            (
                "sid=a; Domain=localhost; Path=/",
                Some("sid=a; Path=/embed/app/"),
            ),
            (
                "sid=a; Domain=jellyseerr; HttpOnly",
                Some("sid=a; HttpOnly"),
            ),
            ("sid=a; Domain=bloud.local; HttpOnly", None),
            ("sid=a; Domain=.BLOUD.local", None),
            ("sid=a; Domain=local", None),
            ("sid=a; Domain=oud.local", Some("sid=a")),
            (
                "sid=a=b; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/x?y",
                Some("sid=a=b; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/embed/app/x?y"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                rw.rewrite_set_cookie(input, &o).as_deref(),
                *want,
                "Set-Cookie: {input}"
            );
        }
    }

    #[test]
    fn domain_without_known_public_host_is_dropped() {
        let rw = EmbedConfig::new("/embed/app").compile().expect("valid");
        let o = Origins::new("http", None, None);
        assert_eq!(
            rw.rewrite_set_cookie("a=1; Domain=example.com", &o)
                .as_deref(),
            Some("a=1")
        );
    }

    #[test]
    fn ip_hosts_match_only_exactly() {
        assert!(domain_matches("192.168.1.5", Some("192.168.1.5")));
        assert!(!domain_matches("168.1.5", Some("192.168.1.5")));
        assert!(domain_matches("[::1]", Some("[::1]")));
    }
}
