//! The edge policy: what a client can and cannot make the proxy forward.
//! - forwarding headers from an untrusted peer are dropped and regenerated;
//! - paths with dot-segments (raw or percent-encoded) are refused with 400;
//! - no route is 404, a dead upstream is 502, with a small HTML body naming the router.

mod support;

use std::time::Duration;

use anyhow::{ensure, Context};
use support::proxy::{tail, Proxy};
use support::upstream::{echo_header, Breakage, BrokenUpstream, RecordedRequest, Upstream};

const SPOOF_IP: &str = "6.6.6.6";

/// Client-sent forwarding headers that must not survive an untrusted peer.
const SPOOFED: &[(&str, &str)] = &[
    ("X-Forwarded-For", SPOOF_IP),
    ("X-Real-Ip", SPOOF_IP),
    ("True-Client-IP", SPOOF_IP),
    ("Forwarded", "for=6.6.6.6;host=evil.example;proto=https"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Port", "6666"),
    ("X-Forwarded-Server", "evil.example"),
    ("X-Forwarded-Prefix", "/evil"),
    ("X-Forwarded-Uri", "/evil"),
    ("X-Forwarded-Method", "DELETE"),
];

fn spoof_markers(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(k, v)| {
            k.eq_ignore_ascii_case("true-client-ip")
                || v.contains(SPOOF_IP)
                || v.contains("evil")
                || v == "DELETE"
                || v == "https"
        })
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

fn last_request(app: &Upstream) -> anyhow::Result<RecordedRequest> {
    app.requests()
        .pop()
        .context("the upstream received no request")
}

fn values(req: &RecordedRequest, name: &str) -> Vec<String> {
    req.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

#[tokio::test]
async fn spoofed_forwarding_headers_from_an_untrusted_peer_never_reach_the_upstream(
) -> anyhow::Result<()> {
    let app = Upstream::start("app").await?;
    let proxy = Proxy::builder()
        .route_file(
            "apps-routes.yml",
            support::embed_app_routes("app", &app.url(), &[]),
        )
        .start()
        .await?;

    let mut req = support::client()?.get(proxy.url("/embed/app/who?x=1"));
    for (k, v) in SPOOFED {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.context("GET through the proxy")?;
    ensure!(resp.status().as_u16() == 200, "status {}", resp.status());
    let doc: serde_json::Value = resp.json().await.context("echo body")?;
    ensure!(doc["path"] == "/who", "strip prefix: {doc}");

    let seen = last_request(&app)?;
    let leaked = spoof_markers(&seen.headers);
    ensure!(
        leaked.is_empty(),
        "client-sent forwarding headers reached the upstream: {leaked:?}"
    );
    ensure!(
        values(&seen, "x-forwarded-for") == vec!["127.0.0.1".to_string()],
        "X-Forwarded-For must be the proxy's own: {:?}",
        seen.headers
    );
    ensure!(
        values(&seen, "x-real-ip") == vec!["127.0.0.1".to_string()],
        "X-Real-Ip must be the peer: {:?}",
        seen.headers
    );
    ensure!(
        values(&seen, "x-forwarded-host") == vec![proxy.web.to_string()],
        "X-Forwarded-Host must be the request's Host: {:?}",
        seen.headers
    );
    ensure!(
        values(&seen, "x-forwarded-proto") == vec!["http".to_string()],
        "X-Forwarded-Proto: {:?}",
        seen.headers
    );
    ensure!(
        values(&seen, "x-forwarded-port") == vec![proxy.web.port().to_string()],
        "X-Forwarded-Port must be the entry point's port: {:?}",
        seen.headers
    );
    ensure!(
        values(&seen, "x-forwarded-prefix") == vec!["/embed/app".to_string()],
        "X-Forwarded-Prefix must be the stripped prefix only: {:?}",
        seen.headers
    );
    ensure!(
        echo_header(&doc, "x-forwarded-for") == vec!["127.0.0.1".to_string()],
        "echo view: {doc}"
    );
    Ok(())
}

#[tokio::test]
async fn spoofed_headers_in_odd_case_and_repeated_are_dropped_too() -> anyhow::Result<()> {
    let app = Upstream::start("app").await?;
    let proxy = Proxy::builder()
        .route_file(
            "apps-routes.yml",
            support::embed_app_routes("app", &app.url(), &[]),
        )
        .start()
        .await?;
    let request = format!(
        "GET /embed/app/raw HTTP/1.1\r\nHost: bloud.local\r\n\
         x-forwarded-for: {SPOOF_IP}\r\nX-FORWARDED-FOR: 7.7.7.7, {SPOOF_IP}\r\n\
         x-real-ip: {SPOOF_IP}\r\nTRUE-CLIENT-IP: {SPOOF_IP}\r\ntrue-client-ip: {SPOOF_IP}\r\n\
         forwarded: for={SPOOF_IP}\r\nFORWARDED: for=\"[::6]\"\r\n\
         Connection: close\r\n\r\n"
    );
    let out = support::raw::send_default(proxy.web, request.as_bytes()).await?;
    ensure!(out.first_status() == Some(200), "{}", out.summary());
    let seen = last_request(&app)?;
    ensure!(seen.path_and_query == "/raw", "{seen:?}");
    let leaked: Vec<_> = spoof_markers(&seen.headers)
        .into_iter()
        .chain(
            seen.headers
                .iter()
                .filter(|(k, v)| v.contains("7.7.7.7") || (k == "forwarded" && v.contains("::6")))
                .map(|(k, v)| format!("{k}: {v}")),
        )
        .collect();
    ensure!(leaked.is_empty(), "spoofed headers leaked: {leaked:?}");
    ensure!(
        values(&seen, "x-forwarded-for") == vec!["127.0.0.1".to_string()],
        "{:?}",
        seen.headers
    );
    Ok(())
}

#[tokio::test]
async fn a_trusted_peer_keeps_its_x_forwarded_for() -> anyhow::Result<()> {
    // Control for the tests above: the same request from a trusted peer passes the client's
    // X-Forwarded-For on, so dropping it above is policy, not an accident.
    let app = Upstream::start("app").await?;
    let proxy = Proxy::builder()
        .trusted_ips(&["127.0.0.1"])
        .route_file(
            "apps-routes.yml",
            support::embed_app_routes("app", &app.url(), &[]),
        )
        .start()
        .await?;
    let resp = support::client()?
        .get(proxy.url("/embed/app/who"))
        .header("X-Forwarded-For", SPOOF_IP)
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 200, "status {}", resp.status());
    let seen = last_request(&app)?;
    let xff = values(&seen, "x-forwarded-for").join(", ");
    ensure!(
        xff.starts_with(SPOOF_IP),
        "a trusted peer's X-Forwarded-For must be kept (and appended to): {xff:?}"
    );
    Ok(())
}

/// Routes for the dot-segment tests: an app and a catch-all, so that a request the proxy
/// "normalised" instead of refusing would show up at one of them.
async fn app_and_catch_all() -> anyhow::Result<(Upstream, Upstream, Proxy)> {
    let app = Upstream::start("app").await?;
    let ui = Upstream::start("ui").await?;
    let catch_all = format!(
        "http:\n  routers:\n    ui:\n      rule: \"PathPrefix(`/`)\"\n      priority: 1\n      service: ui\n  services:\n    ui:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        ui.url()
    );
    let proxy = Proxy::builder()
        .route_file(
            "apps-routes.yml",
            support::embed_app_routes("app", &app.url(), &[]),
        )
        .route_file("base.yml", catch_all)
        .start()
        .await?;
    Ok((app, ui, proxy))
}

#[tokio::test]
async fn dot_segments_raw_or_percent_encoded_get_400() -> anyhow::Result<()> {
    let (app, ui, proxy) = app_and_catch_all().await?;
    let bad_paths = [
        "/embed/app/../../api",
        "/embed/app/%2e%2e/%2e%2e/api",
        "/embed/app/%2E%2E/%2E%2E/api",
        "/embed/app/.%2e/api",
        "/embed/app/%2e./api",
        "/embed/app/..",
        "/embed/app/./x",
        "/embed/app/%2e/x",
        "/../etc/passwd",
        "/embed/app/x/..?q=1",
    ];
    let mut failures = Vec::new();
    for path in bad_paths {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n");
        let out = support::raw::send_default(proxy.web, request.as_bytes()).await?;
        if out.first_status() != Some(400) {
            failures.push(format!("{path}: expected 400, got {}", out.summary()));
        }
    }
    let reached: Vec<String> = app.paths().into_iter().chain(ui.paths()).collect();
    ensure!(
        failures.is_empty() && reached.is_empty(),
        "dot-segment paths must be refused with 400 and never forwarded\n{}\nupstreams saw: {reached:?}",
        failures.join("\n")
    );

    // Control: dots that are not whole segments are ordinary names.
    for (path, upstream_path) in [
        ("/embed/app/file..txt", "/file..txt"),
        ("/embed/app/.well-known/x", "/.well-known/x"),
    ] {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n");
        let out = support::raw::send_default(proxy.web, request.as_bytes()).await?;
        ensure!(out.first_status() == Some(200), "{path}: {}", out.summary());
        ensure!(
            app.paths().last().map(String::as_str) == Some(upstream_path),
            "{path}: app saw {:?}",
            app.paths()
        );
    }
    Ok(())
}

#[tokio::test]
async fn no_route_is_404() -> anyhow::Result<()> {
    let app = Upstream::start("app").await?;
    let proxy = Proxy::builder()
        .route_file(
            "apps-routes.yml",
            support::embed_app_routes("app", &app.url(), &[]),
        )
        .start()
        .await?;
    // Segment-exact app rule: /embed/appx is not the app's.
    for path in ["/nothing/here", "/embed/appx/y"] {
        let resp = support::client()?.get(proxy.url(path)).send().await?;
        let status = resp.status().as_u16();
        let body = resp.text().await?;
        ensure!(
            status == 404,
            "{path}: no route: expected 404, got {status}: {}",
            tail(&body, 300)
        );
    }
    ensure!(app.count() == 0, "the app saw {:?}", app.paths());
    Ok(())
}

/// Requests `/embed/<app>/x` routed to `url` and expects a small 502 HTML page naming the
/// router.
async fn expect_502(app: &str, url: &str) -> anyhow::Result<()> {
    let proxy = Proxy::builder()
        .route_file("apps-routes.yml", support::embed_app_routes(app, url, &[]))
        .start()
        .await?;
    let path = format!("/embed/{app}/x");
    let router = format!("{app}-backend");
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        support::client()?.get(proxy.url(&path)).send(),
    )
    .await
    .with_context(|| format!("{path}: no answer within 20 s"))?
    .map_err(|e| {
        anyhow::anyhow!(
            "{path}: expected a 502 page, the connection failed instead: {e:?}\nproxy log:\n{}",
            tail(&proxy.logs(), 3000)
        )
    })?;
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.text().await?;
    ensure!(
        status == 502,
        "{path}: expected 502, got {status}: {}",
        tail(&body, 300)
    );
    ensure!(
        ctype.starts_with("text/html"),
        "{path}: content-type {ctype:?}"
    );
    ensure!(
        body.contains(&router),
        "{path}: the error page must name router {router}: {}",
        tail(&body, 300)
    );
    ensure!(
        !body.contains("panicked") && !body.contains("backtrace") && body.len() < 4096,
        "{path}: error page must be small and without internals: {}",
        tail(&body, 300)
    );
    // The proxy stays up for the next request.
    let again = support::client()?.get(proxy.url("/ping")).send().await?;
    ensure!(
        again.status().as_u16() == 200,
        "/ping after a 502: {}",
        again.status()
    );
    Ok(())
}

#[tokio::test]
async fn refused_upstream_is_502_naming_the_router() -> anyhow::Result<()> {
    let refused = support::upstream::refused_addr()?;
    expect_502("deadapp", &format!("http://{refused}")).await
}

#[tokio::test]
async fn upstream_closing_after_the_request_is_502() -> anyhow::Result<()> {
    let closing = BrokenUpstream::start(Breakage::CloseAfterRequest).await?;
    expect_502("closingapp", &closing.url()).await
}

#[tokio::test]
async fn upstream_closing_on_accept_is_502() -> anyhow::Result<()> {
    let closing = BrokenUpstream::start(Breakage::CloseOnAccept).await?;
    expect_502("resetapp", &closing.url()).await
}
