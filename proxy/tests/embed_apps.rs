//! `forwardAuth` and `embed` through the real `bloud-proxy` binary, with upstream apps written
//! here that behave like the real ones: an AdGuard-style app that redirects `/` to
//! `/install.html`, an Actual-style app whose `/openid-cb` callback must stay at the root, a
//! page whose HTML and CSS reference `/static/…`, compressed (gzip, br) pages, a 5 MiB page
//! sent in slow chunks, SSE, a WebSocket, cookies, and an Authentik-style auth server.
//!
//! Every app is routed as bloud-agent writes it: ``Path(`/embed/<app>`) ||
//! PathPrefix(`/embed/<app>/`)`` with middlewares `[forwardAuth?, stripPrefix, embed]`.
//!
//! The upstreams are `support::upstream::RawUpstream` servers so the tests control every byte, framing and
//! timing: a reply is a status, headers and a body that is either fixed (with
//! `Content-Length`), sent as timed chunks (`Transfer-Encoding: chunked`), or absent.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use futures_util::{SinkExt, StreamExt};
use support::proxy::Proxy;
use support::upstream::scripted::{reply, Gate, Part, RawRequest, RawUpstream, Reply};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

// ---------------------------------------------------------------------------------------------
// Routes as bloud-agent writes them
// ---------------------------------------------------------------------------------------------

/// The five identity headers bloud-agent lists in `authResponseHeaders`.
const AUTH_HEADERS: [&str; 5] = [
    "X-authentik-username",
    "X-authentik-groups",
    "X-authentik-email",
    "X-authentik-name",
    "X-authentik-uid",
];

#[derive(Default)]
struct Routes {
    routers: String,
    middlewares: String,
    services: String,
}

impl Routes {
    /// Adds `/embed/<app>` → `url` with `[<app>-auth (when auth_port), <app>-strip, <app>-embed]`;
    /// `embed_extra` are more keys of the embed middleware, each line indented by 8 spaces.
    fn app(mut self, app: &str, url: &str, auth_port: Option<u16>, embed_extra: &str) -> Self {
        let auth_ref = if auth_port.is_some() {
            format!("        - {app}-auth\n")
        } else {
            String::new()
        };
        self.routers.push_str(&format!(
            "    {app}-backend:\n      rule: \"Path(`/embed/{app}`) || PathPrefix(`/embed/{app}/`)\"\n      priority: 100\n      middlewares:\n{auth_ref}        - {app}-strip\n        - {app}-embed\n      service: {app}\n"
        ));
        if let Some(port) = auth_port {
            let mut list = String::new();
            for h in AUTH_HEADERS {
                list.push_str(&format!("          - \"{h}\"\n"));
            }
            self.middlewares.push_str(&format!(
                "    {app}-auth:\n      forwardAuth:\n        address: \"http://127.0.0.1:{port}/outpost.goauthentik.io/auth/traefik\"\n        trustForwardHeader: true\n        authResponseHeaders:\n{list}"
            ));
        }
        self.middlewares.push_str(&format!(
            "    {app}-strip:\n      stripPrefix:\n        prefixes:\n          - \"/embed/{app}\"\n    {app}-embed:\n      embed:\n        prefix: \"/embed/{app}\"\n{embed_extra}"
        ));
        self.services.push_str(&format!(
            "    {app}:\n      loadBalancer:\n        servers:\n          - url: \"{url}\"\n"
        ));
        self
    }

    fn yaml(&self) -> String {
        format!(
            "http:\n  routers:\n{}  middlewares:\n{}  services:\n{}",
            self.routers, self.middlewares, self.services
        )
    }

    async fn start(self) -> anyhow::Result<Proxy> {
        Proxy::builder()
            .route_file("apps-routes.yml", self.yaml())
            .start()
            .await
    }
}

/// No redirects followed, no automatic Accept-Encoding or decompression: the tests see the
/// bytes the proxy sent.
fn raw_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .no_gzip()
        .no_brotli()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .context("building the test client")
}

