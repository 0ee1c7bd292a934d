//! Router selection: the highest-priority matching router wins, ties broken by router name.
//!
//! Routers are sorted once at build time. Rules that imply a literal path prefix (`PathPrefix`,
//! `Path`, or a conjunction containing one) are indexed in a byte trie keyed by that prefix, so a
//! lookup only evaluates routers whose prefix is a prefix of the request path, plus the few rules
//! without a literal prefix. Matching allocates nothing.

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

/// Sorted and indexed routers of one entry point.
#[derive(Debug, Clone, Default)]
pub struct RouterIndex {
    /// Routers in match order (rank = position).
    sorted: Vec<IndexEntry>,
    nodes: Vec<TrieNode>,
    /// Ranks of routers without a literal path prefix, ascending.
    unindexed: Vec<u32>,
}

impl RouterIndex {
    pub fn new(mut entries: Vec<IndexEntry>) -> Self {
        entries.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        let mut index = RouterIndex {
            sorted: Vec::with_capacity(entries.len()),
            nodes: vec![TrieNode::default()],
            unindexed: Vec::new(),
        };
        for (rank, entry) in entries.into_iter().enumerate() {
            let rank = rank as u32;
            match entry.matcher.required_path_prefix() {
                Some(prefix) if !prefix.is_empty() => index.insert(prefix.as_bytes(), rank),
                _ => index.unindexed.push(rank),
            }
            index.sorted.push(entry);
        }
        index
    }

    fn insert(&mut self, prefix: &[u8], rank: u32) {
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
        // Ranks are inserted in ascending order, so the list stays sorted.
        self.nodes[node].ranks.push(rank);
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Routers in match order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.sorted
    }

    /// The id of the router that handles the request, if any.
    pub fn find(&self, req: &RequestView<'_>) -> Option<u32> {
        let mut best = u32::MAX;
        let consider = |ranks: &[u32], best: &mut u32| {
            for &rank in ranks {
                if rank >= *best {
                    break;
                }
                if self.sorted[rank as usize].matcher.matches(req) {
                    *best = rank;
                    break;
                }
            }
        };
        consider(&self.unindexed, &mut best);
        let mut node = 0usize;
        for &b in req.path.as_bytes() {
            let children = &self.nodes[node].children;
            match children.binary_search_by_key(&b, |(k, _)| *k) {
                Ok(i) => node = children[i].1 as usize,
                Err(_) => break,
            }
            consider(&self.nodes[node].ranks, &mut best);
        }
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
}
