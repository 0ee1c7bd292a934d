//! The project's own Bloud-shaped route files (`tests/fixtures/traefik`: base table, Authentik
//! root routes, apps as bloud-agent writes them, an SSO redirect), loaded by the real binary,
//! route as they would under Traefik; `bloud-proxy check` judges them and names what is wrong.

mod support;

use anyhow::ensure;
use serde_json::Value;
use support::fixtures::RouteFixtures;
use support::proxy::Proxy;
use support::upstream::{echo_header, refused_addr, Upstream};

/// The service ports used in the fixture files, and the upstream standing in for each.
const SERVICES: &[(&str, &str)] = &[
    ("http://127.0.0.1:3000", "agent"),
    ("http://127.0.0.1:5173", "shell"),
    ("http://127.0.0.1:9001", "sso"),
    ("http://127.0.0.1:8085", "miniflux"),
    ("http://127.0.0.1:3080", "adguard-home"),
    ("http://127.0.0.1:5006", "actual-budget"),
];

struct Setup {
    proxy: Proxy,
    apps: Vec<Upstream>,
}

impl Setup {
    /// GET `path`, which must be answered 200 by the upstream `server`: headers and echo.
    async fn reach(&self, path: &str, server: &str) -> (reqwest::header::HeaderMap, Value) {
        let (status, headers, body) = get_json(&self.proxy.url(path), &[]).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["server"], server, "{path}: {body}");
        (headers, body)
    }

    fn app(&self, name: &str) -> &Upstream {
        self.apps
            .iter()
            .find(|a| a.name == name)
            .expect("an upstream of that name")
    }
}

async fn setup() -> Setup {
    let mut apps = Vec::new();
    let mut rewrite = Vec::new();
    for (url, name) in SERVICES {
        let app = Upstream::start(name).await.expect("upstream");
        rewrite.push((url.to_string(), app.url()));
        apps.push(app);
    }
    let proxy = RouteFixtures::own()
        .proxy(&rewrite)
        .expect("fixture files")
        .start()
        .await
        .expect("proxy");
    Setup { proxy, apps }
}

fn client() -> reqwest::Client {
    support::client().expect("test client")
}

