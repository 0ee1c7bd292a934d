//! The box's public URL (`publicUrl`), as the browser sees it.

use super::RoutesError;

/// A parsed `publicUrl` such as `http://bloud.local` or `https://[fd00::1]:8443`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    scheme: String,
    /// Host without port; IPv6 literals keep their brackets.
    host: String,
    port: Option<u16>,
}

impl PublicUrl {
    /// Accepts `http` or `https`, a host, an optional port and an optional `/` path; nothing
    /// else (a path prefix, credentials, query) because apps are always served at the root.
    pub fn parse(url: &str) -> Result<Self, RoutesError> {
        let bad = |reason: &str| RoutesError::InvalidPublicUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected http://host or https://host"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !path.is_empty() && path != "/" {
            return Err(bad(
                "must not have a path, query or fragment (Bloud is served at the root)",
            ));
        }
        if authority.contains('@') {
            return Err(bad("must not contain credentials"));
        }
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let end = after.find(']').ok_or_else(|| bad("unclosed `[` in host"))?;
            let host = &authority[..end + 2];
            let tail = &after[end + 1..];
            match tail.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None if tail.is_empty() => (host, None),
                None => return Err(bad("unexpected text after the IPv6 host")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let host_ok = if let Some(inner) = host.strip_prefix('[') {
            let inner = inner.strip_suffix(']').unwrap_or(inner);
            !inner.is_empty()
                && inner
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.'))
        } else {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        };
        if !host_ok {
            return Err(bad("the host is empty or contains invalid characters"));
        }
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
            ),
            None => None,
        };
        Ok(PublicUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    fn default_port(&self) -> u16 {
        if self.scheme == "https" {
            443
        } else {
            80
        }
    }

    /// The port the browser connects to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.default_port())
    }

    /// `host[:port]` as the browser sends it in `Host` (no port when it is the default).
    pub fn host_header(&self) -> String {
        match self.port {
            Some(p) if p != self.default_port() => format!("{}:{p}", self.host),
            _ => self.host.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PublicUrl;

    #[test]
    fn parses_common_forms() {
        let u = PublicUrl::parse("http://bloud.local").unwrap();
        assert_eq!(
            (u.scheme(), u.host_header(), u.port()),
            ("http", "bloud.local".into(), 80)
        );
        let u = PublicUrl::parse("http://Bloud.Local:8080/").unwrap();
        assert_eq!(
            (u.host_header(), u.port()),
            ("bloud.local:8080".into(), 8080)
        );
        let u = PublicUrl::parse("https://box.example:443").unwrap();
        assert_eq!((u.host_header(), u.port()), ("box.example".into(), 443));
        let u = PublicUrl::parse("https://[fd00::1]:8443").unwrap();
        assert_eq!((u.host_header(), u.port()), ("[fd00::1]:8443".into(), 8443));
    }

    #[test]
    fn rejects_what_cannot_be_a_root_origin() {
        for bad in [
            "bloud.local",
            "ftp://bloud.local",
            "http://",
            "http://bloud.local/shell",
            "http://user@bloud.local",
            "http://bloud.local:0",
            "http://bloud.local:99999",
            "http://bloud local",
            "http://[::1",
            "http://::1",
            "http://[]:80",
            "http://[zz]",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
