//! Compatibility suite: upstream Bloud's own Traefik files (`<fixtures>/traefik`, see
//! `support::upstream_fixtures`) load unchanged and route the way Traefik routes them on a
//! real Bloud box. Without those files each test says it is skipped and passes, unless
//! `BLOUD_REQUIRE_UPSTREAM_FIXTURES=1`.
//!
//! Layout as upstream deploys it: the static `traefik.yml` next to a `dynamic/` directory that
//! holds every other fixture file. Only the service URLs are rewritten (to our test upstreams)
//! and the listen address / directory of the static file (to the temp dir and a free port).

mod support;

use anyhow::{ensure, Context};
use reqwest::header::HeaderMap;
use support::fixtures::RouteFixtures;
use support::proxy::{tail, Proxy};
use support::upstream::{echo_header, Upstream, UPSTREAM_CSP, UPSTREAM_XFO};

/// The upstream ports used in the fixture files, and the app behind each.
const FIXTURE_SERVICES: &[(&str, &str)] = &[
    ("http://localhost:9001", "authentik"),
    ("http://localhost:3000", "agent"),
    ("http://localhost:5173", "ui"),
    ("http://localhost:8085", "miniflux"),
    ("http://localhost:5006", "actual-budget"),
    ("http://localhost:3080", "adguard-home"),
];

#[tokio::test]
async fn check_accepts_all_upstream_fixture_files_as_one_directory() -> anyhow::Result<()> {
    let Some(fixtures) = RouteFixtures::upstream() else {
        return Ok(());
    };
    let (code, text) = fixtures.check_copy(|_| Ok(())).await?;
    ensure!(
        code == Some(0),
        "bloud-proxy check must accept upstream's files unchanged\n{text}"
    );
    Ok(())
}

/// Upstreams standing in for the apps behind the fixture routes, and the proxy in front.
struct Stack {
    proxy: Proxy,
    apps: Vec<Upstream>,
}

impl Stack {
    /// `None` when upstream's files are not available (the test is then skipped).
    async fn start() -> anyhow::Result<Option<Stack>> {
        let Some(fixtures) = RouteFixtures::upstream() else {
            return Ok(None);
        };
        let mut apps = Vec::new();
        let mut rewrite = Vec::new();
        for (fixture_url, name) in FIXTURE_SERVICES {
            let app = Upstream::start(name).await?;
            rewrite.push((fixture_url.to_string(), app.url()));
            apps.push(app);
        }
        let proxy = fixtures.proxy(&rewrite)?.start().await?;
        Ok(Some(Stack { proxy, apps }))
    }

    fn app(&self, name: &str) -> anyhow::Result<&Upstream> {
        self.apps
            .iter()
            .find(|a| a.name == name)
            .with_context(|| format!("no upstream named {name}"))
    }

    /// GET through the proxy with `Host: bloud.local`; returns status, headers, body.
    async fn get(&self, path: &str) -> anyhow::Result<(u16, HeaderMap, String)> {
        let url = self.proxy.url(path);
        let resp = support::client()?
            .get(&url)
            .header("host", "bloud.local")
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .text()
            .await
            .with_context(|| format!("body of {url}"))?;
        Ok((status, headers, body))
    }

