//! Router selection: the highest-priority matching router wins, ties broken by router name.
//!
//! Routers are sorted once at build time, then indexed in two dimensions:
//! - host: a rule that can only match literal hosts (`Host(...)`, alone, in an `&&`, or an `||`
//!   whose every branch names hosts) goes into the index of each of those hosts; the others go
//!   into the host-free index. A lookup consults the host-free index and the request host's;
//! - path: within each of those, rules that imply a literal path prefix (`PathPrefix`, `Path`,
//!   `PathRegexp` anchored with `^` and starting with literal text, or a conjunction containing
//!   one) are in a byte trie keyed by that prefix, so only routers whose prefix is a prefix of
//!   the request path are evaluated, plus the few rules without a literal prefix.
//!
//! Ranks (the position in match order) are global, so the best match over both indexes is the
//! smallest matching rank, exactly as a linear scan of the sorted routers would find it. The full
//! rule is still evaluated for every candidate; the indexes only skip routers that cannot match.
//! Matching allocates nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::rules::{Matcher, RequestView};

/// Traefik's default priority: the length of the rule string; an explicit 0 means the default.
pub fn effective_priority(explicit: Option<i64>, rule: &str) -> i64 {
    match explicit {
        Some(p) if p != 0 => p,
        _ => rule.len() as i64,
    }
}

/// One router as seen by the index.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    /// Caller's identifier, returned on match.
    pub id: u32,
    pub name: Arc<str>,
    pub priority: i64,
    pub matcher: Arc<Matcher>,
}

#[derive(Debug, Default, Clone)]
struct TrieNode {
    /// (byte, child index) sorted by byte.
    children: Vec<(u8, u32)>,
    /// Ranks of routers whose required prefix ends exactly here, ascending.
    ranks: Vec<u32>,
}

/// Routers indexed by their literal path prefix: a byte trie plus the routers without one.
#[derive(Debug, Clone)]
struct PathIndex {
    nodes: Vec<TrieNode>,
    /// Ranks of routers without a literal path prefix, ascending.
    unindexed: Vec<u32>,
}

impl Default for PathIndex {
    fn default() -> Self {
        PathIndex {
            nodes: vec![TrieNode::default()],
            unindexed: Vec::new(),
        }
    }
}

impl PathIndex {
    /// Adds a router; ranks must come in ascending order so every list stays sorted.
    fn add(&mut self, prefix: Option<&str>, rank: u32) {
        let prefix = match prefix {
            Some(p) if !p.is_empty() => p.as_bytes(),
            _ => {
                self.unindexed.push(rank);
                return;
            }
        };
        let mut node = 0usize;
        for &b in prefix {
            let children = &self.nodes[node].children;
            node = match children.binary_search_by_key(&b, |(k, _)| *k) {
                Ok(i) => children[i].1 as usize,
                Err(i) => {
                    let new = self.nodes.len() as u32;
                    self.nodes.push(TrieNode::default());
                    self.nodes[node].children.insert(i, (b, new));
                    new as usize
                }
            };
        }
        self.nodes[node].ranks.push(rank);
    }

    /// Lowers `best` to the rank of the best matching router of this index, if it beats it.
    fn find(&self, sorted: &[IndexEntry], req: &RequestView<'_>, best: &mut u32) {
        let consider = |ranks: &[u32], best: &mut u32| {
            for &rank in ranks {
                if rank >= *best {
                    break;
                }
                if sorted[rank as usize].matcher.matches(req) {
                    *best = rank;
                    break;
                }
            }
        };
        consider(&self.unindexed, best);
        let mut node = 0usize;
        for &b in req.path.as_bytes() {
            let children = &self.nodes[node].children;
            match children.binary_search_by_key(&b, |(k, _)| *k) {
                Ok(i) => node = children[i].1 as usize,
                Err(_) => break,
            }
            consider(&self.nodes[node].ranks, best);
        }
    }
}

