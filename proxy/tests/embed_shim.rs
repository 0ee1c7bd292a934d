//! The run-time shim through the real `bloud-proxy` binary: served by the `embed` middleware at
//! `<prefix>/__bloud__/shim.<hash>.js` without the upstream (cacheable, HEAD, 304), first in the
//! app's HTML documents, and allowed by the app's own Content-Security-Policy.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use bloud_proxy::embed::shim::SHIM;
use support::proxy::Proxy;
use support::upstream::scripted::{reply, RawUpstream};

/// `/embed/app` → `url`, as bloud-agent writes it (stripPrefix, then embed); `extra` are more
/// keys of the embed middleware.
fn routes(url: &str, extra: &str) -> String {
    format!(
        "http:\n  routers:\n    app-backend:\n      rule: \"Path(`/embed/app`) || PathPrefix(`/embed/app/`)\"\n      priority: 100\n      middlewares: [app-strip, app-embed]\n      service: app\n  middlewares:\n    app-strip:\n      stripPrefix:\n        prefixes: [\"/embed/app\"]\n    app-embed:\n      embed:\n        prefix: /embed/app\n{extra}  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"{url}\"\n"
    )
}

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .no_gzip()
        .no_brotli()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .context("building the test client")
}

/// An app that records the paths it is asked for and answers a page with this CSP (if any).
async fn app(
    seen: Arc<Mutex<Vec<String>>>,
    csp: Option<&'static str>,
) -> anyhow::Result<RawUpstream> {
    RawUpstream::start(move |req| {
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(req.path().to_string());
        match req.path() {
            "/" => {
                let r = reply("200 OK").header("Content-Type", "text/html; charset=utf-8");
                let r = match csp {
                    Some(p) => r.header("Content-Security-Policy", p),
                    None => r,
                };
                r.body("<!doctype html><html><head><script src=\"/app.js\"></script></head><body>hi</body></html>")
            }
            "/part" => reply("200 OK")
                .header("Content-Type", "text/html")
                .body("<tr><td><a href=\"/x\">x</a></td></tr>"),
            _ => reply("404 Not Found").body("no"),
        }
    })
    .await
}

#[tokio::test]
async fn the_shim_is_served_by_the_proxy_cacheable_with_head_and_304() -> anyhow::Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = app(seen.clone(), None).await?;
    let proxy = Proxy::builder()
        .route_file("apps-routes.yml", routes(&upstream.url(), ""))
        .start()
        .await?;
    let c = client()?;
    let url = proxy.url(&format!("/embed/app/__bloud__/{}", SHIM.file));

    let resp = c.get(&url).send().await?;
    ensure!(resp.status() == 200, "GET shim: {}", resp.status());
    let h = |r: &reqwest::Response, n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    ensure!(h(&resp, "content-type").as_deref() == Some("text/javascript; charset=utf-8"));
    ensure!(
        h(&resp, "cache-control").as_deref() == Some("public, max-age=31536000, immutable"),
        "cache-control {:?}",
        h(&resp, "cache-control")
    );
    let etag = h(&resp, "etag").context("an ETag")?;
    ensure!(h(&resp, "content-length") == Some(SHIM.body.len().to_string()));
    let body = resp.bytes().await?;
    ensure!(body == SHIM.body, "the served bytes are the shim");

    let head = c.head(&url).send().await?;
    ensure!(head.status() == 200, "HEAD shim: {}", head.status());
    ensure!(h(&head, "content-length") == Some(SHIM.body.len().to_string()));
    ensure!(h(&head, "etag").as_deref() == Some(etag.as_str()));
    ensure!(head.bytes().await?.is_empty());

    let again = c.get(&url).header("If-None-Match", &etag).send().await?;
    ensure!(again.status() == 304, "conditional GET: {}", again.status());
    ensure!(h(&again, "etag").as_deref() == Some(etag.as_str()));
    ensure!(again.bytes().await?.is_empty());

    // An older version's name is the app's business (the proxy answers only the current one).
    let old = c
        .get(proxy.url("/embed/app/__bloud__/shim.0000000000.js"))
        .send()
        .await?;
    ensure!(old.status() == 404, "old shim name: {}", old.status());
    let asked = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ensure!(
        asked == vec!["/__bloud__/shim.0000000000.js".to_string()],
        "the upstream saw only the unknown name: {asked:?}"
    );
    Ok(())
}

#[tokio::test]
async fn documents_get_the_tag_first_fragments_do_not() -> anyhow::Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = app(seen, None).await?;
    let proxy = Proxy::builder()
        .route_file(
            "apps-routes.yml",
            routes(&upstream.url(), "        exclude: [/openid-cb]\n"),
        )
        .start()
        .await?;
    let c = client()?;
    let page = c.get(proxy.url("/embed/app/")).send().await?.text().await?;
    let tag = format!(
        "<script src=\"/embed/app/__bloud__/{}\" data-prefix=\"/embed/app\" data-exclude=\"[&quot;/openid-cb&quot;]\"></script>",
        SHIM.file
    );
    ensure!(
        page == format!("<!doctype html><html><head>{tag}<script src=\"/embed/app/app.js\"></script></head><body>hi</body></html>"),
        "page: {page}"
    );
    let part = c
        .get(proxy.url("/embed/app/part"))
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        part == "<tr><td><a href=\"/embed/app/x\">x</a></td></tr>",
        "fragment: {part}"
    );

    // `shim: false` on the route: no tag, and the path is the app's again.
    let proxy_off = Proxy::builder()
        .route_file(
            "apps-routes.yml",
            routes(&upstream.url(), "        shim: false\n"),
        )
        .start()
        .await?;
    let page = c
        .get(proxy_off.url("/embed/app/"))
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        !page.contains("__bloud__"),
        "shim: false still injects: {page}"
    );
    let shim = c
        .get(proxy_off.url(&format!("/embed/app/__bloud__/{}", SHIM.file)))
        .send()
        .await?;
    ensure!(
        shim.status() == 404,
        "shim: false still serves it: {}",
        shim.status()
    );
    Ok(())
}

#[tokio::test]
async fn the_apps_csp_is_adapted_to_allow_the_shim() -> anyhow::Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let strict = app(
        seen.clone(),
        Some("script-src 'strict-dynamic' 'sha256-abc'; object-src 'none'"),
    )
    .await?;
    let proxy = Proxy::builder()
        .route_file("apps-routes.yml", routes(&strict.url(), ""))
        .start()
        .await?;
    let c = client()?;
    let resp = c.get(proxy.url("/embed/app/")).send().await?;
    let csp = resp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    ensure!(
        csp == Some(format!(
            "script-src 'strict-dynamic' 'sha256-abc' '{}'; object-src 'none'",
            SHIM.sri
        )),
        "csp {csp:?}"
    );
    let page = resp.text().await?;
    ensure!(
        page.contains(&format!(" integrity=\"{}\"></script>", SHIM.sri)),
        "page: {page}"
    );
    Ok(())
}
