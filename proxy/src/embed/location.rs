//! URL targets in response headers: `Location`, `Content-Location`, `Refresh`, `Link`.
//!
//! The same target rule serves HTML attributes (see `html.rs`): a root-absolute target, or an
//! absolute `http(s)` URL on the public origin or on the upstream's own address, gets the
//! prefix; everything else stays as the app wrote it.

use http::header::{HeaderName, CONTENT_LOCATION, LINK, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

use super::config::EmbedRewriter;
use super::is_ascii_ws;

/// The two origins a response's absolute URLs are compared against, built once per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    public: Option<Origin>,
    upstream: Option<Origin>,
}

/// One `scheme://host:port`, host lower-cased (IPv6 in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
    /// `host[:port]` as the browser writes it (default port omitted).
    authority: String,
}

impl Origin {
    fn parse(https: bool, authority: &str) -> Option<Origin> {
        if authority.is_empty()
            || !authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
        {
            return None;
        }
        let (host, port) = split_host_port(authority)?;
        let default = if https { 443 } else { 80 };
        let port = match port {
            Some(p) => p.parse::<u16>().ok()?,
            None => default,
        };
        let host = host.to_ascii_lowercase();
        let authority = if port == default {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        Some(Origin {
            https,
            host,
            port,
            authority,
        })
    }

    fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host == "[::1]"
            || self.host.starts_with("127.")
                && self.host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    }
}

/// `host[:port]` or `[v6][:port]` into host and optional port text.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let close = authority.find(']')?;
        let host = &authority[..=close];
        match &authority[close + 1..] {
            "" => Some((host, None)),
            rest => Some((host, Some(rest.strip_prefix(':')?))),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => Some((host, Some(port))),
            Some(_) => None,
            None => Some((authority, None)),
        }
    }
}

impl Origins {
    /// `public_scheme` is `http` or `https` as the browser used it, `public_host` the `Host`
    /// the browser sent (after forwarded-header policy), `upstream` the address the request
    /// went to (`127.0.0.1:8080` or `http://127.0.0.1:8080`). Values that are not a plain
    /// host name or address are treated as unknown, so they never reach generated URLs.
    pub fn new(public_scheme: &str, public_host: Option<&str>, upstream: Option<&str>) -> Self {
        let https = public_scheme.eq_ignore_ascii_case("https");
        let public = public_host.and_then(|h| Origin::parse(https, h.trim()));
        let upstream = upstream.and_then(|u| {
            let u = u.trim();
            let (https, rest) = if let Some(r) = strip_prefix_ci(u, "https://") {
                (true, r)
            } else if let Some(r) = strip_prefix_ci(u, "http://") {
                (false, r)
            } else {
                (false, u)
            };
            Origin::parse(https, rest.trim_end_matches('/'))
        });
        Origins { public, upstream }
    }

    /// `http://bloud.local` for generated URLs, or `""` when the public host is unknown.
    pub fn public_origin(&self) -> String {
        match &self.public {
            Some(o) => format!("{}://{}", o.scheme(), o.authority),
            None => String::new(),
        }
    }

    /// The public host without port (for cookie `Domain` checks).
    pub(crate) fn public_host(&self) -> Option<&str> {
        self.public.as_ref().map(|o| o.host.as_str())
    }

    fn matches_public(&self, https: bool, host: &str, port: u16) -> bool {
        self.public
            .as_ref()
            .is_some_and(|o| o.https == https && o.port == port && o.host == host)
    }

