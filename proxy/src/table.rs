//! The compiled route table: routers (rules compiled, middlewares resolved and flattened,
//! services built) indexed per entry point. One table is immutable; reloads build a new one and
//! swap it in whole.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::dynamic::{MiddlewareConfig, RouterConfig};
use crate::config::file_provider::{merge_text, MergedConfig, Sourced};
use crate::config::{Problem, Problems};
use crate::metrics::{Metrics, RouterMetrics};
use crate::middleware::{self, chain, Compiled, Middleware};
use crate::router::{effective_priority, IndexEntry, RouterIndex};
use crate::rules::{self, RequestView};
use crate::service::{Internal, Service};

/// Priority of the internal routers (Traefik uses MaxInt-1 so users can still override).
pub const INTERNAL_PRIORITY: i64 = i64::MAX - 1;

/// A router ready to serve.
#[derive(Debug)]
pub struct CompiledRouter {
    pub name: Arc<str>,
    pub rule: String,
    pub priority: i64,
    pub entry_points: Vec<String>,
    /// Leaf middlewares in order (chains expanded).
    pub middlewares: Vec<Arc<Compiled>>,
    /// Middleware names as written on the router.
    pub middleware_names: Vec<String>,
    pub service_name: String,
    pub service: Arc<Service>,
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub metrics: Arc<RouterMetrics>,
    /// Whether a middleware edits the response (`headers` response ops or `embed`): decided
    /// once here so the response phase of every other router does nothing.
    pub edits_response: bool,
    /// Forwarding headers this router's middlewares set or remove themselves.
    pub forwarded_overrides: crate::edge::ForwardedOverrides,
}

impl CompiledRouter {
    /// Runs the request hooks of the chain in order, as the proxy does.
    pub async fn run_request_hooks(
        &self,
        st: &mut middleware::RequestState<'_>,
        cx: &middleware::RequestCx<'_>,
        mcx: &mut middleware::MiddlewareCtx,
    ) -> middleware::Outcome {
        middleware::run_request(&self.middlewares, st, cx, mcx).await
    }

    /// Runs the response-header hooks of the chain (last middleware first, as Traefik nests
    /// them), as the proxy does.
    pub fn run_response_hooks(
        &self,
        resp: &mut http::response::Parts,
        cx: &middleware::ResponseCx<'_>,
        mcx: &mut middleware::MiddlewareCtx,
    ) {
        middleware::run_response_headers(&self.middlewares, resp, cx, mcx);
    }
}

/// Facts about a middleware for the API.
#[derive(Debug, Clone)]
pub struct MiddlewareInfo {
    pub kind: &'static str,
    pub file: PathBuf,
    pub used_by: Vec<String>,
}

/// Facts about a service for the API.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub service: Arc<Service>,
    pub file: Option<PathBuf>,
    pub used_by: Vec<String>,
}

/// What the static configuration contributes to a table build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub entry_points: Vec<String>,
    /// Entry points of routers without `entryPoints`.
    pub default_entry_points: Vec<String>,
    /// Internal endpoints: (entry point, service) pairs.
    pub internal: Vec<(String, Internal)>,
    pub generation: u64,
    pub metrics: Arc<Metrics>,
}

impl BuildOptions {
    /// One entry point called `web`, no internal endpoints; for tests and benchmarks.
    pub fn single_entry_point() -> Self {
        BuildOptions {
            entry_points: vec!["web".into()],
            default_entry_points: vec!["web".into()],
            internal: Vec::new(),
            generation: 1,
            metrics: Arc::new(Metrics::default()),
        }
    }
}

#[derive(Debug)]
pub struct RouteTable {
    pub generation: u64,
    pub routers: Vec<CompiledRouter>,
    /// Per entry point. A home server has two or three, so a scan of short names beats hashing
    /// the name on every request.
    indexes: Vec<(Box<str>, RouterIndex)>,
    pub middlewares: BTreeMap<String, MiddlewareInfo>,
    pub services: BTreeMap<String, ServiceInfo>,
    /// Warnings of the load that produced this table.
    pub warnings: Vec<Problem>,
    pub files: Vec<PathBuf>,
    /// Certificates of the TLS entry points (`tls` sections), swapped together with the routes.
    pub tls: Arc<crate::tls::CertTable>,
}

