//! Criterion benches of bloud-proxy's per-request hot path, without sockets:
//! - `route/*`: router selection in tables of 10 to 10,000 routers (segment-exact embed prefixes
//!   as bloud-agent writes them, plus Host and PathRegexp rules and a catch-all);
//! - `request_phase/*`: what `request_filter` does for an embed route after parsing: route, look
//!   up the router id, run the request-side middleware chain (stripPrefix + headers), and apply
//!   the header edits to the upstream request; then the response-header edits;
//! - `build/*`: compiling a whole table, the cost of one reload;
//! - `metrics_observe`: what every finished request adds to its router's metrics.
//!
//! Run: `cargo bench --bench routing` (add `-- route/` to pick a group).

use std::hint::black_box;
use std::time::Duration;

use bloud_proxy::header_edit::{edit_request, edit_response};
use bloud_proxy::middleware::{
    apply_ops, ready, MiddlewareCtx, Outcome, RequestCx, RequestState, ResponseCx,
};
use bloud_proxy::{RequestView, RouteTable};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use http::HeaderMap;
use pingora::connectors::http::Connector;
use pingora::http::{RequestHeader, ResponseHeader};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// Middlewares shared by every app route, as in upstream's base.yml.
const SHARED_MIDDLEWARES: &str = r#"
    iframe-headers:
      headers:
        customResponseHeaders:
          X-Frame-Options: ""
          Content-Security-Policy: ""
    embed-isolation:
      headers:
        customResponseHeaders:
          Cross-Origin-Opener-Policy: "same-origin"
          Cross-Origin-Embedder-Policy: "credentialless"
    embed-forwarded-headers:
      headers:
        customRequestHeaders:
          X-Forwarded-Host: "localhost:8080"
          X-Forwarded-Proto: "http"
"#;

/// A route file with `n` routers: mostly embed apps (stripPrefix + the shared header
/// middlewares), every 10th a Host rule, every 25th a PathRegexp rule, plus `/api` and the
/// catch-all UI router. Every router has its own service, as generated files do.
fn route_file(n: usize) -> String {
    let mut routers = String::new();
    let mut middlewares = String::from(SHARED_MIDDLEWARES);
    let mut services = String::new();
    let apps = n.saturating_sub(2);
    for i in 0..apps {
        let (rule, mws) = if i % 25 == 24 {
            (format!("PathRegexp(`^/r/app-{i}/[0-9]+$`)"), String::new())
        } else if i % 10 == 9 {
            (
                format!("Host(`app-{i}.bloud.local`) && PathPrefix(`/`)"),
                String::new(),
            )
        } else {
            middlewares.push_str(&format!(
                "    app-{i}-strip:\n      stripPrefix:\n        prefixes: [\"/embed/app-{i}\"]\n"
            ));
            (
                format!("Path(`/embed/app-{i}`) || PathPrefix(`/embed/app-{i}/`)"),
                format!(
                    "\n      middlewares: [app-{i}-strip, iframe-headers, embed-isolation, embed-forwarded-headers]"
                ),
            )
        };
        routers.push_str(&format!(
            "    app-{i}-backend:\n      rule: \"{rule}\"\n      priority: 100{mws}\n      service: app-{i}\n"
        ));
        services.push_str(&format!(
            "    app-{i}:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:{}\"\n",
            10_000 + i
        ));
    }
    routers.push_str(
        "    host-api:\n      rule: \"PathPrefix(`/api`)\"\n      priority: 90\n      service: agent\n",
    );
    routers.push_str("    bloud-ui:\n      rule: \"PathPrefix(`/`)\"\n      priority: 1\n      middlewares: [embed-isolation]\n      service: agent\n");
    services.push_str(
        "    agent:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:3000\"\n",
    );
    format!("http:\n  routers:\n{routers}  middlewares:\n{middlewares}  services:\n{services}")
}