    fn matches_upstream(&self, host: &str, port: u16) -> bool {
        let Some(up) = &self.upstream else {
            return false;
        };
        if up.port != port {
            return false;
        }
        if up.host == host {
            return true;
        }
        // Apps print their bind address in several spellings of loopback.
        let other = Origin {
            https: false,
            host: host.to_owned(),
            port,
            authority: String::new(),
        };
        up.is_loopback() && other.is_loopback()
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

impl EmbedRewriter {
    /// Rewrites one URL target; `None` means "leave it as it is". Surrounding whitespace is
    /// kept (browsers strip it from attribute URLs, so it is not part of the target).
    pub fn rewrite_url(&self, value: &str, origins: &Origins) -> Option<String> {
        let start = value.len()
            - value
                .trim_start_matches(|c: char| c.is_ascii() && is_ascii_ws(c as u8))
                .len();
        let end = value
            .trim_end_matches(|c: char| c.is_ascii() && is_ascii_ws(c as u8))
            .len();
        if start >= end {
            return None;
        }
        let target = &value[start..end];
        let new = self.rewrite_target(target, origins)?;
        if start == 0 && end == value.len() {
            // No surrounding whitespace (the usual attribute value): no second copy.
            return Some(new);
        }
        let mut out = String::with_capacity(value.len() + self.prefix().len());
        out.push_str(&value[..start]);
        out.push_str(&new);
        out.push_str(&value[end..]);
        Some(out)
    }

    fn rewrite_target(&self, target: &str, origins: &Origins) -> Option<String> {
        if target.starts_with('/') {
            if self.needs_prefix(target.as_bytes()) {
                return Some(format!("{}{}", self.prefix(), target));
            }
            return None;
        }
        let (https, rest) = if let Some(r) = strip_prefix_ci(target, "http://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(target, "https://") {
            (true, r)
        } else {
            return None;
        };
        let auth_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        if authority.contains('@') {
            return None;
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            Some("") | None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => p.parse::<u16>().ok()?,
        };
        let host = host.to_ascii_lowercase();
        let tail = &rest[auth_end..];
        if tail.starts_with('\\') {
            return None;
        }
        let path = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        let prefix = if self.needs_prefix(path.as_bytes()) {
            self.prefix()
        } else {
            ""
        };
        if origins.matches_public(https, &host, port) {
            if prefix.is_empty() {
                return None;
            }
            // Keep the URL's own spelling of scheme and authority.
            let scheme_len = target.len() - rest.len();
            return Some(format!(
                "{}{}{}{}",
                &target[..scheme_len],
                authority,
                prefix,
                path
            ));
        }
        if origins.matches_upstream(&host, port) {
            // The browser cannot reach the upstream's own address: point it at the public
            // origin, or at a root-relative path when that origin is unknown.
            return Some(format!("{}{}{}", origins.public_origin(), prefix, path));
        }
        None
    }

    /// `Refresh: 5; url=/x` (also the `content` of `<meta http-equiv=refresh>`).
    pub fn rewrite_refresh(&self, value: &str, origins: &Origins) -> Option<String> {
        let (start, end) = refresh_url_span(value)?;
        let new = self.rewrite_url(&value[start..end], origins)?;
        Some(format!("{}{}{}", &value[..start], new, &value[end..]))
    }

    /// `Link: </x>; rel=preload, </y>; rel=modulepreload`: every `<target>` is rewritten.
    pub fn rewrite_link(&self, value: &str, origins: &Origins) -> Option<String> {
        let bytes = value.as_bytes();
        let mut out = String::new();
        let mut copied = 0;
        let mut changed = false;
        let mut i = 0;
        let mut in_quotes = false;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => in_quotes = !in_quotes,
                b'\\' if in_quotes => i += 1,
                b'<' if !in_quotes => {
                    let Some(len) = value[i + 1..].find('>') else {
                        break;
                    };
                    let inner = &value[i + 1..i + 1 + len];
                    if inner.contains('<') {
                        // No URI holds `<` (RFC 8288): a malformed list is left as it came.
                        return None;
                    }
                    if let Some(new) = self.rewrite_url(inner, origins) {
                        out.push_str(&value[copied..=i]);
                        out.push_str(&new);
                        copied = i + 1 + len;
                        changed = true;
                    }
                    i += len + 1;
                }
                _ => {}
            }
            i += 1;
        }
        if !changed {
            return None;
        }
        out.push_str(&value[copied..]);
        Some(out)
    }

    /// Applies every header rewrite this middleware enables to an upstream response's headers
    /// (call from the proxy's `response_filter`). Returns how many header values changed.
    /// Whether `headers` hold anything [`Self::rewrite_response_headers`] may change, so a
    /// caller can skip building [`Origins`] for the many responses that have none.
    pub fn touches_response_headers(&self, headers: &HeaderMap) -> bool {
        let cfg = self.config();
        (cfg.location
            && (headers.contains_key(LOCATION)
                || headers.contains_key(CONTENT_LOCATION)
                || headers.contains_key("refresh")
                || headers.contains_key(LINK)))
            || (cfg.cookie_path && headers.contains_key(SET_COOKIE))
    }

