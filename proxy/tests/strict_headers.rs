//! Headers a client can use against the upstream or against the proxy's own headers:
//! - `Content-Length: 5, 5` is one length written twice; it is refused, or reaches the upstream
//!   as a single `5`, never as a list an upstream might read differently (the framing an upstream
//!   that mis-parsed the list used to let a second client's request in);
//! - `Connection: <names>` names hop-by-hop headers: the client's copies of those are removed
//!   (RFC 9110 §7.6.1), but never the headers the proxy or a middleware sets (the class of
//!   Traefik's CVE-2024-45410), and the list itself does not reach the upstream.

mod support;

use std::time::Duration;

use anyhow::{ensure, Context};
use support::proxy::Proxy;
use support::raw;
use support::upstream::Upstream;

const MW: &str = "    app-headers:\n      headers:\n        customRequestHeaders:\n          X-Bloud-Set: by-middleware\n";

async fn setup() -> anyhow::Result<(Upstream, Proxy)> {
    let app = Upstream::start("app").await?;
    let routes = support::embed_app_routes_with("app", &app.url(), &["app-headers"], MW);
    let proxy = Proxy::builder()
        .route_file("app.yml", routes)
        .start()
        .await?;
    Ok((app, proxy))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_content_length_is_refused_or_sent_once() -> anyhow::Result<()> {
    let (app, proxy) = setup().await?;
    // (case, Content-Length lines as sent, body)
    let body35 = "x".repeat(35);
    let cases = [
        (
            "one header, list of equal values",
            "Content-Length: 5, 5\r\n",
            "hello",
        ),
        (
            "one header, list of equal two-digit values",
            "Content-Length: 35, 35\r\n",
            body35.as_str(),
        ),
        (
            "two equal headers",
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            "hello",
        ),
    ];
    for (i, (case, lines, body)) in cases.iter().enumerate() {
        let request = format!(
            "POST /embed/app/cl-{i} HTTP/1.1\r\nHost: bloud.local\r\n{lines}Connection: close\r\n\r\n{body}"
        );
        let out = raw::send_default(proxy.web, request.as_bytes()).await?;
        let seen = app
            .requests()
            .into_iter()
            .find(|r| r.path_and_query == format!("/cl-{i}"));
        let status = out.first_status();
        if status.is_some_and(|s| (400..500).contains(&s)) {
            ensure!(seen.is_none(), "{case}: refused, yet forwarded: {seen:?}");
            continue;
        }
        ensure!(status == Some(200), "{case}: {}", out.summary());
        let seen = seen.with_context(|| format!("{case}: the upstream never saw the request"))?;
        ensure!(
            header(&seen.headers, "content-length") == [body.len().to_string()],
            "{case}: the upstream must see one Content-Length, saw {:?}",
            header(&seen.headers, "content-length")
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_names_cannot_remove_the_proxys_headers() -> anyhow::Result<()> {
    let (app, proxy) = setup().await?;
    // Without the proxy's own handling, Pingora removes the nominated headers after the proxy
    // set them (first case) or refuses the request outright (second case: X-Forwarded-For).
    let lists = [
        "close, X-Real-Ip, X-Forwarded-Port, X-Forwarded-Prefix, X-Bloud-Set, X-Hop",
        "close, X-Forwarded-For, X-Real-Ip, X-Hop",
    ];
    for (i, list) in lists.iter().enumerate() {
        let request = format!(
            "GET /embed/app/hop-{i} HTTP/1.1\r\nHost: bloud.local\r\nConnection: {list}\r\n\
             X-Hop: from-client\r\nX-Kept: from-client\r\n\r\n"
        );
        let out = raw::send(
            proxy.web,
            request.as_bytes(),
            Duration::from_millis(2000),
            Duration::from_secs(10),
        )
        .await?;
        ensure!(out.first_status() == Some(200), "{list}: {}", out.summary());
        let seen = app
            .requests()
            .into_iter()
            .find(|r| r.path_and_query == format!("/hop-{i}"))
            .with_context(|| format!("{list}: the upstream never saw the request"))?;
        let h = &seen.headers;
        for (name, want) in [
            ("x-real-ip", "127.0.0.1"),
            ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-port", "80"),
            ("x-forwarded-prefix", "/embed/app"),
            ("x-bloud-set", "by-middleware"),
            ("x-kept", "from-client"),
        ] {
            ensure!(
                header(h, name) == [want],
                "{list}: {name} must reach the upstream as {want:?}, got {:?} (all: {h:?})",
                header(h, name)
            );
        }
        ensure!(
            header(h, "x-hop").is_empty(),
            "{list}: a header the client named in Connection is hop-by-hop: {h:?}"
        );
        let connection = header(h, "connection").join(",").to_ascii_lowercase();
        ensure!(
            !connection.contains("x-"),
            "{list}: the client's Connection list must not reach the upstream: {connection:?}"
        );
    }
    // Framing and routing headers cannot be made hop-by-hop.
    let request =
        "GET /embed/app/hop-host HTTP/1.1\r\nHost: bloud.local\r\nConnection: Host\r\n\r\n";
    let out = raw::send_default(proxy.web, request.as_bytes()).await?;
    ensure!(
        out.first_status() == Some(400),
        "Connection: Host: {}",
        out.summary()
    );
    Ok(())
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host` gets 400; HTTP/1.0 may omit it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_without_host_is_refused() -> anyhow::Result<()> {
    let (app, proxy) = setup().await?;
    // (case, request, expected status, forwarded upstream)
    let cases = [
        (
            "HTTP/1.1, no Host",
            "GET /embed/app/no-host-11 HTTP/1.1\r\nConnection: close\r\n\r\n",
            400,
            false,
        ),
        (
            "HTTP/1.1, two Host headers",
            "GET /embed/app/two-hosts HTTP/1.1\r\nHost: bloud.local\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            400,
            false,
        ),
        (
            "HTTP/1.0, no Host",
            "GET /embed/app/no-host-10 HTTP/1.0\r\n\r\n",
            200,
            true,
        ),
        (
            "HTTP/1.1 with Host",
            "GET /embed/app/with-host HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n",
            200,
            true,
        ),
    ];
    for (case, request, status, forwarded) in cases {
        let out = raw::send_default(proxy.web, request.as_bytes()).await?;
        ensure!(
            out.first_status() == Some(status),
            "{case}: expected {status}: {}",
            out.summary()
        );
        let path = request
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.strip_prefix("/embed/app"))
            .unwrap_or_default();
        let seen = app.requests().iter().any(|r| r.path_and_query == path);
        ensure!(seen == forwarded, "{case}: forwarded upstream = {seen}");
    }
    Ok(())
}

/// A request target that is not origin-form (`/path`) is refused: the proxy must not route one
/// target and send the upstream another. (A raw TAB or NUL in the target is still forwarded
/// percent-encoded, `/t%09ab`: issue 11 item 6, open.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_request_targets_are_refused() -> anyhow::Result<()> {
    let (app, proxy) = setup().await?;
    let cases: [(&str, &[u8]); 1] = [(
        "no leading slash",
        b"GET embed/app/rel HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n",
    )];
    for (case, request) in cases {
        let before = app.requests().len();
        let out = raw::send_default(proxy.web, request).await?;
        let status = out.first_status();
        // 400 exactly: a 404 would only mean that no route matched what it was parsed into.
        ensure!(
            status == Some(400),
            "{case}: expected 400: {} (upstream saw {:?})",
            out.summary(),
            app.requests().last().map(|r| r.path_and_query.clone())
        );
        ensure!(
            app.requests().len() == before,
            "{case}: nothing may reach the upstream: {:?}",
            app.requests().last()
        );
    }
    Ok(())
}