/// Sorted and indexed routers of one entry point.
#[derive(Debug, Clone, Default)]
pub struct RouterIndex {
    /// Routers in match order (rank = position).
    sorted: Vec<IndexEntry>,
    /// Routers that can match any host.
    any_host: PathIndex,
    /// Routers that require one of a few literal hosts, per host (lowercased, sorted by bytes);
    /// a router naming several hosts is in each of their indexes.
    hosts: Vec<(Box<str>, PathIndex)>,
}

impl RouterIndex {
    pub fn new(mut entries: Vec<IndexEntry>) -> Self {
        entries.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        let mut any_host = PathIndex::default();
        let mut hosts: BTreeMap<Box<str>, PathIndex> = BTreeMap::new();
        for (rank, entry) in entries.iter().enumerate() {
            let rank = rank as u32;
            let prefix = entry.matcher.required_path_prefix();
            match entry.matcher.required_hosts() {
                Some(required) => {
                    for host in required {
                        match hosts.get_mut(host) {
                            Some(idx) => idx.add(prefix, rank),
                            None => {
                                let mut idx = PathIndex::default();
                                idx.add(prefix, rank);
                                hosts.insert(host.into(), idx);
                            }
                        }
                    }
                }
                None => any_host.add(prefix, rank),
            }
        }
        RouterIndex {
            sorted: entries,
            any_host,
            hosts: hosts.into_iter().collect(),
        }
    }