    pub fn rewrite_response_headers(&self, headers: &mut HeaderMap, origins: &Origins) -> usize {
        let mut changed = 0;
        if self.config().location {
            changed += rewrite_header(headers, &LOCATION, |v| self.rewrite_url(v, origins));
            changed += rewrite_header(headers, &CONTENT_LOCATION, |v| self.rewrite_url(v, origins));
            changed += rewrite_header(headers, &HeaderName::from_static("refresh"), |v| {
                self.rewrite_refresh(v, origins)
            });
            changed += rewrite_header(headers, &LINK, |v| self.rewrite_link(v, origins));
        }
        if self.config().cookie_path {
            changed += rewrite_header(headers, &SET_COOKIE, |v| {
                self.rewrite_set_cookie(v, origins)
            });
        }
        changed
    }
}

/// Rewrites each value of `name` in place, keeping order; values that are not UTF-8 or whose
/// rewrite is not a valid header value stay untouched.
fn rewrite_header(
    headers: &mut HeaderMap,
    name: &HeaderName,
    f: impl Fn(&str) -> Option<String>,
) -> usize {
    let mut changed = 0;
    let mut values = Vec::new();
    for v in headers.get_all(name) {
        let new = std::str::from_utf8(v.as_bytes())
            .ok()
            .and_then(&f)
            .and_then(|s| match HeaderValue::from_str(&s) {
                Ok(hv) => Some(hv),
                Err(_) => {
                    tracing::debug!(header = %name, value = %s, "rewritten header value is not valid, kept original");
                    None
                }
            });
        changed += usize::from(new.is_some());
        values.push(new.unwrap_or_else(|| v.clone()));
    }
    if changed == 0 {
        return 0;
    }
    headers.remove(name);
    for v in values {
        headers.append(name.clone(), v);
    }
    changed
}

/// Byte span of the URL in a refresh value, following the HTML "shared declarative refresh
/// steps": `N[.N] [;,] [url=]['"]URL['"]`.
fn refresh_url_span(value: &str) -> Option<(usize, usize)> {
    let b = value.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && is_ascii_ws(b[*i]) {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    skip_ws(&mut i);
    if i < b.len() && (b[i] == b';' || b[i] == b',') {
        i += 1;
    } else {
        return None;
    }
    skip_ws(&mut i);
    if b.len() >= i + 3 && b[i..i + 3].eq_ignore_ascii_case(b"url") {
        let mut j = i + 3;
        skip_ws(&mut j);
        if j < b.len() && b[j] == b'=' {
            j += 1;
            skip_ws(&mut j);
            i = j;
        }
    }
    let mut end = b.len();
    if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
        let quote = b[i];
        i += 1;
        end = b[i..]
            .iter()
            .position(|&c| c == quote)
            .map_or(b.len(), |p| i + p);
    }
    (i < end).then_some((i, end))
}

#[cfg(test)]
mod tests {
    use super::super::config::EmbedConfig;
    use super::*;

    fn rewriter() -> EmbedRewriter {
        let mut cfg = EmbedConfig::new("/embed/app");
        cfg.exclude = vec!["/openid-cb".into()];
        cfg.cookie_path = true;
        cfg.compile().expect("valid config")
    }

    fn origins() -> Origins {
        Origins::new("http", Some("Bloud.Local"), Some("127.0.0.1:8080"))
    }

