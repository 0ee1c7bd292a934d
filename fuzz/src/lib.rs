//! Shared pieces of the fuzz targets: how an input becomes chunk boundaries and rewriter
//! settings, and the oracle every streaming rewriter must pass.

use bloud_proxy::embed::{EmbedConfig, EmbedRewriter, Origins};

/// An input for a streaming rewriter: settings byte, chunk boundaries, then the body.
///
/// Layout: `flags`, `n`, then `n` little-endian `u16` cut positions (taken modulo the body's
/// length), then the body. `n >= 0x80` cuts the body into single bytes instead, the worst case
/// for state carried between writes. Seeds in `seeds/` start with such a header.
pub struct Chunked<'a> {
    pub flags: u8,
    pub body: &'a [u8],
    cuts: Vec<usize>,
}

impl<'a> Chunked<'a> {
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (&flags, rest) = data.split_first()?;
        let (&n, rest) = rest.split_first()?;
        if n >= 0x80 {
            let cuts = (1..rest.len()).collect();
            return Some(Chunked {
                flags,
                body: rest,
                cuts,
            });
        }
        let n = usize::from(n % 16);
        if rest.len() < 2 * n {
            return None;
        }
        let (raw, body) = rest.split_at(2 * n);
        let mut cuts: Vec<usize> = raw
            .chunks_exact(2)
            .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (body.len() + 1))
            .collect();
        cuts.sort_unstable();
        Some(Chunked { flags, body, cuts })
    }

    /// The body in the chosen pieces (empty pieces included: a rewriter must accept them).
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        let mut out = Vec::with_capacity(self.cuts.len() + 1);
        let mut start = 0;
        for &c in &self.cuts {
            out.push(&self.body[start..c]);
            start = c;
        }
        out.push(&self.body[start..]);
        out
    }
}

/// Feeds `pieces` through a fresh stream from `make` and returns everything it wrote.
pub fn run_stream<S>(
    make: impl Fn() -> S,
    write: impl Fn(&mut S, &[u8]) -> Vec<u8>,
    finish: impl Fn(&mut S) -> Vec<u8>,
    pieces: &[&[u8]],
) -> Vec<u8> {
    let mut s = make();
    let mut out = Vec::new();
    for p in pieces {
        out.extend_from_slice(&write(&mut s, p));
    }
    out.extend_from_slice(&finish(&mut s));
    out
}

/// The oracle for a streaming rewriter: where the body is cut must not change the result.
pub fn assert_same(one_shot: &[u8], chunked: &[u8], pieces: &[&[u8]]) {
    if one_shot != chunked {
        let lens: Vec<usize> = pieces.iter().map(|p| p.len()).collect();
        panic!(
            "chunked output differs from one-shot output\n pieces: {lens:?}\n one-shot: {:?}\n chunked:  {:?}",
            String::from_utf8_lossy(one_shot),
            String::from_utf8_lossy(chunked)
        );
    }
}

/// The rewriter settings a flags byte selects: an `exclude` entry, cookie scoping, an
/// injected `<head>` block.
pub fn rewriter(flags: u8) -> EmbedRewriter {
    let mut cfg = EmbedConfig::new("/embed/app");
    if flags & 1 != 0 {
        cfg.exclude = vec!["/api".into(), "/openid-cb".into()];
    }
    cfg.cookie_path = flags & 2 != 0;
    if flags & 4 != 0 {
        cfg.inject = Some(bloud_proxy::embed::InjectConfig {
            config: None,
            src: Some("/embed/app/_bloud/intercept.js".into()),
            script: None,
        });
    }
    match cfg.compile() {
        Ok(rw) => rw,
        Err(e) => panic!("the fuzz targets' own embed config is invalid: {e}"),
    }
}

/// The origins of a request through the proxy: public `bloud.local`, upstream on loopback.
pub fn origins(flags: u8) -> Origins {
    if flags & 8 != 0 {
        Origins::new(
            "https",
            Some("bloud.local:8443"),
            Some("http://localhost:3000"),
        )
    } else {
        Origins::new("http", Some("bloud.local"), Some("127.0.0.1:3000"))
    }
}

/// Paths, hosts and query strings worth sending to a table built from `text`: the literals in
/// its rules (backtick or quote delimited), with variations around segment boundaries.
pub fn request_candidates(text: &str) -> (Vec<String>, Vec<String>, Vec<Option<String>>) {
    let mut paths = vec!["/".to_string(), "/x".to_string()];
    let mut hosts = vec!["bloud.local".to_string(), String::new()];
    let mut queries = vec![None];
    for delim in ['`', '"', '\''] {
        for (i, lit) in text.split(delim).enumerate() {
            // A few candidates of each kind: the checks run paths x hosts x queries requests.
            if i % 2 == 0 || lit.len() > 64 {
                continue;
            }
            if lit.starts_with('/') {
                if paths.len() >= 24 {
                    continue;
                }
                paths.push(lit.to_string());
                paths.push(format!("{lit}/x"));
                paths.push(format!("{lit}x"));
                let mut shorter = lit.chars();
                if shorter.next_back().is_some() && lit.len() > 1 {
                    paths.push(shorter.as_str().to_string());
                }
            } else if hosts.len() < 4 {
                hosts.push(lit.to_string());
                hosts.push(lit.to_ascii_uppercase());
                queries.push(Some(format!("{lit}={lit}")));
            }
        }
    }
    (paths, hosts, queries)
}

/// The oracle for the route table's index: for every candidate request, the router the index
/// picks is the first router, in the table's own match order, whose rule matches. A wrong
/// index makes a router unreachable or lets a request reach the wrong app.
pub fn check_routing(table: &bloud_proxy::RouteTable, text: &str) {
    let routers = table.entry_point_routers("web");
    let matchers: Vec<_> = routers
        .iter()
        .map(|r| match bloud_proxy::rules::parse(&r.rule) {
            Ok(m) => m,
            Err(e) => panic!("a rule in a built table does not parse again: {e}"),
        })
        .collect();
    let (paths, hosts, queries) = request_candidates(text);
    let headers = http::HeaderMap::new();
    for (i, path) in paths.iter().enumerate() {
        for host in &hosts {
            for query in &queries {
                // Both methods over the candidates, not every candidate with both.
                for method in [if i % 2 == 0 { "GET" } else { "POST" }] {
                    let req = bloud_proxy::RequestView {
                        method,
                        host,
                        path,
                        query: query.as_deref(),
                        headers: &headers,
                    };
                    let linear = routers
                        .iter()
                        .zip(&matchers)
                        .find(|(_, m)| m.matches(&req))
                        .map(|(r, _)| &*r.name);
                    let indexed = table.route("web", &req).map(|r| &*r.name);
                    assert_eq!(
                        indexed, linear,
                        "the index routes {method} {host} {path} {query:?} differently from a scan"
                    );
                }
            }
        }
    }
}

/// Whether the requirements a matcher reports for indexing hold for one request it matches.
pub fn check_requirements(m: &bloud_proxy::rules::Matcher, req: &bloud_proxy::RequestView<'_>) {
    if !m.matches(req) {
        return;
    }
    if let Some(prefix) = m.required_path_prefix() {
        assert!(
            req.path.starts_with(prefix),
            "rule {m} matches path {:?} but claims prefix {prefix:?}",
            req.path
        );
    }
    if let Some(hosts) = m.required_hosts() {
        let host = req.host.to_ascii_lowercase();
        assert!(
            hosts.contains(&host.as_str()),
            "rule {m} matches host {:?} but claims hosts {hosts:?}",
            req.host
        );
    }
}