fn table(n: usize) -> RouteTable {
    match RouteTable::from_yaml(&[("bench-routes.yml", &route_file(n))]) {
        Ok(t) => t,
        Err(problems) => panic!("bench route file with {n} routers does not load: {problems:?}"),
    }
}

fn view<'a>(host: &'a str, path: &'a str, headers: &'a HeaderMap) -> RequestView<'a> {
    RequestView {
        method: "GET",
        host,
        path,
        query: None,
        headers,
    }
}

/// The app in the middle of the table that has an embed route (not a Host/regex one).
fn embed_app(n: usize) -> usize {
    let mut i = n.saturating_sub(2) / 2;
    while i % 10 == 9 || i % 25 == 24 {
        i -= 1;
    }
    i
}

fn bench_route(c: &mut Criterion) {
    let mut g = c.benchmark_group("route");
    let headers = HeaderMap::new();
    for n in SIZES {
        let t = table(n);
        let app = embed_app(n);
        let embed_path = format!("/embed/app-{app}/static/js/main.js");
        let expect = format!("app-{app}-backend");
        // A bench that measures a wrong answer is worthless: check what each case selects.
        let cases: Vec<(&str, String, String, &str)> = vec![
            (
                "embed_prefix",
                "bloud.local".into(),
                embed_path,
                expect.as_str(),
            ),
            (
                "catch_all",
                "bloud.local".into(),
                "/apps/some-app/settings".into(),
                "bloud-ui",
            ),
            (
                "host_rule",
                format!("app-{}.bloud.local", if n > 10 { 9 } else { 999 }),
                "/index.html".into(),
                if n > 10 { "app-9-backend" } else { "bloud-ui" },
            ),
            (
                "regex_rule",
                "bloud.local".into(),
                "/r/app-24/123".into(),
                if n > 26 { "app-24-backend" } else { "bloud-ui" },
            ),
        ];
        for (name, host, path, want) in &cases {
            let req = view(host, path, &headers);
            let got = t.route("web", &req).map(|r| r.name.to_string());
            assert_eq!(
                got.as_deref(),
                Some(*want),
                "{name} with {n} routers picks the wrong router"
            );
            g.bench_with_input(BenchmarkId::new(*name, n), &req, |b, req| {
                b.iter(|| t.route("web", black_box(req)).map(|r| r.priority))
            });
        }
    }
    g.finish();
}