    #[test]
    fn location_table() {
        let rw = rewriter();
        let o = origins();
        let cases: &[(&str, Option<&str>)] = &[
            ("/install.html", Some("/embed/app/install.html")),
            ("/", Some("/embed/app/")),
            (
                "/login?redirect=%2Fdashboard",
                Some("/embed/app/login?redirect=%2Fdashboard"),
            ),
            ("/page#section", Some("/embed/app/page#section")),
            ("/?a=/b", Some("/embed/app/?a=/b")),
            ("/embed/app/x", None),
            ("/embed/app", None),
            ("/embed/app?x=1", None),
            ("/embed/apple", Some("/embed/app/embed/apple")),
            ("/openid-cb?token=abc", None),
            ("/openid-cbx", Some("/embed/app/openid-cbx")),
            ("/outpost.goauthentik.io/start?rd=/x", None),
            ("/application/o/authorize/?client_id=1", None),
            ("/if/flow/default-authentication-flow/", None),
            // Authentik's `/-/` is shared: Datasette serves its assets and pages there.
            ("/-/static/app.css", Some("/embed/app/-/static/app.css")),
            ("//evil.example/x", None),
            ("/\\evil.example/x", None),
            ("relative/x", None),
            ("../up", None),
            ("?q=1", None),
            ("#frag", None),
            ("mailto:a@b", None),
            ("", None),
            // The public host, as the browser sees it: absolute form kept.
            (
                "http://bloud.local/control/",
                Some("http://bloud.local/embed/app/control/"),
            ),
            (
                "HTTP://BLOUD.LOCAL:80/x",
                Some("HTTP://BLOUD.LOCAL:80/embed/app/x"),
            ),
            ("http://bloud.local", Some("http://bloud.local/embed/app/")),
            (
                "http://bloud.local?x=1",
                Some("http://bloud.local/embed/app/?x=1"),
            ),
            ("http://bloud.local/embed/app/x", None),
            ("https://bloud.local/x", None),
            ("http://bloud.local:8080/x", None),
            ("http://user@bloud.local/x", None),
            // The upstream's own address: moved to the public origin.
            (
                "http://127.0.0.1:8080/control/",
                Some("http://bloud.local/embed/app/control/"),
            ),
            (
                "http://localhost:8080/login.html",
                Some("http://bloud.local/embed/app/login.html"),
            ),
            (
                "http://[::1]:8080/x#f",
                Some("http://bloud.local/embed/app/x#f"),
            ),
            (
                "http://127.0.0.1:8080/openid-cb?t=1",
                Some("http://bloud.local/openid-cb?t=1"),
            ),
            ("http://localhost:9090/x", None),
            ("https://other.example/x", None),
            ("http://other.example/", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                rw.rewrite_url(input, &o).as_deref(),
                *want,
                "Location: {input}"
            );
        }
    }

    #[test]
    fn ipv6_public_host() {
        let rw = rewriter();
        let o = Origins::new("https", Some("[fd00::5]:8443"), Some("http://[::1]:3000/"));
        assert_eq!(
            rw.rewrite_url("https://[FD00::5]:8443/a?b#c", &o)
                .as_deref(),
            Some("https://[FD00::5]:8443/embed/app/a?b#c")
        );
        assert_eq!(
            rw.rewrite_url("http://localhost:3000/a", &o).as_deref(),
            Some("https://[fd00::5]:8443/embed/app/a")
        );
        assert_eq!(rw.rewrite_url("https://[fd00::6]:8443/a", &o), None);
        assert_eq!(rw.rewrite_url("http://[::1/a", &o), None);
    }

    #[test]
    fn unknown_public_host_gives_root_relative_targets() {
        let rw = rewriter();
        let o = Origins::new("http", None, Some("127.0.0.1:8080"));
        assert_eq!(
            rw.rewrite_url("http://127.0.0.1:8080/x", &o).as_deref(),
            Some("/embed/app/x")
        );
        assert_eq!(rw.rewrite_url("http://bloud.local/x", &o), None);
        // A Host header that is not a host name is ignored, never echoed into URLs.
        let bad = Origins::new("http", Some("a\"><script>"), None);
        assert_eq!(bad.public_origin(), "");
    }

    #[test]
    fn whitespace_is_kept_around_targets() {
        let rw = rewriter();
        assert_eq!(
            rw.rewrite_url("  /x\n", &origins()).as_deref(),
            Some("  /embed/app/x\n")
        );
    }