async fn get_json(
    url: &str,
    headers: &[(&str, &str)],
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let h = resp.headers().clone();
    let text = resp.text().await.expect("body");
    (
        status,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn fixture_routes_reach_the_right_upstreams() {
    let s = setup().await;

    // /api/v3 belongs to Authentik (priority 95), the rest of /api to the agent (90).
    s.reach("/api/v3/core/users", "sso").await;
    let (_, body) = s.reach("/api/apps/installed", "agent").await;
    assert_eq!(body["path"], "/api/apps/installed");
    s.reach("/auth/login", "agent").await;

    // Catch-all: the shell, with the cross-origin isolation headers.
    let (h, _) = s.reach("/apps/miniflux", "shell").await;
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert_eq!(h["cross-origin-embedder-policy"], "credentialless");

    // Authentik root routes carry the SSO frame headers (XFO removed, CSP replaced).
    let (h, _) = s.reach("/flows/-/default/authentication/", "sso").await;
    assert!(h.get("x-frame-options").is_none());
    assert_eq!(
        h["content-security-policy"],
        "frame-ancestors 'self' http://bloud.example:*"
    );
    assert_eq!(h["cross-origin-resource-policy"], "cross-origin");

    // authentik.yml sorts before base.yml: its sso-outpost (with the frame headers) wins.
    let (h, _) = s.reach("/outpost.goauthentik.io/start", "sso").await;
    assert_eq!(h["cross-origin-resource-policy"], "cross-origin");
    for path in [
        "/if/admin/",
        "/application/o/authorize/",
        "/static/x.js",
        "/-/health/live/",
    ] {
        s.reach(path, "sso").await;
    }
}

#[tokio::test]
async fn embedded_app_is_stripped_and_framable() {
    let s = setup().await;
    let p = &s.proxy;
    let (st, h, body) = get_json(
        &p.url("/embed/adguard-home/control/status?x=1"),
        &[("Host", "bloud.local")],
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(body["server"], "adguard-home");
    assert_eq!(body["path"], "/control/status");
    assert_eq!(body["query"], "x=1");
    let up = |name| echo_header(&body, name);
    assert_eq!(up("x-forwarded-prefix"), ["/embed/adguard-home"]);
    // passHostHeader: the app sees the browser's Host.
    assert_eq!(up("host"), ["bloud.local"]);
    // embed-forwarded-headers (defined in base.yml) overrides X-Forwarded-Host.
    assert_eq!(up("x-forwarded-host"), ["bloud.example:8080"]);
    assert_eq!(up("x-forwarded-proto"), ["http"]);
    // iframe-headers removed the restrictive headers, embed-isolation added COOP/COEP.
    assert!(h.get("x-frame-options").is_none(), "{h:?}");
    assert!(h.get("content-security-policy").is_none(), "{h:?}");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert_eq!(h["cross-origin-embedder-policy"], "credentialless");

    // The bare prefix gets its slash from the embed middleware (308, query kept); the prefix
    // with the slash becomes "/"; a longer name is not this app (segment-exact rule).
    let (status, h, _) = get_json(&s.proxy.url("/embed/miniflux?a=1"), &[]).await;
    assert_eq!(status, 308);
    assert_eq!(h["location"], "/embed/miniflux/?a=1");
    let (_, body) = s.reach("/embed/miniflux/", "miniflux").await;
    assert_eq!(body["path"], "/");
    assert_eq!(body["query"], Value::Null);
    s.reach("/embed/minifluxes/x", "shell").await;
}

#[tokio::test]
async fn forward_auth_app_asks_the_sso_outpost_first_and_keeps_its_own_headers() {
    let s = setup().await;
    let (h, body) = s
        .reach("/embed/actual-budget/budget?id=7", "actual-budget")
        .await;
    assert_eq!(body["path"], "/budget");
    let auth = s.app("sso").requests();
    assert_eq!(auth.len(), 1, "one forwardAuth call: {auth:?}");
    assert_eq!(
        auth[0].path_and_query,
        "/outpost.goauthentik.io/auth/traefik"
    );
    let uri: Vec<&str> = auth[0]
        .headers
        .iter()
        .filter(|(k, _)| k == "x-forwarded-uri")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(uri, ["/embed/actual-budget/budget?id=7"]);
    // The app's own header middleware, listed after the shared ones, sets COEP.
    assert_eq!(h["cross-origin-embedder-policy"], "require-corp");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert!(h.get("x-frame-options").is_none(), "{h:?}");
}

#[tokio::test]
async fn miniflux_login_redirects_without_reaching_miniflux() {
    let s = setup().await;
    let resp = client()
        .get(s.proxy.url("/embed/miniflux/login"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"],
        "/embed/miniflux/oauth2/oidc/redirect"
    );
    assert_eq!(
        s.app("miniflux").count(),
        0,
        "the proxy answers the redirect"
    );
}

#[tokio::test]
async fn edge_policy_and_error_pages() {
    let s = setup().await;
    let p = &s.proxy;
    // Spoofed forwarding headers from an untrusted peer are replaced.
    let (_, _, body) = get_json(
        &p.url("/api/apps"),
        &[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Real-Ip", "6.6.6.6"),
            ("Forwarded", "for=6.6.6.6"),
            ("True-Client-IP", "6.6.6.6"),
        ],
    )
    .await;
    let up = |name| echo_header(&body, name);
    assert_eq!(up("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(up("x-real-ip"), ["127.0.0.1"]);
    assert!(up("forwarded").is_empty());
    assert!(up("true-client-ip").is_empty());
    assert!(!up("x-forwarded-server").is_empty());

    // Dot-segments, raw or encoded, never reach an upstream.
    for path in [
        "/embed/miniflux/%2e%2e/%2e%2e/etc/passwd",
        "/api/../x",
        "/embed/miniflux/%2E%2E/x",
        "/embed/miniflux/./x",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n");
        let got = support::raw::send_default(p.web, req.as_bytes())
            .await
            .expect("raw request");
        assert_eq!(got.first_status(), Some(400), "{path}: {}", got.summary());
    }

    // The ping endpoint.
    let resp = client().get(p.url("/ping")).send().await.expect("ping");
    assert_eq!(resp.text().await.expect("body"), "OK");

    // The dashboard router points at api@internal, which has no dashboard: a small 404 page
    // naming the router.
    let resp = client()
        .get(p.url("/dashboard/"))
        .send()
        .await
        .expect("dashboard");
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.expect("body").contains("admin-dashboard"));
}

#[tokio::test]
async fn refused_upstream_is_502_naming_the_router_and_missing_route_is_404() {
    let dead = refused_addr().expect("refused addr");
    let routes = format!(
        "http:\n  routers:\n    dead-app:\n      rule: PathPrefix(`/embed/dead`)\n      service: dead\n  services:\n    dead:\n      loadBalancer:\n        servers:\n        - url: http://{dead}\n"
    );
    let p = Proxy::builder()
        .route_file("apps.yml", routes)
        .start()
        .await
        .expect("proxy");
    let resp = client()
        .get(p.url("/embed/dead/x"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 502);
    let body = resp.text().await.expect("body");
    assert!(body.contains("dead-app"), "{body}");
    let resp = client()
        .get(p.url("/nothing/here"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
    let metrics = p.metrics().await.expect("metrics");
    assert!(
        metrics.contains("bloud_proxy_upstream_connect_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("{code=\"5xx\",method=\"GET\",router=\"dead-app\"} 1"),
        "{metrics}"
    );
}

/// `bloud-proxy check` on the fixture files plus `dynamic/<name>` holding `yaml` exits 1 and
/// its output names each of `named` (the file, the feature).
async fn check_rejects_extra_file(name: &str, yaml: &str, named: &[&str]) -> anyhow::Result<()> {
    let (code, text) = RouteFixtures::own()
        .check_copy(|dir| Ok(std::fs::write(dir.join("dynamic").join(name), yaml)?))
        .await?;
    ensure!(code == Some(1), "check must exit 1 on {name}\n{text}");
    for want in named {
        ensure!(text.contains(want), "check output must name {want}\n{text}");
    }
    Ok(())
}

#[tokio::test]
async fn check_names_a_file_with_a_yaml_syntax_error_and_exits_1() -> anyhow::Result<()> {
    check_rejects_extra_file(
        "zz-broken.yml",
        "http:\n  routers:\n    broken:\n      rule: \"PathPrefix(`/broken`)\n      service: [unclosed\n",
        &["zz-broken.yml"],
    )
    .await
}

#[tokio::test]
async fn check_names_an_unsupported_middleware_and_exits_1() -> anyhow::Result<()> {
    check_rejects_extra_file(
        "zz-unsupported.yml",
        "http:\n  middlewares:\n    limit:\n      rateLimit:\n        average: 100\n",
        &["zz-unsupported.yml", "rateLimit"],
    )
    .await
}

#[tokio::test]
async fn check_names_an_unknown_static_key_and_exits_1() -> anyhow::Result<()> {
    let (code, text) = RouteFixtures::own()
        .check_copy(|dir| {
            let path = dir.join("traefik.yml");
            let mut doc: serde_json::Value =
                serde_saphyr::from_str(&std::fs::read_to_string(&path)?)?;
            doc["entryPoints"]["web"]["adress"] = "127.0.0.1:1".into();
            Ok(std::fs::write(&path, serde_saphyr::to_string(&doc)?)?)
        })
        .await?;
    ensure!(
        code == Some(1),
        "check must exit 1 on an unknown static key\n{text}"
    );
    ensure!(
        text.contains("adress"),
        "check output must name the unknown key\n{text}"
    );
    Ok(())
}

#[tokio::test]
async fn check_accepts_the_fixture_files_as_one_directory() -> anyhow::Result<()> {
    let (code, text) = RouteFixtures::own().check_copy(|_| Ok(())).await?;
    ensure!(
        code == Some(0),
        "bloud-proxy check must accept the fixture files\n{text}"
    );
    Ok(())
}