/// The request side of an embed route, the way the proxy runs it for every request.
fn bench_request_phase(c: &mut Criterion) {
    let mut g = c.benchmark_group("request_phase");
    let headers = HeaderMap::new();
    for n in SIZES {
        let t = table(n);
        let app = embed_app(n);
        let path = format!("/embed/app-{app}/api/v1/items");
        let mut upstream = match RequestHeader::build("GET", path.as_bytes(), None) {
            Ok(h) => h,
            Err(e) => panic!("request header: {e}"),
        };
        let _ = upstream.insert_header("Host", "bloud.local");
        let _ = upstream.insert_header("Accept", "*/*");
        let connector = Connector::new(None);
        let cx = RequestCx {
            original: &upstream,
            client_ip: None,
            connector: &connector,
        };

        // Behaviour check before timing: prefix stripped, forwarded headers set.
        let st = run_request_side(&t, &path, &headers, &cx);
        assert_eq!(st.path, "/api/v1/items", "strip prefix with {n} routers");
        let mut probe = upstream.clone();
        edit_request(&mut probe, |p| apply_ops(&mut p.headers, &st.header_ops));
        assert_eq!(
            probe
                .headers
                .get("x-forwarded-prefix")
                .map(|v| v.as_bytes()),
            Some(format!("/embed/app-{app}").as_bytes())
        );
        assert_eq!(
            probe.headers.get("x-forwarded-host").map(|v| v.as_bytes()),
            Some(&b"localhost:8080"[..])
        );

        g.bench_function(BenchmarkId::new("route_and_middlewares", n), |b| {
            b.iter(|| run_request_side(&t, black_box(&path), &headers, &cx))
        });
        g.bench_function(BenchmarkId::new("route_chain_and_header_edits", n), |b| {
            b.iter_batched_ref(
                || upstream.clone(),
                |req| {
                    let st = run_request_side(&t, black_box(&path), &headers, &cx);
                    edit_request(req, |p| apply_ops(&mut p.headers, &st.header_ops));
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    // Response side of the same route: delete X-Frame-Options/CSP, set COOP/COEP.
    let t = table(10);
    let path = format!("/embed/app-{}/", embed_app(10));
    let Some(router) = t.route("web", &view("bloud.local", &path, &headers)) else {
        panic!("no router for {path}");
    };
    let mut resp = ResponseHeader::build(200, None).unwrap_or_else(|e| panic!("{e}"));
    for (k, v) in [
        ("Content-Type", "text/html"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "frame-ancestors 'none'"),
        ("Content-Length", "1234"),
    ] {
        let _ = resp.insert_header(k, v);
    }
    let request = RequestHeader::build("GET", path.as_bytes(), None)
        .unwrap_or_else(|e| panic!("request header: {e}"));
    let cx = ResponseCx {
        request: &request,
        scheme: "http",
        host: "bloud.local",
        upstream: Some("127.0.0.1:8080"),
        downstream_h2: false,
    };
    let run = |r: &mut ResponseHeader| {
        let mut mcx = MiddlewareCtx::default();
        edit_response(r, |p| router.run_response_hooks(p, &cx, &mut mcx));
    };
    let mut probe = resp.clone();
    run(&mut probe);
    assert!(probe.headers.get("x-frame-options").is_none());
    assert_eq!(
        probe
            .headers
            .get("cross-origin-embedder-policy")
            .map(|v| v.as_bytes()),
        Some(&b"credentialless"[..])
    );
    c.bench_function("response_phase/header_edits", |b| {
        b.iter_batched_ref(|| resp.clone(), |r| run(r), BatchSize::SmallInput)
    });
}

/// Route (by index) + middleware chain, mirroring the proxy's `request_filter`.
fn run_request_side<'a>(
    t: &RouteTable,
    path: &'a str,
    headers: &HeaderMap,
    cx: &RequestCx<'_>,
) -> RequestState<'a> {
    let req = view("bloud.local", path, headers);
    // The proxy keeps the router's index in its per-request context.
    let Some(id) = t.route_id("web", &req) else {
        panic!("no router for {path}");
    };
    let Some(router) = t.router_by_id(black_box(id)) else {
        panic!("router {id} out of range for {path}");
    };
    let mut st = RequestState {
        method: "GET",
        scheme: "http",
        host: "bloud.local",
        path: path.into(),
        query: None,
        header_ops: Vec::new(),
    };
    let mut mcx = MiddlewareCtx::default();
    match ready(router.run_request_hooks(&mut st, cx, &mut mcx)) {
        Some(Outcome::Continue) => st,
        other => panic!("middlewares answered {other:?} for {path}"),
    }
}

fn bench_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    for n in SIZES {
        let text = route_file(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| RouteTable::from_yaml(&[("bench-routes.yml", text.as_str())]).is_ok())
        });
    }
    g.finish();
}

/// The per-request metrics cost: one router handle taken as the route table takes it, then one
/// observation per finished request, with the method spelled in lower case so the method lookup
/// does not end at its first comparison.
fn bench_metrics_observe(c: &mut Criterion) {
    let metrics = bloud_proxy::metrics::Metrics::default();
    let router = metrics.router("app-500-backend");
    let elapsed = Duration::from_micros(1_700);
    c.bench_function("metrics_observe", |b| {
        b.iter(|| router.observe(black_box("post"), black_box(200), black_box(elapsed)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_route, bench_request_phase, bench_build, bench_metrics_observe
}
criterion_main!(benches);