    #[test]
    fn refresh_table() {
        let rw = rewriter();
        let o = origins();
        let cases: &[(&str, Option<&str>)] = &[
            ("0; url=/x", Some("0; url=/embed/app/x")),
            ("0;URL=/x?y=1", Some("0;URL=/embed/app/x?y=1")),
            ("5, url='/x'", Some("5, url='/embed/app/x'")),
            ("0; url = \"/x\" ", Some("0; url = \"/embed/app/x\" ")),
            ("0; /x", Some("0; /embed/app/x")),
            (
                "3.5; url=http://localhost:8080/y",
                Some("3.5; url=http://bloud.local/embed/app/y"),
            ),
            ("0; url=/embed/app/x", None),
            ("0; url=/openid-cb", None),
            ("0; url=https://other.example/", None),
            ("10", None),
            ("0; url=", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                rw.rewrite_refresh(input, &o).as_deref(),
                *want,
                "Refresh: {input}"
            );
        }
    }

    #[test]
    fn link_table() {
        let rw = rewriter();
        let o = origins();
        let cases: &[(&str, Option<&str>)] = &[
            ("</app.css>; rel=preload; as=style", Some("</embed/app/app.css>; rel=preload; as=style")),
            (
                "</a.js>; rel=modulepreload, <https://cdn.example/b.js>; rel=preload, </c.woff2>; rel=preload; as=font",
                Some("</embed/app/a.js>; rel=modulepreload, <https://cdn.example/b.js>; rel=preload, </embed/app/c.woff2>; rel=preload; as=font"),
            ),
            ("<b.css>; rel=preload", None),
            ("</embed/app/x>; rel=preload", None),
            ("<//cdn.example/x>; rel=preconnect", None),
            ("</x>; title=\"a, <b>\"; rel=preload", Some("</embed/app/x>; title=\"a, <b>\"; rel=preload")),
            ("</x; rel=broken", None),
            ("</a<b>; rel=preload, </c.css>; rel=preload", None),
            ("</a, </b>; rel=preload", None),
            ("<http://127.0.0.1:8080/f.js>; rel=preload", Some("<http://bloud.local/embed/app/f.js>; rel=preload")),
        ];
        for (input, want) in cases {
            assert_eq!(
                rw.rewrite_link(input, &o).as_deref(),
                *want,
                "Link: {input}"
            );
        }
    }

    #[test]
    fn response_headers_are_rewritten_in_place() {
        let rw = rewriter();
        let mut h = HeaderMap::new();
        h.insert(LOCATION, HeaderValue::from_static("/login.html"));
        h.insert(CONTENT_LOCATION, HeaderValue::from_static("/index.html"));
        h.insert("refresh", HeaderValue::from_static("0; url=/x"));
        h.append(LINK, HeaderValue::from_static("</a.css>; rel=preload"));
        h.append(
            LINK,
            HeaderValue::from_static("<https://x.example/b>; rel=preconnect"),
        );
        h.append(SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("b=2; Path=/embed/app/"),
        );
        h.insert("x-other", HeaderValue::from_static("/keep"));
        assert!(rw.touches_response_headers(&h));
        let n = rw.rewrite_response_headers(&mut h, &origins());
        assert_eq!(h[LOCATION], "/embed/app/login.html");
        assert_eq!(h[CONTENT_LOCATION], "/embed/app/index.html");
        assert_eq!(h["refresh"], "0; url=/embed/app/x");
        let links: Vec<_> = h.get_all(LINK).iter().collect();
        assert_eq!(
            links,
            [
                "</embed/app/a.css>; rel=preload",
                "<https://x.example/b>; rel=preconnect"
            ]
        );
        let cookies: Vec<_> = h.get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; Path=/embed/app/", "b=2; Path=/embed/app/"]);
        assert_eq!(h["x-other"], "/keep");
        assert_eq!(n, 5);
    }

    #[test]
    fn disabled_location_leaves_headers_alone() {
        let mut cfg = EmbedConfig::new("/embed/app");
        cfg.location = false;
        let rw = cfg.compile().expect("valid");
        let mut h = HeaderMap::new();
        h.insert(LOCATION, HeaderValue::from_static("/login"));
        h.insert(SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
        assert!(!rw.touches_response_headers(&h));
        assert_eq!(rw.rewrite_response_headers(&mut h, &origins()), 0);
        assert_eq!(h[LOCATION], "/login");
        assert_eq!(h[SET_COOKIE], "a=1; Path=/");
    }
}