fn header<'r>(resp: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn header_all(resp: &reqwest::Response, name: &str) -> Vec<String> {
    resp.headers()
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1, 2: redirects (AdGuard-style and Actual-style)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn adguard_style_redirects_stay_under_the_prefix() -> anyhow::Result<()> {
    let adguard = RawUpstream::start(|req| {
        let host = req.host().to_string();
        let own = req.port;
        let to = match req.path() {
            "/" => "/install.html".to_string(),
            "/install.html" => return reply("200 OK")
                .header("Content-Type", "text/html; charset=utf-8")
                .body(
                    "<html><body><form action=\"/control/install/configure\"></form></body></html>",
                ),
            "/public-host" => format!("http://{host}/login.html?next=%2F&x=1#form"),
            "/own-address" => format!("http://127.0.0.1:{own}/login.html?x=1"),
            "/own-localhost" => format!("http://localhost:{own}/control/status"),
            "/other-host" => "http://example.com/login.html".to_string(),
            "/other-port" => "http://127.0.0.1:1/login.html".to_string(),
            "/query-fragment" => "/login.html?next=%2Fdashboard&y=2#top".to_string(),
            "/already" => "/embed/adguard/login.html".to_string(),
            "/already-absolute" => format!("http://{host}/embed/adguard/login.html"),
            "/relative" => "login.html".to_string(),
            _ => return reply("404 Not Found").body("no"),
        };
        reply("302 Found").header("Location", to)
    })
    .await?;
    let proxy = Routes::default()
        .app("adguard", &adguard.url(), None, "")
        .start()
        .await?;
    let c = raw_client()?;
    let public = proxy.web.to_string();
    let own = adguard.port;

    // `/` → `/install.html`, and the client's next request lands on the app's install page.
    for entry in ["/embed/adguard/", "/embed/adguard"] {
        let resp = c.get(proxy.url(entry)).send().await?;
        ensure!(resp.status() == 302, "{entry}: status {}", resp.status());
        ensure!(
            header(&resp, "location") == Some("/embed/adguard/install.html"),
            "{entry}: Location {:?}",
            header(&resp, "location")
        );
    }
    let resp = c
        .get(proxy.url("/embed/adguard/install.html"))
        .send()
        .await?;
    ensure!(resp.status() == 200, "install page: {}", resp.status());
    let body = resp.text().await?;
    ensure!(
        body.contains("action=\"/embed/adguard/control/install/configure\""),
        "{body}"
    );
    ensure!(
        adguard
            .requests()
            .iter()
            .any(|r| r.target == "/install.html"),
        "the app saw {:?}",
        adguard
            .requests()
            .iter()
            .map(|r| &r.target)
            .collect::<Vec<_>>()
    );

    let cases: Vec<(&str, String)> = vec![
        (
            "/public-host",
            format!("http://{public}/embed/adguard/login.html?next=%2F&x=1#form"),
        ),
        (
            "/own-address",
            format!("http://{public}/embed/adguard/login.html?x=1"),
        ),
        (
            "/own-localhost",
            format!("http://{public}/embed/adguard/control/status"),
        ),
        ("/other-host", "http://example.com/login.html".into()),
        ("/other-port", "http://127.0.0.1:1/login.html".into()),
        (
            "/query-fragment",
            "/embed/adguard/login.html?next=%2Fdashboard&y=2#top".into(),
        ),
        ("/already", "/embed/adguard/login.html".into()),
        (
            "/already-absolute",
            format!("http://{public}/embed/adguard/login.html"),
        ),
        ("/relative", "login.html".into()),
    ];
    let mut wrong = Vec::new();
    for (path, want) in &cases {
        let resp = c
            .get(proxy.url(&format!("/embed/adguard{path}")))
            .send()
            .await?;
        let got = header(&resp, "location").unwrap_or("<none>").to_string();
        if resp.status() != 302 || &got != want {
            wrong.push(format!("{path}: {} {got:?}, want {want:?}", resp.status()));
        }
    }
    ensure!(
        wrong.is_empty(),
        "wrong redirects (app port {own}):\n{}",
        wrong.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn actual_style_openid_callback_stays_at_the_root() -> anyhow::Result<()> {
    let actual = RawUpstream::start(|req| {
        let host = req.host().to_string();
        let to = match req.path() {
            "/login" => "/openid-cb?code=1".to_string(),
            "/login-absolute" => format!("http://{host}/openid-cb?code=2&state=s#f"),
            "/deeper" => "/openid-cb/finish?code=3".to_string(),
            "/lookalike" => "/openid-cbx?code=4".to_string(),
            "/budget" => "/budget/1".to_string(),
            _ => return reply("404 Not Found").body("no"),
        };
        reply("302 Found").header("Location", to)
    })
    .await?;
    let proxy = Routes::default()
        .app(
            "actual",
            &actual.url(),
            None,
            "        exclude: [\"/openid-cb\"]\n",
        )
        .start()
        .await?;
    let c = raw_client()?;
    let public = proxy.web.to_string();
    let cases: Vec<(&str, String)> = vec![
        ("/login", "/openid-cb?code=1".into()),
        (
            "/login-absolute",
            format!("http://{public}/openid-cb?code=2&state=s#f"),
        ),
        ("/deeper", "/openid-cb/finish?code=3".into()),
        ("/lookalike", "/embed/actual/openid-cbx?code=4".into()),
        ("/budget", "/embed/actual/budget/1".into()),
    ];
    for (path, want) in cases {
        let resp = c
            .get(proxy.url(&format!("/embed/actual{path}")))
            .send()
            .await?;
        ensure!(resp.status() == 302, "{path}: {}", resp.status());
        ensure!(
            header(&resp, "location") == Some(want.as_str()),
            "{path}: Location {:?}, want {want:?}",
            header(&resp, "location")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3: HTML, CSS and JS referencing /static/…
// ---------------------------------------------------------------------------------------------

const PAGE_HTML: &str = r#"<!DOCTYPE html>
<html><head>
<link rel="stylesheet" href="/static/app.css">
<link rel="modulepreload" href="/static/mod.js">
<script src="/static/app.js"></script>
<style>body { background: url(/static/bg.png); }</style>
</head><body style="background-image: url('/static/body.png')">
<a href="/settings?tab=1#top">settings</a>
<a href="relative/page">rel</a>
<a href="//cdn.example.com/x.js">cdn</a>
<a href="https://example.com/static/x">ext</a>
<a href="/embed/page/already">already</a>
<img src="/static/logo.png" srcset="/static/logo-1x.png 1x, /static/logo-2x.png 2x" alt="logo">
<img src="data:image/png;base64,AAAA">
<form action="/api/login" method="post"><button formaction="/api/other">go</button></form>
<video poster="/static/poster.jpg"></video>
<script>fetch("/static/data.json"); location.href = "/login";</script>
</body></html>
"#;

const PAGE_HTML_REWRITTEN: &str = r#"<!DOCTYPE html>
<html><head>
<link rel="stylesheet" href="/embed/page/static/app.css">
<link rel="modulepreload" href="/embed/page/static/mod.js">
<script src="/embed/page/static/app.js"></script>
<style>body { background: url(/embed/page/static/bg.png); }</style>
</head><body style="background-image: url('/embed/page/static/body.png')">
<a href="/embed/page/settings?tab=1#top">settings</a>
<a href="relative/page">rel</a>
<a href="//cdn.example.com/x.js">cdn</a>
<a href="https://example.com/static/x">ext</a>
<a href="/embed/page/already">already</a>
<img src="/embed/page/static/logo.png" srcset="/embed/page/static/logo-1x.png 1x, /embed/page/static/logo-2x.png 2x" alt="logo">
<img src="data:image/png;base64,AAAA">
<form action="/embed/page/api/login" method="post"><button formaction="/embed/page/api/other">go</button></form>
<video poster="/embed/page/static/poster.jpg"></video>
<script>fetch("/static/data.json"); location.href = "/login";</script>
</body></html>
"#;

const PAGE_CSS: &str = r#"@import "/static/base.css";
@import url(/static/theme.css);
.logo { background: url(/static/logo.png) no-repeat; }
.x { background: url("/static/x.png"); }
.y { background: url('/static/y.png'); }
.z { background: url(data:image/png;base64,AAAA); }
.w { background: url(//cdn.example.com/w.png); }
.rel { background: url(img/rel.png); }
"#;

const PAGE_CSS_REWRITTEN: &str = r#"@import "/embed/page/static/base.css";
@import url(/embed/page/static/theme.css);
.logo { background: url(/embed/page/static/logo.png) no-repeat; }
.x { background: url("/embed/page/static/x.png"); }
.y { background: url('/embed/page/static/y.png'); }
.z { background: url(data:image/png;base64,AAAA); }
.w { background: url(//cdn.example.com/w.png); }
.rel { background: url(img/rel.png); }
"#;

const PAGE_JS: &str = "import { x } from \"/static/mod.js\";\nconst base = '/static/';\nfetch(\"/static/data.json\").then(() => { location.href = \"/login\"; });\n// <a href=\"/static/x\">\n";

#[tokio::test]
async fn page_html_and_css_get_the_prefix_and_js_is_untouched() -> anyhow::Result<()> {
    let page = RawUpstream::start(|req| match req.path() {
        "/" => reply("200 OK")
            .header("Content-Type", "text/html; charset=utf-8")
            .body(PAGE_HTML),
        "/static/app.css" => reply("200 OK")
            .header("Content-Type", "text/css")
            .body(PAGE_CSS),
        "/static/app.js" => reply("200 OK")
            .header("Content-Type", "application/javascript")
            .header("ETag", "\"js-v1\"")
            .body(PAGE_JS),
        _ => reply("404 Not Found").body("no"),
    })
    .await?;
    let proxy = Routes::default()
        .app("page", &page.url(), None, "")
        .start()
        .await?;
    let c = raw_client()?;

    let resp = c.get(proxy.url("/embed/page/")).send().await?;
    ensure!(resp.status() == 200, "page: {}", resp.status());
    let html = resp.text().await?;
    // The run-time shim goes first in <head> (tests/embed_shim.rs covers it).
    let want = PAGE_HTML_REWRITTEN.replacen(
        "<html><head>\n",
        &format!(
            "<html><head><script src=\"/embed/page/__bloud__/{}\" data-prefix=\"/embed/page\"></script>\n",
            bloud_proxy::embed::shim::SHIM.file
        ),
        1,
    );
    ensure!(
        html == want,
        "HTML differs:\n--- got ---\n{html}\n--- want ---\n{want}"
    );

    let resp = c
        .get(proxy.url("/embed/page/static/app.css"))
        .send()
        .await?;
    ensure!(resp.status() == 200, "css: {}", resp.status());
    let css = resp.text().await?;
    ensure!(
        css == PAGE_CSS_REWRITTEN,
        "CSS differs:\n--- got ---\n{css}\n--- want ---\n{PAGE_CSS_REWRITTEN}"
    );

    let resp = c.get(proxy.url("/embed/page/static/app.js")).send().await?;
    ensure!(resp.status() == 200, "js: {}", resp.status());
    ensure!(
        header(&resp, "content-length") == Some(PAGE_JS.len().to_string().as_str()),
        "JS Content-Length {:?}",
        header(&resp, "content-length")
    );
    ensure!(
        header(&resp, "etag") == Some("\"js-v1\""),
        "JS ETag {:?}",
        header(&resp, "etag")
    );
    let js = resp.bytes().await?;
    ensure!(
        js.as_ref() == PAGE_JS.as_bytes(),
        "JS bytes changed: {:?}",
        String::from_utf8_lossy(&js)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4: compressed upstream bodies
// ---------------------------------------------------------------------------------------------

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

fn brotli_enc(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        let _ = w.write_all(data);
    }
    out
}

fn gunzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .context("client-side gunzip of the proxy's body")?;
    Ok(out)
}

fn unbrotli(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    brotli::Decompressor::new(data, 4096)
        .read_to_end(&mut out)
        .context("client-side brotli decode of the proxy's body")?;
    Ok(out)
}

/// Splits `data` into chunks of `size` for a chunked reply.
fn split(data: &[u8], size: usize) -> Vec<Part> {
    data.chunks(size).map(|c| Part::Data(c.to_vec())).collect()
}

#[tokio::test]
async fn compressed_pages_are_decoded_rewritten_and_reencoded() -> anyhow::Result<()> {
    let html: String = format!(
        "<html><head><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body>{}</body></html>",
        // ~400 KiB: compressed slices decode to far more than one read's worth of HTML.
        (0..12000)
            .map(|i| format!("<a href=\"/item/{i}\">item {i}</a>"))
            .collect::<String>()
    );
    let want = html
        .replace("\"/static/", "\"/embed/zip/static/")
        .replace("\"/item/", "\"/embed/zip/item/");
    let page = html.clone();
    let zip = RawUpstream::start(move |req| {
        let ae = req.header("accept-encoding").unwrap_or("").to_string();
        let base = reply("200 OK")
            .header("Content-Type", "text/html; charset=utf-8")
            .header("ETag", "\"page-v1\"")
            .header("Vary", "Accept-Encoding, Cookie");
        match req.path() {
            // Negotiates like most app servers: br, then gzip, else identity.
            "/page" if ae.contains("br") => base
                .header("Content-Encoding", "br")
                .body(brotli_enc(page.as_bytes())),
            "/page" if ae.contains("gzip") => base
                .header("Content-Encoding", "gzip")
                .body(gzip(page.as_bytes())),
            "/page" => base.body(page.clone()),
            // Pre-compressed files sent whatever the client asked, in small chunks.
            "/always-gzip" => base
                .header("Content-Encoding", "gzip")
                .chunks(split(&gzip(page.as_bytes()), 97)),
            "/always-br" => base
                .header("Content-Encoding", "br")
                .chunks(split(&brotli_enc(page.as_bytes()), 97)),
            _ => reply("404 Not Found").body("no"),
        }
    })
    .await?;
    let proxy = Routes::default()
        // The expected body is the rewrite alone; the shim tag is tests/embed_shim.rs's.
        .app("zip", &zip.url(), None, "        shim: false\n")
        .start()
        .await?;
    let c = raw_client()?;

    // (path, client Accept-Encoding, Content-Encoding the client must get)
    let cases: [(&str, Option<&str>, Option<&str>); 9] = [
        ("/page", Some("gzip"), Some("gzip")),
        ("/page", Some("br"), Some("br")),
        ("/page", Some("gzip, deflate, br"), Some("br")),
        ("/page", None, None),
        ("/always-gzip", Some("gzip"), Some("gzip")),
        ("/always-gzip", None, None),
        ("/always-br", Some("br"), Some("br")),
        ("/always-br", Some("gzip"), Some("gzip")),
        ("/always-br", None, None),
    ];
    for (path, ae, want_ce) in cases {
        let what = format!("{path} with Accept-Encoding {ae:?}");
        let mut req = c.get(proxy.url(&format!("/embed/zip{path}")));
        if let Some(ae) = ae {
            req = req.header("accept-encoding", ae);
        }
        let resp = req.send().await.with_context(|| what.clone())?;
        ensure!(resp.status() == 200, "{what}: {}", resp.status());
        let ce = header(&resp, "content-encoding").map(str::to_string);
        ensure!(
            ce.as_deref() == want_ce,
            "{what}: Content-Encoding {ce:?}, want {want_ce:?}"
        );
        ensure!(
            header(&resp, "content-length").is_none(),
            "{what}: Content-Length {:?} of the original bytes kept",
            header(&resp, "content-length")
        );
        if let Some(etag) = header(&resp, "etag") {
            ensure!(etag.starts_with("W/"), "{what}: strong ETag {etag:?} kept");
        }
        let vary = header_all(&resp, "vary").join(", ").to_ascii_lowercase();
        let upstream_compressed = ae.is_some() || path != "/page";
        ensure!(vary.contains("cookie"), "{what}: Vary {vary:?} lost Cookie");
        if upstream_compressed {
            ensure!(
                vary.contains("accept-encoding"),
                "{what}: Vary {vary:?} lacks Accept-Encoding"
            );
        }
        let raw = resp.bytes().await.with_context(|| what.clone())?;
        let body = match want_ce {
            Some("gzip") => gunzip(&raw)?,
            Some("br") => unbrotli(&raw)?,
            _ => raw.to_vec(),
        };
        let body = String::from_utf8(body).context("body is not UTF-8")?;
        ensure!(
            body == want,
            "{what}: body differs from the rewritten page (got {} bytes, want {}): {}",
            body.len(),
            want.len(),
            support::proxy::tail(&body, 300)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5: a 5 MiB page in slow chunks
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_mib_page_streams_rewritten_with_bounded_memory() -> anyhow::Result<()> {
    const TARGET: usize = 5 << 20;
    let mut html = String::from(
        "<!DOCTYPE html><html><head><link rel=\"stylesheet\" href=\"/static/site.css\"></head><body>\n",
    );
    let mut i = 0u32;
    while html.len() < TARGET {
        html.push_str(&format!(
            "<p><a href=\"/static/item/{i:07}.html\"><img src=\"/static/img/{i:07}.png\" alt=\"\"></a> item {i}</p>\n"
        ));
        i += 1;
    }
    html.push_str("</body></html>\n");
    let want = html.replace("\"/static/", "\"/embed/big/static/");
    let gate = Gate::default();
    let bytes = Arc::new(html.into_bytes());
    let (page, g) = (bytes.clone(), gate.clone());
    let app = RawUpstream::start(move |_req| {
        // 64 KiB chunks (tags cut anywhere), 5 ms apart; after the first chunk the upstream
        // waits until the client has seen output.
        let mut parts = Vec::new();
        for (n, c) in page.chunks(64 * 1024).enumerate() {
            parts.push(Part::Data(c.to_vec()));
            if n == 0 {
                parts.push(Part::Wait(g.clone()));
            } else {
                parts.push(Part::Sleep(Duration::from_millis(5)));
            }
        }
        reply("200 OK")
            .header("Content-Type", "text/html; charset=utf-8")
            .chunks(parts)
    })
    .await?;
    let proxy = Routes::default()
        // The expected body is the rewrite alone; the shim tag is tests/embed_shim.rs's.
        .app("big", &app.url(), None, "        shim: false\n")
        .start()
        .await?;
    let c = raw_client()?;
    // Warm the proxy up (first-request allocations are not per-response memory).
    let _ = c.get(proxy.url("/ping")).send().await?;
    let rss_before = proxy.rss_kib()?;

    let started = Instant::now();
    let resp = c.get(proxy.url("/embed/big/")).send().await?;
    ensure!(resp.status() == 200, "status {}", resp.status());
    let mut stream = resp.bytes_stream();
    let mut got: Vec<u8> = Vec::with_capacity(want.len() + 1024);
    let mut first_at = None;
    let mut peak = rss_before;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(15), stream.next())
        .await
        .context("body stalled for 15 s")?
    {
        let chunk = chunk.context("reading the body")?;
        if first_at.is_none() && !chunk.is_empty() {
            first_at = Some(started.elapsed());
            gate.open();
        }
        got.extend_from_slice(&chunk);
        peak = peak.max(proxy.rss_kib()?);
    }
    let total = started.elapsed();
    ensure!(
        !gate.was_late(),
        "no body byte reached the client before the upstream finished: the page was buffered"
    );
    let hwm = proxy.peak_rss_kib()?;
    eprintln!(
        "5 MiB page: first bytes after {first_at:?}, complete after {total:?}; proxy RSS before {rss_before} KiB, max sampled {peak} KiB, VmHWM {hwm} KiB"
    );
    ensure!(
        got.len() == want.len(),
        "got {} bytes, want {}",
        got.len(),
        want.len()
    );
    if got != want.as_bytes() {
        let at = got
            .iter()
            .zip(want.as_bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        bail!(
            "body differs at byte {at}: got {:?}, want {:?}",
            String::from_utf8_lossy(&got[at.saturating_sub(40)..(at + 80).min(got.len())]),
            &want[at.saturating_sub(40)..(at + 80).min(want.len())]
        );
    }
    // A proxy that held the page would grow by the page (5 MiB in, 5 MiB out) at least.
    ensure!(
        peak.saturating_sub(rss_before) < 4 * 1024,
        "proxy RSS grew by {} KiB while streaming a 5 MiB page",
        peak.saturating_sub(rss_before)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6: responses that are never touched
// ---------------------------------------------------------------------------------------------

const HTMLISH: &str = "<a href=\"/static/x\">x</a><img src=\"/static/y.png\">";

#[tokio::test]
async fn responses_that_must_pass_byte_for_byte() -> anyhow::Result<()> {
    let png: Vec<u8> = {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend_from_slice(HTMLISH.as_bytes());
        v.extend((0..=255u8).cycle().take(3000));
        v
    };
    let png2 = png.clone();
    let app = RawUpstream::start(move |req| {
        let html = || {
            reply("200 OK")
                .header("Content-Type", "text/html; charset=utf-8")
                .header("ETag", "\"strong-1\"")
        };
        match (req.method.as_str(), req.path()) {
            ("HEAD", "/page") => html()
                .header("Content-Length", HTMLISH.len().to_string())
                .no_body(),
            (_, "/no-content") => reply("204 No Content")
                .header("Content-Type", "text/html")
                .header("ETag", "\"strong-1\"")
                .no_body(),
            (_, "/page") if req.header("if-none-match") == Some("\"strong-1\"") => {
                reply("304 Not Modified")
                    .header("ETag", "\"strong-1\"")
                    .header("Content-Type", "text/html; charset=utf-8")
                    .no_body()
            }
            (_, "/page") if req.header("range") == Some("bytes=0-19") => {
                reply("206 Partial Content")
                    .header("Content-Type", "text/html; charset=utf-8")
                    .header("ETag", "\"strong-1\"")
                    .header(
                        "Content-Range",
                        format!("bytes 0-19/{}", HTMLISH.len()),
                    )
                    .body(&HTMLISH.as_bytes()[..20])
            }
            (_, "/download") => reply("200 OK")
                .header("Content-Type", "application/octet-stream")
                .header("ETag", "\"strong-1\"")
                .body(HTMLISH),
            (_, "/attachment") => html()
                .header("Content-Disposition", "attachment; filename=\"page.html\"")
                .body(HTMLISH),
            (_, "/logo.svg") => reply("200 OK")
                .header("Content-Type", "image/svg+xml")
                .header("ETag", "\"strong-1\"")
                .body(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\"><image href=\"/static/a.png\"/><style>a{background:url(/static/b.png)}</style></svg>",
                ),
            (_, "/logo.png") => reply("200 OK")
                .header("Content-Type", "image/png")
                .header("ETag", "\"strong-1\"")
                .body(png2.clone()),
            (_, "/data.json") => reply("200 OK")
                .header("Content-Type", "application/json")
                .header("ETag", "\"strong-1\"")
                .body("{\"url\":\"/static/x\",\"html\":\"<a href=\\\"/x\\\">\"}"),
            _ => reply("404 Not Found").body("no"),
        }
    })
    .await?;
    let proxy = Routes::default()
        .app("raw", &app.url(), None, "")
        .start()
        .await?;
    let c = raw_client()?;

    // HEAD keeps the upstream's length and strong validator.
    let direct = c.head(format!("{}/page", app.url())).send().await?;
    let via = c.head(proxy.url("/embed/raw/page")).send().await?;
    ensure!(via.status() == 200, "HEAD: {}", via.status());
    for h in ["content-length", "etag", "content-type"] {
        ensure!(
            header(&via, h) == header(&direct, h),
            "HEAD {h}: proxy {:?}, upstream {:?}",
            header(&via, h),
            header(&direct, h)
        );
    }

    // 304 and 204 keep their headers and have no body.
    let via = c
        .get(proxy.url("/embed/raw/page"))
        .header("if-none-match", "\"strong-1\"")
        .send()
        .await?;
    ensure!(via.status() == 304, "conditional GET: {}", via.status());
    ensure!(
        header(&via, "etag") == Some("\"strong-1\""),
        "304 ETag {:?}",
        header(&via, "etag")
    );
    ensure!(via.bytes().await?.is_empty(), "304 with a body");
    let via = c.get(proxy.url("/embed/raw/no-content")).send().await?;
    ensure!(via.status() == 204, "204: {}", via.status());
    ensure!(
        header(&via, "etag") == Some("\"strong-1\""),
        "204 ETag {:?}",
        header(&via, "etag")
    );
    ensure!(via.bytes().await?.is_empty(), "204 with a body");

    // Bodies: identical bytes, length and strong ETag.
    // (path, extra request header, status)
    type Case<'a> = (&'a str, Option<(&'a str, &'a str)>, u16);
    let cases: [Case; 6] = [
        ("/download", None, 200),
        ("/attachment", None, 200),
        ("/logo.svg", None, 200),
        ("/logo.png", None, 200),
        ("/data.json", None, 200),
        ("/page", Some(("range", "bytes=0-19")), 206),
    ];
    for (path, extra, status) in cases {
        let mut d = c.get(format!("{}{path}", app.url()));
        let mut v = c.get(proxy.url(&format!("/embed/raw{path}")));
        if let Some((k, val)) = extra {
            d = d.header(k, val);
            v = v.header(k, val);
        }
        let (direct, via) = (d.send().await?, v.send().await?);
        ensure!(
            via.status().as_u16() == status,
            "{path}: status {}",
            via.status()
        );
        for h in ["content-length", "etag", "content-type", "content-range"] {
            ensure!(
                header(&via, h) == header(&direct, h),
                "{path} {h}: proxy {:?}, upstream {:?}",
                header(&via, h),
                header(&direct, h)
            );
        }
        let (d, v) = (direct.bytes().await?, via.bytes().await?);
        ensure!(
            d == v,
            "{path}: body changed: proxy {:?}, upstream {:?}",
            String::from_utf8_lossy(&v),
            String::from_utf8_lossy(&d)
        );
    }
    ensure!(png.len() > 3000, "png fixture");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_pass_unchanged_and_one_at_a_time() -> anyhow::Result<()> {
    let events: Vec<String> = (0..4)
        .map(|i| {
            format!("id: {i}\nevent: update\ndata: <a href=\"/static/{i}\">see /login</a>\n\n")
        })
        .collect();
    let gates: Vec<Gate> = (0..3).map(|_| Gate::default()).collect();
    let (ev, gs) = (events.clone(), gates.clone());
    let app = RawUpstream::start(move |_req| {
        let mut parts = Vec::new();
        for (i, e) in ev.iter().enumerate() {
            parts.push(Part::Data(e.clone().into_bytes()));
            if let Some(g) = gs.get(i) {
                parts.push(Part::Wait(g.clone()));
            }
        }
        reply("200 OK")
            .header("Content-Type", "text/event-stream")
            .header("Cache-Control", "no-cache")
            .chunks(parts)
    })
    .await?;
    let proxy = Routes::default()
        .app("sse", &app.url(), None, "")
        .start()
        .await?;
    let resp = raw_client()?
        .get(proxy.url("/embed/sse/events"))
        .header("accept", "text/event-stream")
        .header("accept-encoding", "gzip, br")
        .send()
        .await?;
    ensure!(resp.status() == 200, "status {}", resp.status());
    ensure!(
        header(&resp, "content-encoding").is_none(),
        "SSE got compressed: {:?}",
        header(&resp, "content-encoding")
    );
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    let mut seen = 0;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .context("SSE stream stalled")?
    {
        got.extend_from_slice(&chunk?);
        // Each complete event releases the next one upstream.
        let text = String::from_utf8_lossy(&got).into_owned();
        while seen < events.len() && text.contains(events[seen].as_str()) {
            if let Some(g) = gates.get(seen) {
                g.open();
            }
            seen += 1;
        }
    }
    ensure!(
        got == events.concat().into_bytes(),
        "SSE bytes changed: {:?}",
        String::from_utf8_lossy(&got)
    );
    for (i, g) in gates.iter().enumerate() {
        ensure!(
            !g.was_late(),
            "event {i} did not reach the client before the next was sent (buffered)"
        );
    }
    Ok(())
}

#[tokio::test]
async fn websocket_through_forward_auth_and_embed() -> anyhow::Result<()> {
    let auth = RawUpstream::start(|req| {
        if req
            .header("cookie")
            .is_some_and(|c| c.contains("session=good"))
        {
            reply("200 OK").header("X-authentik-username", "alice")
        } else {
            reply("401 Unauthorized")
                .header("WWW-Authenticate", "Bearer realm=\"authentik\"")
                .header("Content-Type", "text/plain")
                .body("log in first")
        }
    })
    .await?;
    let app = support::upstream::Upstream::start("wsapp").await?;
    let proxy = Routes::default()
        .app("wsapp", &app.url(), Some(auth.port), "")
        .start()
        .await?;
    let url = format!("ws://{}/embed/wsapp/ws", proxy.web);

    // Without the cookie: the auth server's answer, and the app never sees the handshake.
    let req = url.as_str().into_client_request()?;
    match tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .context("handshake timed out")?
    {
        Ok(_) => bail!("WebSocket opened without authentication"),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            ensure!(resp.status() == 401, "status {}", resp.status());
            ensure!(
                resp.headers()
                    .get("www-authenticate")
                    .is_some_and(|v| v == "Bearer realm=\"authentik\""),
                "WWW-Authenticate {:?}",
                resp.headers().get("www-authenticate")
            );
            ensure!(
                resp.body().as_deref() == Some(b"log in first".as_slice()),
                "body {:?}",
                resp.body()
            );
        }
        Err(e) => bail!("unexpected handshake error: {e}"),
    }
    ensure!(app.count() == 0, "the app saw {:?}", app.paths());

    // With the cookie: the handshake reaches the app (prefix stripped) and echoes.
    let mut req = url.as_str().into_client_request()?;
    req.headers_mut()
        .insert("cookie", "session=good".parse().context("cookie value")?);
    let (mut ws, resp) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .context("handshake timed out")?
    .context("authenticated WebSocket handshake")?;
    ensure!(resp.status() == 101, "status {}", resp.status());
    let seen = app.requests();
    let hs = seen.iter().find(|r| r.path_and_query == "/ws");
    ensure!(hs.is_some(), "the app saw {:?}", app.paths());
    ensure!(
        hs.is_some_and(|r| r
            .headers
            .iter()
            .any(|(k, v)| k == "x-authentik-username" && v == "alice")),
        "handshake lacks the identity header: {:?}",
        hs.map(|r| &r.headers)
    );
    for msg in [
        Message::Text("<a href=\"/static/x\">not rewritten</a>".into()),
        Message::Binary(vec![0u8, 1, 2, 255].into()),
    ] {
        ws.send(msg.clone()).await?;
        let echo = loop {
            let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .context("no echo")?
                .context("socket closed")??;
            if !matches!(m, Message::Ping(_) | Message::Pong(_)) {
                break m;
            }
        };
        ensure!(echo == msg, "echo {echo:?}, sent {msg:?}");
    }
    ws.close(None).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7: Set-Cookie, Refresh, Link, Content-Location
// ---------------------------------------------------------------------------------------------

const COOKIES: [&str; 5] = [
    "sid=abc; Path=/; HttpOnly",
    "pref=dark; Path=/settings; Max-Age=60",
    "tok=1; Domain=app.internal; Path=/",
    "local=1; Domain=127.0.0.1; Path=/embed/cookieson/x",
    "nopath=1; SameSite=Lax",
];

fn cookie_app_reply(_req: &RawRequest) -> Reply {
    let mut r = reply("200 OK")
        .header("Content-Type", "text/plain")
        .header("Refresh", "3; url=/after?x=1")
        .header(
            "Link",
            "</static/app.css>; rel=preload; as=style, <https://cdn.example.com/x.js>; rel=preload; as=script",
        )
        .header("Content-Location", "/docs/1")
        .body("ok");
    for c in COOKIES {
        r = r.header("Set-Cookie", c);
    }
    r
}

#[tokio::test]
async fn cookies_refresh_and_link_headers() -> anyhow::Result<()> {
    let app = RawUpstream::start(cookie_app_reply).await?;
    let proxy = Routes::default()
        .app("cookieson", &app.url(), None, "        cookiePath: true\n")
        .app("cookiesoff", &app.url(), None, "")
        .start()
        .await?;
    let c = raw_client()?;

    let on = c.get(proxy.url("/embed/cookieson/account")).send().await?;
    ensure!(on.status() == 200, "status {}", on.status());
    let want_on = vec![
        "sid=abc; Path=/embed/cookieson/; HttpOnly".to_string(),
        "pref=dark; Path=/embed/cookieson/settings; Max-Age=60".to_string(),
        "tok=1; Path=/embed/cookieson/".to_string(),
        COOKIES[3].to_string(),
        COOKIES[4].to_string(),
    ];
    ensure!(
        header_all(&on, "set-cookie") == want_on,
        "cookiePath on: {:#?}",
        header_all(&on, "set-cookie")
    );

    let off = c.get(proxy.url("/embed/cookiesoff/account")).send().await?;
    ensure!(off.status() == 200, "status {}", off.status());
    ensure!(
        header_all(&off, "set-cookie") == COOKIES.map(String::from).to_vec(),
        "cookiePath off must leave cookies alone: {:#?}",
        header_all(&off, "set-cookie")
    );
    for (resp, app) in [(&on, "cookieson"), (&off, "cookiesoff")] {
        ensure!(
            header(resp, "refresh") == Some(format!("3; url=/embed/{app}/after?x=1").as_str()),
            "{app}: Refresh {:?}",
            header(resp, "refresh")
        );
        let want_link = format!("</embed/{app}/static/app.css>; rel=preload; as=style, <https://cdn.example.com/x.js>; rel=preload; as=script");
        ensure!(
            header(resp, "link") == Some(want_link.as_str()),
            "{app}: Link {:?}",
            header(resp, "link")
        );
        ensure!(
            header(resp, "content-location") == Some(format!("/embed/{app}/docs/1").as_str()),
            "{app}: Content-Location {:?}",
            header(resp, "content-location")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 8: forwardAuth
// ---------------------------------------------------------------------------------------------

/// An Authentik-outpost-style auth server: `session=good` passes with identity headers (and
/// some it must not leak), `session=expired` gets 401, anything else a 302 to the login page
/// with state cookies and an HTML body.
async fn auth_server() -> anyhow::Result<RawUpstream> {
    RawUpstream::start(|req| {
        let cookie = req.header("cookie").unwrap_or("");
        if cookie.contains("session=good") {
            reply("200 OK")
                .header("X-authentik-username", "alice")
                .header("X-authentik-groups", "admins|users")
                .header("X-authentik-email", "alice@example.com")
                .header("X-Internal-Secret", "leak")
                .header("Set-Cookie", "authentik_refresh=1; Path=/")
        } else if cookie.contains("session=expired") {
            reply("401 Unauthorized")
                .header("WWW-Authenticate", "Basic realm=\"authentik\"")
                .header("Content-Type", "text/plain")
                .body("session expired")
        } else {
            let host = req.header("x-forwarded-host").unwrap_or("?");
            reply("302 Found")
                .header(
                    "Location",
                    format!("http://{host}/login?rd=%2Fembed%2Ffa%2F"),
                )
                .header("Set-Cookie", "authentik_proxy_abc=state1; Path=/; HttpOnly")
                .header("Set-Cookie", "authentik_csrf=c2; Path=/login")
                .header("Content-Type", "text/html; charset=utf-8")
                .body("<a href=\"/login\">Found</a>")
        }
    })
    .await
}

/// The protected app: answers with the request it received as JSON headers.
async fn echo_app() -> anyhow::Result<RawUpstream> {
    RawUpstream::start(|req| {
        let mut headers = serde_json::Map::new();
        for (k, v) in &req.headers {
            headers.insert(k.to_ascii_lowercase(), serde_json::Value::String(v.clone()));
        }
        let doc =
            serde_json::json!({"method": req.method, "target": req.target, "headers": headers});
        reply("200 OK")
            .header("Content-Type", "application/json")
            .body(doc.to_string())
    })
    .await
}

#[tokio::test]
async fn forward_auth_allow_copies_exactly_the_listed_headers() -> anyhow::Result<()> {
    let (auth, app) = (auth_server().await?, echo_app().await?);
    let proxy = Routes::default()
        .app("fa", &app.url(), Some(auth.port), "")
        .start()
        .await?;
    let resp = raw_client()?
        .get(proxy.url("/embed/fa/page?q=1"))
        .header("cookie", "session=good")
        .header("X-authentik-username", "mallory")
        .header("X-authentik-uid", "0")
        .header("X-Authentik-Name", "Mallory")
        .send()
        .await?;
    ensure!(resp.status() == 200, "status {}", resp.status());
    ensure!(
        header_all(&resp, "set-cookie").is_empty(),
        "auth cookies not listed in addAuthCookiesToResponse reached the client: {:?}",
        header_all(&resp, "set-cookie")
    );
    let doc: serde_json::Value = resp.json().await?;
    let h = &doc["headers"];
    ensure!(doc["target"] == "/page?q=1", "app saw {}", doc["target"]);
    ensure!(
        h["x-authentik-username"] == "alice",
        "username {}",
        h["x-authentik-username"]
    );
    ensure!(
        h["x-authentik-groups"] == "admins|users",
        "groups {}",
        h["x-authentik-groups"]
    );
    ensure!(
        h["x-authentik-email"] == "alice@example.com",
        "email {}",
        h["x-authentik-email"]
    );
    for spoofed in ["x-authentik-uid", "x-authentik-name"] {
        ensure!(
            h.get(spoofed).is_none(),
            "client-sent {spoofed} reached the app: {}",
            h[spoofed]
        );
    }
    ensure!(
        h.get("x-internal-secret").is_none(),
        "an auth header not in authResponseHeaders was copied"
    );
    ensure!(app.count() == 1, "app requests {}", app.count());
    Ok(())
}

#[tokio::test]
async fn forward_auth_denials_are_returned_verbatim_and_the_app_is_never_reached(
) -> anyhow::Result<()> {
    let (auth, app) = (auth_server().await?, echo_app().await?);
    let proxy = Routes::default()
        .app("fa", &app.url(), Some(auth.port), "")
        .start()
        .await?;
    let c = raw_client()?;
    let public = proxy.web.to_string();

    // 302 to the login page: status, Location, both cookies, body, none of it rewritten by
    // the embed middleware (which would prefix a same-host /login).
    let resp = c.get(proxy.url("/embed/fa/settings")).send().await?;
    ensure!(resp.status() == 302, "status {}", resp.status());
    ensure!(
        header(&resp, "location")
            == Some(format!("http://{public}/login?rd=%2Fembed%2Ffa%2F").as_str()),
        "Location {:?}",
        header(&resp, "location")
    );
    ensure!(
        header_all(&resp, "set-cookie")
            == vec![
                "authentik_proxy_abc=state1; Path=/; HttpOnly".to_string(),
                "authentik_csrf=c2; Path=/login".to_string()
            ],
        "Set-Cookie {:?}",
        header_all(&resp, "set-cookie")
    );
    ensure!(
        header(&resp, "content-type") == Some("text/html; charset=utf-8"),
        "Content-Type {:?}",
        header(&resp, "content-type")
    );
    let body = resp.text().await?;
    ensure!(body == "<a href=\"/login\">Found</a>", "body {body:?}");

    // 401 with its challenge.
    let resp = c
        .get(proxy.url("/embed/fa/api/data"))
        .header("cookie", "session=expired")
        .send()
        .await?;
    ensure!(resp.status() == 401, "status {}", resp.status());
    ensure!(
        header(&resp, "www-authenticate") == Some("Basic realm=\"authentik\""),
        "WWW-Authenticate {:?}",
        header(&resp, "www-authenticate")
    );
    ensure!(resp.text().await? == "session expired", "401 body");
    ensure!(
        auth.count() == 2,
        "auth server asked {} times",
        auth.count()
    );
    ensure!(
        app.count() == 0,
        "the app was reached: {:?}",
        app.requests().iter().map(|r| &r.target).collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test]
async fn forward_auth_server_down_fails_closed() -> anyhow::Result<()> {
    let app = echo_app().await?;
    let dead = support::upstream::refused_addr()?.port();
    let proxy = Routes::default()
        .app("fa", &app.url(), Some(dead), "")
        .start()
        .await?;
    let resp = raw_client()?
        .get(proxy.url("/embed/fa/"))
        .header("cookie", "session=good")
        .send()
        .await?;
    ensure!(
        resp.status().is_server_error(),
        "auth server down answered {}",
        resp.status()
    );
    ensure!(
        app.count() == 0,
        "the app was reached with the auth server down"
    );
    Ok(())
}

#[tokio::test]
async fn forward_auth_request_describes_the_original_request() -> anyhow::Result<()> {
    let (auth, app) = (auth_server().await?, echo_app().await?);
    let proxy = Routes::default()
        .app("fa", &app.url(), Some(auth.port), "")
        .start()
        .await?;
    let resp = raw_client()?
        .post(proxy.url("/embed/fa/items/7?edit=1&x=%2F"))
        .header("host", "bloud.local")
        .header("cookie", "session=good; theme=dark")
        .header("x-forwarded-uri", "/spoofed")
        .header("x-forwarded-method", "DELETE")
        .header("x-forwarded-host", "evil.example")
        .body("name=x")
        .send()
        .await?;
    ensure!(resp.status() == 200, "status {}", resp.status());
    let seen = auth.requests();
    ensure!(seen.len() == 1, "auth server asked {} times", seen.len());
    let a = &seen[0];
    let checks = [
        ("method", Some(a.method.as_str()), "GET"),
        (
            "target",
            Some(a.target.as_str()),
            "/outpost.goauthentik.io/auth/traefik",
        ),
        (
            "x-forwarded-uri",
            a.header("x-forwarded-uri"),
            "/embed/fa/items/7?edit=1&x=%2F",
        ),
        ("x-forwarded-method", a.header("x-forwarded-method"), "POST"),
        (
            "x-forwarded-host",
            a.header("x-forwarded-host"),
            "bloud.local",
        ),
        ("x-forwarded-proto", a.header("x-forwarded-proto"), "http"),
        ("cookie", a.header("cookie"), "session=good; theme=dark"),
    ];
    for (what, got, want) in checks {
        ensure!(
            got == Some(want),
            "auth request {what}: {got:?}, want {want:?}"
        );
    }
    ensure!(
        a.header("content-length").is_none_or(|v| v == "0"),
        "auth request carries a body length {:?}",
        a.header("content-length")
    );
    let doc: serde_json::Value = resp.json().await?;
    ensure!(doc["method"] == "POST", "app saw {}", doc["method"]);
    ensure!(
        doc["target"] == "/items/7?edit=1&x=%2F",
        "app saw {}",
        doc["target"]
    );
    Ok(())
}

#[tokio::test]
async fn forward_auth_reuses_one_pooled_connection() -> anyhow::Result<()> {
    let (auth, app) = (auth_server().await?, echo_app().await?);
    let proxy = Routes::default()
        .app("fa", &app.url(), Some(auth.port), "")
        .start()
        .await?;
    let c = raw_client()?;
    for i in 0..50 {
        let resp = c
            .get(proxy.url(&format!("/embed/fa/n/{i}")))
            .header("cookie", "session=good")
            .send()
            .await?;
        ensure!(resp.status() == 200, "request {i}: {}", resp.status());
        let _ = resp.bytes().await?;
    }
    ensure!(
        auth.count() == 50,
        "auth server asked {} times",
        auth.count()
    );
    ensure!(
        auth.connections() == 1,
        "50 sequential auth checks opened {} connections to the auth server",
        auth.connections()
    );
    Ok(())
}

#[tokio::test]
async fn forward_auth_sees_the_original_uri_even_after_strip_prefix() -> anyhow::Result<()> {
    // The issue: `X-Forwarded-Uri` is the original `/embed/<app>/…` path (auth runs before
    // stripPrefix, whatever the middleware order says). Here stripPrefix is listed first.
    let (auth, app) = (auth_server().await?, echo_app().await?);
    let yaml = format!(
        "http:\n  routers:\n    fa-backend:\n      rule: \"Path(`/embed/fa`) || PathPrefix(`/embed/fa/`)\"\n      priority: 100\n      middlewares: [fa-strip, fa-auth, fa-embed]\n      service: fa\n  middlewares:\n    fa-strip:\n      stripPrefix:\n        prefixes: [\"/embed/fa\"]\n    fa-auth:\n      forwardAuth:\n        address: \"http://127.0.0.1:{}/outpost.goauthentik.io/auth/traefik\"\n        trustForwardHeader: true\n        authResponseHeaders: [X-authentik-username]\n    fa-embed:\n      embed:\n        prefix: /embed/fa\n  services:\n    fa:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        auth.port,
        app.url()
    );
    let proxy = Proxy::builder()
        .route_file("apps-routes.yml", yaml)
        .start()
        .await?;
    let resp = raw_client()?
        .get(proxy.url("/embed/fa/a/b?c=1"))
        .header("cookie", "session=good")
        .send()
        .await?;
    ensure!(resp.status() == 200, "status {}", resp.status());
    let seen = auth.requests();
    let uri = seen.first().and_then(|r| r.header("x-forwarded-uri"));
    ensure!(
        uri == Some("/embed/fa/a/b?c=1"),
        "auth server saw X-Forwarded-Uri {uri:?}"
    );
    let doc: serde_json::Value = resp.json().await?;
    ensure!(doc["target"] == "/a/b?c=1", "app saw {}", doc["target"]);
    ensure!(
        doc["headers"]["x-authentik-username"] == "alice",
        "identity {}",
        doc["headers"]["x-authentik-username"]
    );
    Ok(())
}
