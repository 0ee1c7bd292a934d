//! Upstream Bloud's own Traefik files (shared/fixtures/traefik) load unchanged and route the
//! way Traefik routes them on a real Bloud box.
//!
//! Layout as upstream deploys it: the static `traefik.yml` next to a `dynamic/` directory that
//! holds every other fixture file. Only the service URLs are rewritten (to our test upstreams)
//! and the listen address / directory of the static file (to the temp dir and a free port).

mod support;

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context};
use reqwest::header::HeaderMap;
use support::proxy::{run_check, tail, Proxy};
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

fn fixture_dir() -> PathBuf {
    support::shared_dir().join("fixtures/traefik")
}

/// Every dynamic fixture file (all of fixtures/traefik except the static traefik.yml).
fn dynamic_fixture_files() -> anyhow::Result<Vec<PathBuf>> {
    let dir = fixture_dir();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let is_yaml = path.extension().is_some_and(|e| e == "yml" || e == "yaml");
        if is_yaml && path.file_name().is_some_and(|n| n != "traefik.yml") {
            files.push(path);
        }
    }
    files.sort();
    ensure!(
        files.len() >= 8,
        "expected the 8 upstream dynamic files in {}, found {files:?}",
        dir.display()
    );
    Ok(files)
}

/// Upstream's static traefik.yml with the address and the directory pointed at the test's.
fn fixture_static(web_port: u16, routes_dir: &Path) -> anyhow::Result<serde_json::Value> {
    let path = fixture_dir().join("traefik.yml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: serde_json::Value =
        serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    doc["entryPoints"]["web"]["address"] = format!("127.0.0.1:{web_port}").into();
    doc["providers"]["file"]["directory"] = routes_dir.display().to_string().into();
    Ok(doc)
}

/// Copies the fixture tree into `dir` (static file + `dynamic/`), rewriting service URLs.
fn copy_fixtures(dir: &Path, rewrite: &[(String, String)]) -> anyhow::Result<PathBuf> {
    let dynamic = dir.join("dynamic");
    std::fs::create_dir_all(&dynamic).with_context(|| format!("creating {}", dynamic.display()))?;
    for src in dynamic_fixture_files()? {
        let mut text =
            std::fs::read_to_string(&src).with_context(|| format!("reading {}", src.display()))?;
        for (from, to) in rewrite {
            text = text.replace(from.as_str(), to.as_str());
        }
        let name = src.file_name().context("fixture without a file name")?;
        let dst = dynamic.join(name);
        std::fs::write(&dst, text).with_context(|| format!("writing {}", dst.display()))?;
    }
    let static_doc = fixture_static(8080, &dynamic)?;
    let static_path = dir.join("traefik.yml");
    std::fs::write(&static_path, serde_saphyr::to_string(&static_doc)?)
        .with_context(|| format!("writing {}", static_path.display()))?;
    Ok(static_path)
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "exit={:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn check_accepts_all_upstream_fixture_files_as_one_directory() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let static_path = copy_fixtures(dir.path(), &[])?;
    let out = run_check(&static_path).await?;
    ensure!(
        out.status.code() == Some(0),
        "bloud-proxy check must accept upstream's files unchanged\n{}",
        output_text(&out)
    );
    Ok(())
}

#[tokio::test]
async fn check_names_a_file_with_a_yaml_syntax_error_and_exits_1() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let static_path = copy_fixtures(dir.path(), &[])?;
    std::fs::write(
        dir.path().join("dynamic/zz-broken.yml"),
        "http:\n  routers:\n    broken:\n      rule: \"PathPrefix(`/broken`)\n      service: [unclosed\n",
    )?;
    let out = run_check(&static_path).await?;
    let text = output_text(&out);
    ensure!(
        out.status.code() == Some(1),
        "check must exit 1 on a broken file\n{text}"
    );
    ensure!(
        text.contains("zz-broken.yml"),
        "check output must name the broken file\n{text}"
    );
    Ok(())
}

#[tokio::test]
async fn check_names_an_unsupported_middleware_and_exits_1() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let static_path = copy_fixtures(dir.path(), &[])?;
    std::fs::write(
        dir.path().join("dynamic/zz-unsupported.yml"),
        "http:\n  middlewares:\n    limit:\n      rateLimit:\n        average: 100\n",
    )?;
    let out = run_check(&static_path).await?;
    let text = output_text(&out);
    ensure!(
        out.status.code() == Some(1),
        "check must exit 1 on an unsupported middleware\n{text}"
    );
    ensure!(
        text.contains("zz-unsupported.yml") && text.contains("rateLimit"),
        "check output must name the file and the unsupported feature\n{text}"
    );
    Ok(())
}

#[tokio::test]
async fn check_names_an_unknown_static_key_and_exits_1() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let static_path = copy_fixtures(dir.path(), &[])?;
    let mut doc: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&static_path)?)?;
    doc["entryPoints"]["web"]["adress"] = "127.0.0.1:1".into();
    std::fs::write(&static_path, serde_saphyr::to_string(&doc)?)?;
    let out = run_check(&static_path).await?;
    let text = output_text(&out);
    ensure!(
        out.status.code() == Some(1),
        "check must exit 1 on an unknown static key\n{text}"
    );
    ensure!(
        text.contains("adress"),
        "check output must name the unknown key\n{text}"
    );
    Ok(())
}

/// Upstreams standing in for the apps behind the fixture routes, and the proxy in front.
struct Stack {
    proxy: Proxy,
    apps: Vec<Upstream>,
}

impl Stack {
    async fn start() -> anyhow::Result<Stack> {
        let mut apps = Vec::new();
        let mut rewrite = Vec::new();
        for (fixture_url, name) in FIXTURE_SERVICES {
            let app = Upstream::start(name).await?;
            rewrite.push((fixture_url.to_string(), app.url()));
            apps.push(app);
        }
        let mut builder = Proxy::builder().static_config(|ports, _dir, routes| {
            fixture_static(ports.web, routes).unwrap_or(serde_json::Value::Null)
        });
        for src in dynamic_fixture_files()? {
            let mut text = std::fs::read_to_string(&src)
                .with_context(|| format!("reading {}", src.display()))?;
            for (from, to) in &rewrite {
                text = text.replace(from.as_str(), to.as_str());
            }
            let name = src
                .file_name()
                .and_then(|n| n.to_str())
                .context("fixture file name")?;
            builder = builder.route_file(name, text);
        }
        let proxy = builder.start().await?;
        Ok(Stack { proxy, apps })
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
    let stack = Stack::start().await?;
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
    let stack = Stack::start().await?;
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
    let stack = Stack::start().await?;
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
    let stack = Stack::start().await?;
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
    let stack = Stack::start().await?;
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
    let stack = Stack::start().await?;
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