impl RouteTable {
    /// A table with no routers (every request gets 404).
    pub fn empty(opts: &BuildOptions) -> RouteTable {
        Self::build(&MergedConfig::default(), opts).unwrap_or(RouteTable {
            generation: 0,
            routers: Vec::new(),
            indexes: Vec::new(),
            middlewares: BTreeMap::new(),
            services: BTreeMap::new(),
            warnings: Vec::new(),
            files: Vec::new(),
            tls: Default::default(),
        })
    }

    /// Builds a table from in-memory YAML documents `(file name, text)`, merged in the given order.
    /// Entry point `web` only. Meant for benchmarks and tests.
    pub fn from_yaml(files: &[(&str, &str)]) -> Result<RouteTable, Problems> {
        let mut merged = MergedConfig::default();
        for (name, text) in files {
            merge_text(&mut merged, Path::new(name), text);
        }
        Self::build(&merged, &BuildOptions::single_entry_point())
    }

    /// The router that handles a request arriving on `entry_point`.
    #[inline]
    pub fn route(&self, entry_point: &str, req: &RequestView<'_>) -> Option<&CompiledRouter> {
        let id = self.index(entry_point)?.find(req)?;
        self.routers.get(id as usize)
    }

    fn index(&self, entry_point: &str) -> Option<&RouterIndex> {
        self.indexes
            .iter()
            .find(|(name, _)| &**name == entry_point)
            .map(|(_, idx)| idx)
    }

    pub fn router_by_id(&self, id: usize) -> Option<&CompiledRouter> {
        self.routers.get(id)
    }

    /// Like [`RouteTable::route`], returning the router's index (for per-request state).
    #[inline]
    pub fn route_id(&self, entry_point: &str, req: &RequestView<'_>) -> Option<usize> {
        let id = self.index(entry_point)?.find(req)? as usize;
        (id < self.routers.len()).then_some(id)
    }