    /// Routers in match order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.sorted
    }

    /// The index of the routers that require `host`, compared as the `Host` matcher does
    /// (ASCII case-insensitively), without allocating.
    fn host_index(&self, host: &str) -> Option<&PathIndex> {
        if self.hosts.is_empty() {
            return None;
        }
        // Keys are lowercase; most request hosts are too, and compare as plain strings.
        let found = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            let want = host.bytes().map(|b| b.to_ascii_lowercase());
            self.hosts
                .binary_search_by(|(key, _)| key.bytes().cmp(want.clone()))
        } else {
            self.hosts.binary_search_by(|(key, _)| (**key).cmp(host))
        };
        found.ok().map(|i| &self.hosts[i].1)
    }

    /// The id of the router that handles the request, if any.
    pub fn find(&self, req: &RequestView<'_>) -> Option<u32> {
        let mut best = u32::MAX;
        if let Some(idx) = self.host_index(req.host) {
            idx.find(&self.sorted, req, &mut best);
        }
        self.any_host.find(&self.sorted, req, &mut best);
        self.sorted.get(best as usize).map(|e| e.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse;
    use http::HeaderMap;

    fn index(routers: &[(&str, &str, Option<i64>)]) -> RouterIndex {
        RouterIndex::new(
            routers
                .iter()
                .enumerate()
                .map(|(i, (name, rule, prio))| IndexEntry {
                    id: i as u32,
                    name: (*name).into(),
                    priority: effective_priority(*prio, rule),
                    matcher: Arc::new(parse(rule).expect(rule)),
                })
                .collect(),
        )
    }

    fn route<'a>(
        idx: &RouterIndex,
        names: &[(&'a str, &str, Option<i64>)],
        method: &str,
        host: &str,
        path: &str,
    ) -> Option<&'a str> {
        let h = HeaderMap::new();
        let req = RequestView {
            method,
            host,
            path,
            query: None,
            headers: &h,
        };
        idx.find(&req).map(|id| names[id as usize].0)
    }

    #[test]
    fn priority_cases() {
        type Case<'a> = (
            &'a [(&'a str, &'a str, Option<i64>)],
            &'a str,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            // Explicit priority beats a longer rule.
            (
                &[
                    ("long", "PathPrefix(`/api/v3`)", Some(1)),
                    ("short", "PathPrefix(`/api`)", Some(2)),
                ],
                "/api/v3/x",
                Some("short"),
            ),
            // Default priority = rule length: the longer prefix wins.
            (
                &[
                    ("a", "PathPrefix(`/api`)", None),
                    ("b", "PathPrefix(`/api/v3`)", None),
                ],
                "/api/v3/x",
                Some("b"),
            ),
            // Explicit 0 means "use the length".
            (
                &[
                    ("a", "PathPrefix(`/api`)", Some(0)),
                    ("b", "PathPrefix(`/api/v3`)", Some(0)),
                ],
                "/api/v3/x",
                Some("b"),
            ),
            // Ties broken by name.
            (
                &[
                    ("zeta", "PathPrefix(`/x`)", Some(5)),
                    ("alpha", "PathPrefix(`/x`)", Some(5)),
                ],
                "/x",
                Some("alpha"),
            ),
            // Negative priorities are allowed and lose to the default.
            (
                &[
                    ("neg", "PathPrefix(`/`)", Some(-1)),
                    ("d", "PathPrefix(`/`)", None),
                ],
                "/x",
                Some("d"),
            ),
            // Regex router beating a prefix router by priority.
            (
                &[
                    ("re", "PathRegexp(`^/embed/[a-z]+/api`)", Some(150)),
                    ("p", "PathPrefix(`/embed/radarr`)", Some(100)),
                ],
                "/embed/radarr/api/v3",
                Some("re"),
            ),
            // Negation falls through to a lower priority router.
            (
                &[
                    (
                        "notpriv",
                        "PathPrefix(`/a`) && !PathPrefix(`/a/priv`)",
                        Some(10),
                    ),
                    ("all", "PathPrefix(`/`)", Some(1)),
                ],
                "/a/priv/x",
                Some("all"),
            ),
            (
                &[
                    (
                        "notpriv",
                        "PathPrefix(`/a`) && !PathPrefix(`/a/priv`)",
                        Some(10),
                    ),
                    ("all", "PathPrefix(`/`)", Some(1)),
                ],
                "/a/pub",
                Some("notpriv"),
            ),
            // Host rules are not indexed by path but still compete on priority.
            (
                &[
                    ("host", "Host(`app.local`)", Some(50)),
                    ("all", "PathPrefix(`/`)", Some(1)),
                ],
                "/x",
                Some("host"),
            ),
            // No match at all.
            (&[("a", "PathPrefix(`/a`)", None)], "/b", None),
        ];
        for (routers, path, want) in cases {
            let idx = index(routers);
            assert_eq!(
                route(&idx, routers, "GET", "app.local", path),
                *want,
                "routers {routers:?} path {path}"
            );
        }
    }

    #[test]
    fn raw_prefix_overlap_ties_go_to_the_name() {
        // "/embed/app1" is a raw prefix of "/embed/app12"; on equal priority the name decides.
        let routers: &[(&str, &str, Option<i64>)] = &[
            ("app12", "PathPrefix(`/embed/app12`)", Some(100)),
            ("app1", "PathPrefix(`/embed/app1`)", Some(100)),
        ];
        let idx = index(routers);
        assert_eq!(
            route(&idx, routers, "GET", "h", "/embed/app12/x"),
            Some("app1")
        );
    }

    #[test]
    fn upstream_table_priorities() {
        let routers: &[(&str, &str, Option<i64>)] = &[
            ("host-api", "PathPrefix(`/api`)", Some(90)),
            ("authentik-api", "PathPrefix(`/api/v3`)", Some(95)),
            ("bloud-ui", "PathPrefix(`/`)", Some(1)),
            (
                "miniflux-backend",
                "PathPrefix(`/embed/miniflux`)",
                Some(100),
            ),
            (
                "miniflux-login-redirect",
                "Path(`/embed/miniflux/login`)",
                Some(200),
            ),
        ];
        let idx = index(routers);
        let r = |p: &str| route(&idx, routers, "GET", "bloud.local", p);
        assert_eq!(r("/api/v3/x"), Some("authentik-api"));
        assert_eq!(r("/api/apps"), Some("host-api"));
        assert_eq!(r("/apix"), Some("host-api"));
        assert_eq!(r("/embed/miniflux/login"), Some("miniflux-login-redirect"));
        assert_eq!(r("/embed/miniflux/feeds"), Some("miniflux-backend"));
        assert_eq!(r("/embed/minifluxx"), Some("miniflux-backend"));
        assert_eq!(r("/"), Some("bloud-ui"));
        assert_eq!(r("/apps/x"), Some("bloud-ui"));
    }

    #[test]
    fn ten_thousand_prefix_routers() {
        let names: Vec<String> = (0..10_000).map(|i| format!("app{i}")).collect();
        let rules: Vec<String> = names
            .iter()
            .map(|n| format!("PathPrefix(`/embed/{n}/`)"))
            .collect();
        let routers: Vec<(&str, &str, Option<i64>)> = names
            .iter()
            .zip(&rules)
            .map(|(n, r)| (n.as_str(), r.as_str(), Some(100)))
            .collect();
        let idx = index(&routers);
        assert_eq!(
            route(&idx, &routers, "GET", "h", "/embed/app9999/x"),
            Some("app9999")
        );
        assert_eq!(
            route(&idx, &routers, "GET", "h", "/embed/app12/x"),
            Some("app12")
        );
        assert_eq!(route(&idx, &routers, "GET", "h", "/embed/app12"), None);
        assert_eq!(route(&idx, &routers, "GET", "h", "/other"), None);
    }

    /// What the index must answer: the first router in match order whose rule matches.
    fn linear(idx: &RouterIndex, req: &RequestView<'_>) -> Option<u32> {
        idx.entries()
            .iter()
            .find(|e| e.matcher.matches(req))
            .map(|e| e.id)
    }

    #[test]
    fn host_rules_compete_with_host_free_rules_on_priority_and_name() {
        type Case<'a> = (&'a [(&'a str, &'a str, Option<i64>)], &'a str, &'a str);
        let cases: &[Case] = &[
            // Equal priority: the name decides, whichever index each router is in.
            (
                &[
                    ("a-any", "PathPrefix(`/`)", Some(10)),
                    ("b-host", "Host(`app.local`)", Some(10)),
                ],
                "app.local",
                "a-any",
            ),
            (
                &[
                    ("b-any", "PathPrefix(`/`)", Some(10)),
                    ("a-host", "Host(`app.local`)", Some(10)),
                ],
                "app.local",
                "a-host",
            ),
            // Higher priority wins across the indexes, both ways.
            (
                &[
                    ("any", "PathPrefix(`/x`)", Some(11)),
                    ("host", "Host(`app.local`) && PathPrefix(`/x`)", Some(10)),
                ],
                "app.local",
                "any",
            ),
            (
                &[
                    ("any", "PathPrefix(`/x`)", Some(10)),
                    ("host", "Host(`app.local`) && PathPrefix(`/`)", Some(11)),
                ],
                "app.local",
                "host",
            ),
            // Another host's router never answers.
            (
                &[
                    ("other", "Host(`other.local`)", Some(50)),
                    ("any", "PathPrefix(`/`)", Some(1)),
                ],
                "app.local",
                "any",
            ),
            // The full rule still decides within a host's index.
            (
                &[
                    ("post", "Host(`app.local`) && Method(`POST`)", Some(50)),
                    ("get", "Host(`app.local`) && Method(`GET`)", Some(40)),
                ],
                "app.local",
                "get",
            ),
            // HostRegexp is not indexed by host and still matches.
            (
                &[
                    ("re", "HostRegexp(`^app\\.`)", Some(50)),
                    ("host", "Host(`app.local`)", Some(40)),
                ],
                "app.local",
                "re",
            ),
        ];
        for (routers, host, want) in cases {
            let idx = index(routers);
            assert_eq!(
                route(&idx, routers, "GET", host, "/x/y"),
                Some(*want),
                "routers {routers:?} host {host}"
            );
        }
    }

    #[test]
    fn host_index_case_port_and_alternatives() {
        let routers: &[(&str, &str, Option<i64>)] = &[
            ("one", "Host(`App.Local`)", Some(10)),
            ("two", "Host(`a.local`) || Host(`B.local`)", Some(10)),
            (
                "three",
                "Host(`c.local`, `d.local`) && PathPrefix(`/api`)",
                Some(10),
            ),
            ("ui", "PathPrefix(`/`)", Some(1)),
        ];
        let idx = index(routers);
        let r = |host: &str, path: &str| route(&idx, routers, "GET", host, path);
        // Case-insensitive on both sides, as the Host matcher compares.
        assert_eq!(r("app.local", "/"), Some("one"));
        assert_eq!(r("APP.LOCAL", "/"), Some("one"));
        assert_eq!(r("a.local", "/"), Some("two"));
        assert_eq!(r("b.local", "/"), Some("two"));
        assert_eq!(r("B.Local", "/"), Some("two"));
        assert_eq!(r("c.local", "/api/x"), Some("three"));
        assert_eq!(r("D.LOCAL", "/api"), Some("three"));
        assert_eq!(r("d.local", "/web"), Some("ui"));
        assert_eq!(r("e.local", "/api"), Some("ui"));
        assert_eq!(r("", "/"), Some("ui"));
        // The proxy strips the port from the Host header before routing.
        let stripped = crate::edge::strip_port("App.Local:8080");
        assert_eq!(r(stripped, "/"), Some("one"));
        let stripped = crate::edge::strip_port("b.local:443");
        assert_eq!(r(stripped, "/"), Some("two"));
        // Unstripped, the Host matcher does not match (same answer as without the index).
        assert_eq!(r("app.local:8080", "/"), Some("ui"));
    }

    /// Every kind of rule, many routers, many requests: the index gives the linear answer.
    #[test]
    fn index_agrees_with_a_linear_scan() {
        let rules = [
            "PathPrefix(`/embed/a`)",
            "Path(`/embed/a`) || PathPrefix(`/embed/a/`)",
            "Host(`h1`)",
            "Host(`H2`) && PathPrefix(`/embed`)",
            "Host(`h1`) || Host(`h3`)",
            "Host(`h1`) || PathPrefix(`/api`)",
            "PathRegexp(`^/r/a/[0-9]+$`)",
            "PathRegexp(`^/embed/(a|b)/x`)",
            "PathRegexp(`(?i)^/EMBED/`)",
            "PathRegexp(`^/a|/api`)",
            "HostRegexp(`^h[0-9]$`) && PathPrefix(`/r`)",
            "!Host(`h1`) && PathPrefix(`/`)",
            "Method(`POST`) && Host(`h3`)",
            "PathPrefix(`/`)",
        ];
        let hosts = ["h1", "H1", "h2", "h3", "h4", "other"];
        let paths = [
            "/",
            "/embed/a",
            "/embed/a/x",
            "/embed/ab",
            "/embed/b/x",
            "/Embed/c",
            "/r/a/12",
            "/r/a/x",
            "/api",
            "/api/v1",
            "/a",
            "/x",
        ];
        let mut routers: Vec<(String, String, Option<i64>)> = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            for (j, prio) in [Some(5), Some(7), None].iter().enumerate() {
                routers.push((
                    format!("r{}-{i}", (i * 7 + j * 3) % 10),
                    rule.to_string(),
                    *prio,
                ));
            }
        }
        let routers: Vec<(&str, &str, Option<i64>)> = routers
            .iter()
            .map(|(n, r, p)| (n.as_str(), r.as_str(), *p))
            .collect();
        let idx = index(&routers);
        let h = HeaderMap::new();
        for host in hosts {
            for path in paths {
                for method in ["GET", "POST"] {
                    let req = RequestView {
                        method,
                        host,
                        path,
                        query: None,
                        headers: &h,
                    };
                    assert_eq!(idx.find(&req), linear(&idx, &req), "{method} {host} {path}");
                }
            }
        }
    }

    /// 10,000 routers of the kinds a real table mixes (embed prefixes, Host rules, anchored
    /// regexes, an API prefix, the catch-all), looked up by every kind of request.
    #[test]
    fn ten_thousand_mixed_routers() {
        let mut owned: Vec<(String, String, Option<i64>)> = Vec::new();
        for i in 0..9_998 {
            let rule = if i % 25 == 24 {
                format!("PathRegexp(`^/r/app-{i}/[0-9]+$`)")
            } else if i % 10 == 9 {
                format!("Host(`app-{i}.bloud.local`) && PathPrefix(`/`)")
            } else if i % 10 == 3 {
                format!("Host(`App-{i}.bloud.local`) || Host(`alt-{i}.bloud.local`)")
            } else {
                format!("Path(`/embed/app-{i}`) || PathPrefix(`/embed/app-{i}/`)")
            };
            owned.push((format!("app-{i}-backend"), rule, Some(100)));
        }
        owned.push(("host-api".into(), "PathPrefix(`/api`)".into(), Some(90)));
        owned.push(("bloud-ui".into(), "PathPrefix(`/`)".into(), Some(1)));
        let routers: Vec<(&str, &str, Option<i64>)> = owned
            .iter()
            .map(|(n, r, p)| (n.as_str(), r.as_str(), *p))
            .collect();
        assert_eq!(routers.len(), 10_000);
        let idx = index(&routers);
        let r = |host: &str, path: &str| route(&idx, &routers, "GET", host, path);
        assert_eq!(
            r("bloud.local", "/embed/app-4998/x.js"),
            Some("app-4998-backend")
        );
        assert_eq!(
            r("bloud.local", "/embed/app-4998"),
            Some("app-4998-backend")
        );
        assert_eq!(r("bloud.local", "/embed/app-49980"), Some("bloud-ui"));
        assert_eq!(r("bloud.local", "/r/app-24/123"), Some("app-24-backend"));
        assert_eq!(r("bloud.local", "/r/app-24/x"), Some("bloud-ui"));
        assert_eq!(r("bloud.local", "/r/app-9974/7"), Some("app-9974-backend"));
        assert_eq!(
            r("app-9.bloud.local", "/embed/app-4998/"),
            Some("app-4998-backend")
        );
        assert_eq!(r("app-9.bloud.local", "/index.html"), Some("app-9-backend"));
        assert_eq!(r("APP-9989.bloud.local", "/api"), Some("app-9989-backend"));
        assert_eq!(r("app-13.bloud.local", "/"), Some("app-13-backend"));
        assert_eq!(r("alt-9993.BLOUD.local", "/x"), Some("app-9993-backend"));
        assert_eq!(r("app-8.bloud.local", "/x"), Some("bloud-ui"));
        assert_eq!(r("bloud.local", "/api/apps"), Some("host-api"));
        assert_eq!(r("bloud.local", "/apps/x"), Some("bloud-ui"));
        // And every one of them agrees with the linear scan.
        let h = HeaderMap::new();
        for (host, path) in [
            ("bloud.local", "/embed/app-17/a"),
            ("app-19.bloud.local", "/embed/app-17/a"),
            ("app-4999.bloud.local", "/r/app-4999/1"),
            ("bloud.local", "/r/app-4999/1"),
            ("x", "/"),
        ] {
            let req = RequestView {
                method: "GET",
                host,
                path,
                query: None,
                headers: &h,
            };
            assert_eq!(idx.find(&req), linear(&idx, &req), "{host} {path}");
        }
    }
}