    /// GET that must reach the echo upstream `server`; returns the echo document and headers.
    async fn echo(
        &self,
        path: &str,
        server: &str,
    ) -> anyhow::Result<(serde_json::Value, HeaderMap)> {
        let (status, headers, body) = self.get(path).await?;
        ensure!(
            status == 200,
            "GET {path}: expected 200 from {server}, got {status}: {}",
            tail(&body, 400)
        );
        let doc: serde_json::Value = serde_json::from_str(&body).with_context(|| {
            format!(
                "GET {path}: body is not an echo reply: {}",
                tail(&body, 400)
            )
        })?;
        ensure!(
            doc["server"] == server,
            "GET {path}: expected upstream {server}, reached {} ({})",
            doc["server"],
            doc["path"]
        );
        Ok((doc, headers))
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

#[tokio::test]
async fn authentik_api_priority_95_wins_over_agent_api_90() -> anyhow::Result<()> {
    let Some(stack) = Stack::start().await? else {
        return Ok(());
    };
    let (doc, headers) = stack
        .echo("/api/v3/core/users/?page=2", "authentik")
        .await?;
    ensure!(doc["path"] == "/api/v3/core/users/", "path changed: {doc}");
    ensure!(doc["query"] == "page=2", "query lost: {doc}");
    // authentik-iframe-headers: XFO deleted, CSP replaced, COEP and CORP set.
    ensure!(
        header(&headers, "x-frame-options").is_none(),
        "XFO kept: {headers:?}"
    );
    ensure!(
        header(&headers, "content-security-policy").as_deref()
            == Some("frame-ancestors 'self' http://localhost:* https://localhost:*"),
        "CSP not replaced: {headers:?}"
    );
    ensure!(
        header(&headers, "cross-origin-embedder-policy").as_deref() == Some("credentialless"),
        "COEP missing: {headers:?}"
    );
    ensure!(
        header(&headers, "cross-origin-resource-policy").as_deref() == Some("cross-origin"),
        "CORP missing: {headers:?}"
    );

    // The rest of /api is the agent's, with no header middleware at all.
    let (doc, headers) = stack.echo("/api/apps/installed", "agent").await?;
    ensure!(doc["path"] == "/api/apps/installed", "path changed: {doc}");
    ensure!(
        header(&headers, "x-frame-options").as_deref() == Some(UPSTREAM_XFO),
        "host-api has no middleware, the app's XFO must stay: {headers:?}"
    );
    // PathPrefix is Traefik's raw string prefix: /apix is still host-api.
    stack.echo("/apix", "agent").await?;
    stack.echo("/auth/login", "agent").await?;
    ensure!(
        stack.app("authentik")?.paths() == vec!["/api/v3/core/users/?page=2".to_string()],
        "authentik saw other requests: {:?}",
        stack.app("authentik")?.paths()
    );
    Ok(())
}

#[tokio::test]
async fn miniflux_login_is_redirected_by_the_sso_file() -> anyhow::Result<()> {
    let Some(stack) = Stack::start().await? else {
        return Ok(());
    };
    let (status, headers, _) = stack.get("/embed/miniflux/login").await?;
    ensure!(status == 302, "expected 302, got {status} {headers:?}");
    ensure!(
        header(&headers, "location").as_deref() == Some("/embed/miniflux/oauth2/oidc/redirect"),
        "wrong Location: {headers:?}"
    );
    ensure!(
        stack.app("miniflux")?.count() == 0,
        "the redirect must be answered by the proxy, miniflux saw {:?}",
        stack.app("miniflux")?.paths()
    );
    // Path() is exact: a longer path still goes to miniflux (stripped by golden-basic_app).
    let (doc, _) = stack
        .echo("/embed/miniflux/login/extra", "miniflux")
        .await?;
    ensure!(
        doc["path"] == "/login/extra",
        "stripPrefix not applied: {doc}"
    );
    Ok(())
}

#[tokio::test]
async fn strip_prefix_forwards_the_rest_with_x_forwarded_prefix() -> anyhow::Result<()> {
    let Some(stack) = Stack::start().await? else {
        return Ok(());
    };
    let (doc, headers) = stack
        .echo("/embed/actual-budget/x?y=1", "actual-budget")
        .await?;
    ensure!(doc["path"] == "/x", "expected /x upstream: {doc}");
    ensure!(doc["query"] == "y=1", "query lost: {doc}");
    ensure!(
        echo_header(&doc, "x-forwarded-prefix") == vec!["/embed/actual-budget".to_string()],
        "X-Forwarded-Prefix: {doc}"
    );
    // embed-forwarded-headers (customRequestHeaders) pins the host upstream's way.
    ensure!(
        echo_header(&doc, "x-forwarded-host") == vec!["localhost:8080".to_string()],
        "X-Forwarded-Host: {doc}"
    );
    ensure!(
        echo_header(&doc, "host") == vec!["bloud.local".to_string()],
        "passHostHeader defaults to true: {doc}"
    );
    // golden-custom_headers.yml is the first file defining actual-budget-backend: its own
    // COEP wins and there is no embed-isolation.
    ensure!(
        header(&headers, "cross-origin-embedder-policy").as_deref() == Some("require-corp"),
        "COEP: {headers:?}"
    );
    ensure!(
        header(&headers, "cross-origin-opener-policy").as_deref() == Some("same-origin"),
        "COOP: {headers:?}"
    );

    // An empty remainder becomes "/".
    let (doc, _) = stack.echo("/embed/actual-budget", "actual-budget").await?;
    ensure!(doc["path"] == "/", "empty remainder: {doc}");
    let (doc, _) = stack
        .echo("/embed/adguard-home/control/status", "adguard-home")
        .await?;
    ensure!(doc["path"] == "/control/status", "adguard path: {doc}");
    Ok(())
}

#[tokio::test]
async fn iframe_headers_drop_xfo_and_csp_and_isolation_headers_are_set() -> anyhow::Result<()> {
    let Some(stack) = Stack::start().await? else {
        return Ok(());
    };
    for (path, server) in [
        ("/embed/miniflux/entries", "miniflux"),
        ("/embed/adguard-home/", "adguard-home"),
        ("/embed/actual-budget/app.js", "actual-budget"),
    ] {
        let (_, headers) = stack.echo(path, server).await?;
        ensure!(
            header(&headers, "x-frame-options").is_none(),
            "{path}: X-Frame-Options must be deleted: {headers:?}"
        );
        ensure!(
            header(&headers, "content-security-policy").is_none(),
            "{path}: Content-Security-Policy must be deleted: {headers:?}"
        );
        ensure!(
            header(&headers, "cross-origin-opener-policy").as_deref() == Some("same-origin"),
            "{path}: COOP: {headers:?}"
        );
        ensure!(
            header(&headers, "cross-origin-embedder-policy").is_some(),
            "{path}: COEP: {headers:?}"
        );
    }
    let (_, headers) = stack.echo("/embed/miniflux/entries", "miniflux").await?;
    ensure!(
        header(&headers, "cross-origin-embedder-policy").as_deref() == Some("credentialless"),
        "embed-isolation COEP: {headers:?}"
    );
    Ok(())
}

#[tokio::test]
async fn catch_all_reaches_the_ui_with_cross_origin_isolation() -> anyhow::Result<()> {
    let Some(stack) = Stack::start().await? else {
        return Ok(());
    };
    for path in ["/", "/apps/miniflux/entries", "/embed/unknown-app/x"] {
        let (doc, headers) = stack.echo(path, "ui").await?;
        ensure!(doc["path"] == path, "{path}: UI saw {}", doc["path"]);
        ensure!(
            header(&headers, "cross-origin-opener-policy").as_deref() == Some("same-origin"),
            "{path}: COOP: {headers:?}"
        );
        ensure!(
            header(&headers, "cross-origin-embedder-policy").as_deref() == Some("credentialless"),
            "{path}: COEP: {headers:?}"
        );
        // cross-origin-isolation only adds headers; the shell's own headers stay.
        ensure!(
            header(&headers, "content-security-policy").as_deref() == Some(UPSTREAM_CSP),
            "{path}: CSP: {headers:?}"
        );
    }
    let (status, _, body) = stack.get("/ping").await?;
    ensure!(
        status == 200 && body.trim() == "OK",
        "/ping: {status} {body:?}"
    );
    Ok(())
}

#[tokio::test]
async fn routes_reference_definitions_from_other_files() -> anyhow::Result<()> {
    let Some(stack) = Stack::start().await? else {
        return Ok(());
    };
    // authentik.yml sorts before base.yml, so its authentik-outpost router (priority 96, with
    // authentik-iframe-headers) shadows base.yml's (85, no middleware).
    let (doc, headers) = stack
        .echo("/outpost.goauthentik.io/auth/start", "authentik")
        .await?;
    ensure!(doc["path"] == "/outpost.goauthentik.io/auth/start", "{doc}");
    ensure!(
        header(&headers, "cross-origin-resource-policy").as_deref() == Some("cross-origin"),
        "authentik.yml's authentik-outpost must win over base.yml's: {headers:?}"
    );
    // golden-basic_app.yml uses iframe-headers/embed-isolation/embed-forwarded-headers from
    // base.yml; miniflux-sso.yml uses service miniflux from golden-basic_app.yml.
    let (doc, headers) = stack.echo("/embed/miniflux/feeds", "miniflux").await?;
    ensure!(doc["path"] == "/feeds", "{doc}");
    ensure!(
        echo_header(&doc, "x-forwarded-proto") == vec!["http".to_string()],
        "embed-forwarded-headers from base.yml: {doc}"
    );
    ensure!(
        header(&headers, "x-frame-options").is_none(),
        "iframe-headers from base.yml: {headers:?}"
    );
    for name in [
        "/flows/default",
        "/if/admin/",
        "/static/dist/x.js",
        "/-/health/live/",
        "/application/o/authorize/",
    ] {
        stack.echo(name, "authentik").await?;
    }
    Ok(())
}