    /// Routers of an entry point in match order.
    pub fn entry_point_routers(&self, entry_point: &str) -> Vec<&CompiledRouter> {
        self.index(entry_point)
            .map(|idx| {
                idx.entries()
                    .iter()
                    .filter_map(|e| self.routers.get(e.id as usize))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Compiles merged configuration. Any error (including problems recorded while reading files)
    /// fails the whole build, so a broken file never replaces a working table.
    pub fn build(merged: &MergedConfig, opts: &BuildOptions) -> Result<RouteTable, Problems> {
        let mut b = Builder::new(merged, opts);
        b.middlewares();
        b.services();
        b.routers();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let (tls, tls_problems) = crate::tls::CertTable::build(merged, now);
        b.problems.extend(tls_problems);
        if b.problems.iter().any(Problem::is_error) {
            return Err(Problems(b.problems));
        }
        b.internal_routers();
        let indexes = b.indexes();
        Ok(RouteTable {
            generation: opts.generation,
            routers: b.routers,
            indexes,
            middlewares: b.middleware_info,
            services: b.services,
            warnings: b.problems,
            files: merged.files.clone(),
            tls: Arc::new(tls),
        })
    }
}

/// One table build in progress: each step adds what it compiled and the problems it met.
struct Builder<'a> {
    merged: &'a MergedConfig,
    opts: &'a BuildOptions,
    problems: Vec<Problem>,
    /// Every middleware's config by name, to flatten chains.
    configs: BTreeMap<String, MiddlewareConfig>,
    /// Leaf middlewares, compiled once and shared by the routers that use them.
    compiled: BTreeMap<String, Arc<Compiled>>,
    middleware_info: BTreeMap<String, MiddlewareInfo>,
    services: BTreeMap<String, ServiceInfo>,
    routers: Vec<CompiledRouter>,
    /// Each router's rule, by position in `routers`, for the indexes.
    matchers: Vec<(usize, Arc<rules::Matcher>)>,
}

impl<'a> Builder<'a> {
    fn new(merged: &'a MergedConfig, opts: &'a BuildOptions) -> Self {
        Builder {
            merged,
            opts,
            problems: merged.problems.clone(),
            configs: merged
                .middlewares
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
            compiled: BTreeMap::new(),
            middleware_info: BTreeMap::new(),
            services: BTreeMap::new(),
            routers: Vec::new(),
            matchers: Vec::new(),
        }
    }

    fn error<T>(&mut self, src: &Sourced<T>, message: String) {
        self.problems
            .push(Problem::error(&src.file, src.line, message));
    }

    /// Compiles every leaf middleware once; chains are only checked here (they are flattened
    /// per router).
    fn middlewares(&mut self) {
        let merged = self.merged;
        for (name, src) in &merged.middlewares {
            let kind = match middleware::single_kind(&src.value) {
                Ok(k) => k,
                Err(e) => {
                    self.error(src, format!("http.middlewares.{name}: {e}"));
                    continue;
                }
            };
            self.middleware_info.insert(
                name.clone(),
                MiddlewareInfo {
                    kind,
                    file: src.file.clone(),
                    used_by: Vec::new(),
                },
            );
            if kind == "chain" {
                if let Err(e) = chain::flatten(std::slice::from_ref(name), &self.configs) {
                    self.error(src, format!("http.middlewares.{name}.chain: {e}"));
                }
                continue;
            }
            match middleware::compile(&src.value) {
                Ok(m) => {
                    self.compiled.insert(name.clone(), Arc::new(m));
                }
                Err(e) => self.error(src, format!("http.middlewares.{name}.{e}")),
            }
        }
    }

    fn services(&mut self) {
        let merged = self.merged;
        for (name, src) in &merged.services {
            match Service::new(&src.value) {
                Ok(s) => {
                    self.services.insert(
                        name.clone(),
                        ServiceInfo {
                            service: Arc::new(s),
                            file: Some(src.file.clone()),
                            used_by: Vec::new(),
                        },
                    );
                }
                Err(e) => self.error(src, format!("http.services.{name}.{e}")),
            }
        }
    }

    fn routers(&mut self) {
        let merged = self.merged;
        for (name, src) in &merged.routers {
            if let Err(e) = self.router(name, src) {
                self.error(src, format!("http.routers.{name}: {e}"));
            }
        }
    }

    /// One configured router. `Ok` also when it is skipped quietly because one of its
    /// middlewares failed to compile (that failure is already reported).
    fn router(&mut self, name: &str, src: &Sourced<RouterConfig>) -> Result<(), String> {
        let r = &src.value;
        let matcher = rules::parse(&r.rule).map_err(|e| format!("rule: {e}"))?;
        let leaf_names = chain::flatten(&r.middlewares, &self.configs)
            .map_err(|e| format!("middlewares: {e}"))?;
        let Some(mws) = leaf_names
            .iter()
            .map(|n| self.compiled.get(n).cloned())
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(());
        };
        for n in &r.middlewares {
            if let Some(info) = chain::local_name(n)
                .ok()
                .and_then(|n| self.middleware_info.get_mut(n))
            {
                info.used_by.push(name.to_string());
            }
        }
        let service =
            resolve_service(&r.service, &self.services).map_err(|e| format!("service: {e}"))?;
        if let Some(info) = self.services.get_mut(local_service_name(&r.service)) {
            info.used_by.push(name.to_string());
        }
        let entry_points = match &r.entry_points {
            Some(eps) => {
                if let Some(bad) = eps.iter().find(|e| !self.opts.entry_points.contains(e)) {
                    return Err(format!(
                        "entryPoints: no entry point named {bad:?} (defined: {})",
                        self.opts.entry_points.join(", ")
                    ));
                }
                eps.clone()
            }
            None => self.opts.default_entry_points.clone(),
        };
        let edits_response = mws.iter().any(|m| m.edits_response());
        let mut forwarded_overrides = crate::edge::ForwardedOverrides::default();
        for m in &mws {
            m.note_overrides(&mut forwarded_overrides);
        }
        self.routers.push(CompiledRouter {
            name: name.into(),
            priority: effective_priority(r.priority, &r.rule),
            rule: r.rule.clone(),
            entry_points,
            middlewares: mws,
            middleware_names: r.middlewares.clone(),
            service_name: r.service.clone(),
            service,
            file: Some(src.file.clone()),
            line: src.line,
            metrics: self.opts.metrics.router(name),
            edits_response,
            forwarded_overrides,
        });
        self.matchers
            .push((self.routers.len() - 1, Arc::new(matcher)));
        Ok(())
    }

    /// The ping, metrics and API routers on the entry points the static config names.
    fn internal_routers(&mut self) {
        for (ep, internal) in &self.opts.internal {
            let (name, rule) = match internal {
                Internal::Ping => ("ping@internal", "Path(`/ping`)"),
                Internal::Prometheus => ("prometheus@internal", "Path(`/metrics`)"),
                Internal::Api => ("api@internal", "PathPrefix(`/api`)"),
                Internal::Noop => continue,
            };
            let Ok(m) = rules::parse(rule) else { continue };
            self.routers.push(CompiledRouter {
                name: name.into(),
                rule: rule.to_string(),
                priority: INTERNAL_PRIORITY,
                entry_points: vec![ep.clone()],
                middlewares: Vec::new(),
                middleware_names: Vec::new(),
                service_name: name.to_string(),
                service: Arc::new(Service::Internal(*internal)),
                file: None,
                line: None,
                metrics: self.opts.metrics.router(name),
                edits_response: false,
                forwarded_overrides: Default::default(),
            });
            self.matchers.push((self.routers.len() - 1, Arc::new(m)));
        }
    }

    /// One router index per entry point, over the routers that listen there.
    fn indexes(&mut self) -> Vec<(Box<str>, RouterIndex)> {
        let mut per_ep: HashMap<String, Vec<IndexEntry>> = self
            .opts
            .entry_points
            .iter()
            .map(|e| (e.clone(), Vec::new()))
            .collect();
        for (id, matcher) in std::mem::take(&mut self.matchers) {
            let r = &self.routers[id];
            for ep in &r.entry_points {
                if let Some(list) = per_ep.get_mut(ep) {
                    list.push(IndexEntry {
                        id: id as u32,
                        name: r.name.clone(),
                        priority: r.priority,
                        matcher: matcher.clone(),
                    });
                }
            }
        }
        per_ep
            .into_iter()
            .map(|(ep, entries)| (ep.into_boxed_str(), RouterIndex::new(entries)))
            .collect()
    }
}

fn local_service_name(reference: &str) -> &str {
    reference.strip_suffix("@file").unwrap_or(reference)
}

fn resolve_service(
    reference: &str,
    services: &BTreeMap<String, ServiceInfo>,
) -> Result<Arc<Service>, String> {
    match reference.split_once('@') {
        Some((name, "internal")) => Internal::from_name(name)
            .map(|i| Arc::new(Service::Internal(i)))
            .ok_or_else(|| {
                format!("{reference:?}: unknown internal service (ping, api, noop, prometheus)")
            }),
        Some((name, "file")) | Some((name, "")) => lookup(name, services),
        Some((_, provider)) => Err(format!(
            "{reference:?}: provider {provider:?} is not available (only @file and @internal)"
        )),
        None => lookup(reference, services),
    }
}

fn lookup(name: &str, services: &BTreeMap<String, ServiceInfo>) -> Result<Arc<Service>, String> {
    services
        .get(name)
        .map(|s| s.service.clone())
        .ok_or_else(|| format!("service {name:?} is not defined"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    /// Upstream Bloud's real route files (the compatibility suite), when they are available.
    fn upstream_files(test: &str) -> Option<Vec<(String, String)>> {
        let dir = bloud_testkit::upstream_fixtures("traefik", test)?;
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("fixtures dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "traefik.yml")
            .collect();
        names.sort();
        Some(
            names
                .into_iter()
                .map(|n| {
                    let text = std::fs::read_to_string(dir.join(&n)).expect("read fixture");
                    (n, text)
                })
                .collect(),
        )
    }

    /// The repository's own route files: the base table and a route file bloud-agent generated
    /// for three apps (the agent's golden output).
    const OUR_BASE: &str = include_str!("../../config/routes/base.yml");
    const OUR_APPS: &str = include_str!("../../agent/tests/golden/multiple_apps.yml");

    fn route<'t>(t: &'t RouteTable, path: &str) -> Option<&'t str> {
        let h = HeaderMap::new();
        let req = RequestView {
            method: "GET",
            host: "bloud.local",
            path,
            query: None,
            headers: &h,
        };
        t.route("web", &req).map(|r| &*r.name)
    }

    #[test]
    fn every_fixture_loads_alone() {
        let Some(files) = upstream_files("every_fixture_loads_alone") else {
            return;
        };
        for (name, text) in files {
            let t = RouteTable::from_yaml(&[
                (name.as_str(), text.as_str()),
                ("base-for-refs.yml", BASE_MIDDLEWARES),
            ]);
            assert!(
                t.is_ok(),
                "{name}: {}",
                t.err().map(|e| e.to_string()).unwrap_or_default()
            );
        }
    }

    const BASE_MIDDLEWARES: &str = "http:\n  middlewares:\n    iframe-headers:\n      headers:\n        customResponseHeaders:\n          X-Frame-Options: ''\n    embed-isolation:\n      headers:\n        customResponseHeaders:\n          Cross-Origin-Opener-Policy: same-origin\n    embed-forwarded-headers:\n      headers:\n        customRequestHeaders:\n          X-Forwarded-Proto: http\n  services:\n    miniflux:\n      loadBalancer:\n        servers: [{url: 'http://127.0.0.1:8085'}]\n";

    #[test]
    fn upstream_installed_system_routes_like_traefik() {
        // authentik.yml, base.yml, one generated app file, miniflux-sso.yml: as on a real box.
        let Some(files) = upstream_files("upstream_installed_system_routes_like_traefik") else {
            return;
        };
        let pick = |n: &str| {
            files
                .iter()
                .find(|(f, _)| f == n)
                .map(|(_, t)| t.as_str())
                .unwrap_or("")
        };
        let t = RouteTable::from_yaml(&[
            ("apps-routes.yml", pick("golden-multiple_apps.yml")),
            ("authentik.yml", pick("authentik.yml")),
            ("base.yml", pick("base.yml")),
            ("miniflux-sso.yml", pick("miniflux-sso.yml")),
        ])
        .expect("upstream files load together");
        assert_eq!(route(&t, "/api/v3/core/users"), Some("authentik-api"));
        assert_eq!(route(&t, "/api/apps/installed"), Some("host-api"));
        assert_eq!(route(&t, "/auth/login"), Some("host-auth"));
        assert_eq!(
            route(&t, "/embed/miniflux/login"),
            Some("miniflux-login-redirect")
        );
        assert_eq!(route(&t, "/embed/miniflux/feeds"), Some("miniflux-backend"));
        assert_eq!(
            route(&t, "/embed/adguard-home/"),
            Some("adguard-home-backend")
        );
        assert_eq!(
            route(&t, "/outpost.goauthentik.io/start"),
            Some("authentik-outpost")
        );
        assert_eq!(route(&t, "/flows/-/default"), Some("authentik-flows"));
        assert_eq!(route(&t, "/dashboard/"), Some("traefik-dashboard"));
        assert_eq!(route(&t, "/apps/miniflux"), Some("bloud-ui"));
        // authentik.yml sorts first, so its authentik-outpost (priority 96, headers) wins.
        let outpost = t
            .routers
            .iter()
            .find(|r| &*r.name == "authentik-outpost")
            .expect("router");
        assert_eq!(outpost.priority, 96);
        assert_eq!(outpost.middleware_names, vec!["authentik-iframe-headers"]);
        assert!(t
            .warnings
            .iter()
            .any(|w| w.message.contains("authentik-outpost") && w.file == Path::new("base.yml")));
    }

    #[test]
    fn chain_helpers_for_benchmarks() {
        // Without the login check, which asks the agent (I/O; tests/shell_cookies.rs and
        // core_forward_auth_embed.rs run it against a server): the rest runs without waiting.
        let apps = OUR_APPS.replace("        - miniflux-auth\n", "");
        let t = RouteTable::from_yaml(&[("apps-routes.yml", &apps), ("base.yml", OUR_BASE)])
            .expect("valid");
        let h = HeaderMap::new();
        let req = RequestView {
            method: "GET",
            host: "bloud.local",
            path: "/embed/miniflux/x",
            query: None,
            headers: &h,
        };
        let r = t.route("web", &req).expect("routed");
        let mut st = middleware::RequestState {
            method: "GET",
            scheme: "http",
            host: "bloud.local",
            path: "/embed/miniflux/x".into(),
            query: None,
            header_ops: Vec::new(),
        };
        let original =
            pingora::http::RequestHeader::build("GET", b"/embed/miniflux/x", None).expect("req");
        let connector = pingora::connectors::http::Connector::new(None);
        let cx = middleware::RequestCx {
            original: &original,
            client_ip: None,
            connector: &connector,
        };
        let mut mcx = middleware::MiddlewareCtx::default();
        let outcome = middleware::ready(r.run_request_hooks(&mut st, &cx, &mut mcx));
        assert!(
            matches!(outcome, Some(middleware::Outcome::Continue)),
            "{outcome:?}"
        );
        assert_eq!(st.path, "/x");
        let (mut resp, ()) = http::Response::new(()).into_parts();
        resp.headers
            .insert("x-frame-options", http::HeaderValue::from_static("DENY"));
        let rcx = middleware::ResponseCx {
            request: &original,
            scheme: "http",
            host: "bloud.local",
            upstream: Some("127.0.0.1:8085"),
            downstream_h2: false,
        };
        r.run_response_hooks(&mut resp, &rcx, &mut mcx);
        let resp = resp.headers;
        assert!(resp.get("x-frame-options").is_none());
        assert_eq!(resp["cross-origin-embedder-policy"], "credentialless");
        assert!(r.edits_response, "{} edits responses", r.name);
        // The agent's routes leave every X-Forwarded-* to the proxy (the request's own).
        let o = r.forwarded_overrides;
        assert!(
            !(o.host || o.proto || o.port || o.forwarded_for || o.real_ip || o.server),
            "{}: {o:?}",
            r.name
        );
        let api = RequestView {
            path: "/api/apps",
            ..req
        };
        let r = t.route("web", &api).expect("routed");
        assert!(
            !r.edits_response,
            "{} has no response-editing middleware",
            r.name
        );
        assert_eq!(r.forwarded_overrides, Default::default());
    }

    #[test]
    fn reference_errors_name_file_key_and_line() {
        let text = "http:\n  routers:\n    r:\n      rule: PathPrefix(`/x`)\n      service: missing\n      middlewares: [nope@file]\n";
        let err = RouteTable::from_yaml(&[("apps.yml", text)]).expect_err("must fail");
        let msg = err.to_string();
        assert!(
            msg.contains(
                "apps.yml: http.routers.r: middlewares: middleware \"nope\" is not defined"
            ),
            "{msg}"
        );
        assert_eq!(err.0[0].line, Some(3));
        let text = "http:\n  routers:\n    r:\n      rule: Pathx(`/x`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers: [{url: 'http://127.0.0.1:1'}]\n";
        let err = RouteTable::from_yaml(&[("a.yml", text)]).expect_err("bad rule");
        assert!(err.to_string().contains("Pathx"), "{err}");
        let text = "http:\n  middlewares:\n    fa:\n      forwardAuth:\n        address: https://127.0.0.1:9/auth\n";
        let err = RouteTable::from_yaml(&[("a.yml", text)]).expect_err("no TLS");
        assert!(
            err.to_string()
                .contains("http.middlewares.fa.forwardAuth.address"),
            "{err}"
        );
        let text = "http:\n  middlewares:\n    e:\n      embed:\n        prefix: embed/x\n";
        let err = RouteTable::from_yaml(&[("a.yml", text)]).expect_err("bad prefix");
        assert!(
            err.to_string().contains("http.middlewares.e.embed.prefix"),
            "{err}"
        );
    }

    #[test]
    fn internal_services_and_entry_points() {
        let text = "http:\n  routers:\n    dash:\n      rule: PathPrefix(`/dashboard`)\n      service: api@internal\n    other:\n      rule: PathPrefix(`/`)\n      service: noop@internal\n      entryPoints: [admin]\n";
        let mut opts = BuildOptions::single_entry_point();
        opts.entry_points.push("admin".into());
        opts.internal.push(("web".into(), Internal::Ping));
        let mut merged = MergedConfig::default();
        merge_text(&mut merged, Path::new("a.yml"), text);
        let t = RouteTable::build(&merged, &opts).expect("valid");
        assert_eq!(route(&t, "/ping"), Some("ping@internal"));
        assert_eq!(route(&t, "/dashboard/x"), Some("dash"));
        assert_eq!(route(&t, "/x"), None, "`other` lives on admin only");
        let h = HeaderMap::new();
        let req = RequestView {
            method: "GET",
            host: "h",
            path: "/x",
            query: None,
            headers: &h,
        };
        assert_eq!(t.route("admin", &req).map(|r| &*r.name), Some("other"));
        let bad =
            "http:\n  routers:\n    r:\n      rule: PathPrefix(`/`)\n      service: s@docker\n";
        assert!(RouteTable::from_yaml(&[("a.yml", bad)]).is_err());
    }
}
