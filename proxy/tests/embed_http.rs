//! HTTP behaviour of the `embed` middleware through the real `bloud-proxy` binary, with
//! upstreams written here: the bare prefix's redirect, HEAD answered with GET's header edits,
//! revalidation of rewritten bodies (weak ETags) against an upstream that compares tags as
//! strings, web app manifests, and what a client closing a long poll leaves in the log.
//!
//! Routes are the agent's: ``Path(`/embed/<app>`) || PathPrefix(`/embed/<app>/`)``, stripPrefix,
//! then `embed` with only its prefix (no per-app settings).

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{ensure, Context};
use support::proxy::Proxy;
use support::upstream::scripted::{reply, Gate, Part, RawUpstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The agent's route file for `app` → `url`.
fn app_routes(app: &str, url: &str) -> String {
    let embed = format!("    {app}-embed:\n      embed:\n        prefix: \"/embed/{app}\"\n");
    support::embed_app_routes_with(app, url, &[&format!("{app}-embed")], &embed)
}

/// No redirects followed and no decompression: the test sees what the proxy sent.
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

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

fn gunzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .context("the proxy's gzip body")?;
    Ok(out)
}

#[tokio::test]
async fn bare_prefix_is_redirected_for_every_app_without_asking_it() -> anyhow::Result<()> {
    let page = || {
        reply("200 OK")
            .header("Content-Type", "text/html")
            .body("<link rel=stylesheet href=css/style.css>")
    };
    let first = RawUpstream::start(move |_| page()).await?;
    let second = RawUpstream::start(move |_| page()).await?;
    let proxy = Proxy::builder()
        .route_file("first.yml", app_routes("first", &first.url()))
        .route_file("second.yml", app_routes("second", &second.url()))
        .start()
        .await?;
    let c = raw_client()?;
    // (method, path and query, Location)
    let cases = [
        ("GET", "/embed/first", "/embed/first/"),
        (
            "GET",
            "/embed/first?tab=2&q=%2Fx",
            "/embed/first/?tab=2&q=%2Fx",
        ),
        ("POST", "/embed/first?x=1", "/embed/first/?x=1"),
        ("HEAD", "/embed/second", "/embed/second/"),
        ("DELETE", "/embed/second", "/embed/second/"),
    ];
    for (method, path, want) in cases {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let resp = c.request(m, proxy.url(path)).body("").send().await?;
        ensure!(resp.status() == 308, "{method} {path}: {}", resp.status());
        ensure!(
            header(&resp, "location").as_deref() == Some(want),
            "{method} {path}: Location {:?}",
            header(&resp, "location")
        );
    }
    ensure!(
        first.count() == 0 && second.count() == 0,
        "the apps were asked: {:?} {:?}",
        first.requests(),
        second.requests()
    );
    // With the slash, and below it, the app answers.
    for path in ["/embed/first/", "/embed/first/x", "/embed/second/?a=1"] {
        let resp = c.get(proxy.url(path)).send().await?;
        ensure!(resp.status() == 200, "{path}: {}", resp.status());
    }
    ensure!(first.count() == 2 && second.count() == 1);
    Ok(())
}

/// A page whose rewritten body is longer than the upstream's, sent gzipped with a strong ETag;
/// HEAD gets the same headers and no body (what real servers do).
async fn page_app() -> anyhow::Result<RawUpstream> {
    let html = "<a href=\"/login\">in</a>".repeat(100);
    let zipped = gzip(html.as_bytes());
    RawUpstream::start(move |req| {
        let gzip = req
            .header("accept-encoding")
            .is_some_and(|v| v.contains("gzip"));
        let r = reply("200 OK")
            .header("Content-Type", "text/html; charset=utf-8")
            .header("ETag", "\"v1\"")
            .header("Accept-Ranges", "bytes");
        if gzip {
            r.header("Content-Encoding", "gzip").body(zipped.clone())
        } else {
            r.body(html.clone())
        }
    })
    .await
}

#[tokio::test]
async fn head_gets_the_headers_get_would() -> anyhow::Result<()> {
    let app = page_app().await?;
    let proxy = Proxy::builder()
        .route_file("app.yml", app_routes("app", &app.url()))
        .start()
        .await?;
    let c = raw_client()?;
    let names = [
        "content-length",
        "transfer-encoding",
        "content-encoding",
        "etag",
        "accept-ranges",
        "vary",
        "content-type",
    ];
    for accept in ["identity", "gzip"] {
        let get = c
            .get(proxy.url("/embed/app/"))
            .header("Accept-Encoding", accept)
            .send()
            .await?;
        let get_headers: Vec<_> = names.iter().map(|n| header(&get, n)).collect();
        let body = get.bytes().await?;
        let body = match accept {
            "gzip" => gunzip(&body)?,
            _ => body.to_vec(),
        };
        ensure!(
            String::from_utf8_lossy(&body).contains("href=\"/embed/app/login\""),
            "GET body not rewritten"
        );
        let head = c
            .head(proxy.url("/embed/app/"))
            .header("Accept-Encoding", accept)
            .send()
            .await?;
        ensure!(head.status() == 200, "HEAD: {}", head.status());
        let head_headers: Vec<_> = names.iter().map(|n| header(&head, n)).collect();
        ensure!(
            head_headers == get_headers,
            "{accept}: HEAD {head_headers:?} vs GET {get_headers:?} ({names:?})"
        );
        // The upstream's length (of the unrewritten body) is not passed on; the tag is weak.
        ensure!(
            head_headers[0].is_none(),
            "HEAD Content-Length {:?}",
            head_headers[0]
        );
        ensure!(
            head_headers[3].as_deref() == Some("W/\"v1\""),
            "{head_headers:?}"
        );
    }
    ensure!(app.requests().iter().any(|r| r.method == "HEAD"));
    Ok(())
}

#[tokio::test]
async fn rewritten_bodies_revalidate_against_a_string_comparing_upstream() -> anyhow::Result<()> {
    // Splits If-None-Match on commas and compares each entry with its own tag as a string:
    // `W/"v1"` alone never matches `"v1"` there.
    let app = RawUpstream::start(|req| {
        let fresh = req
            .header("if-none-match")
            .is_some_and(|list| list.split(',').any(|t| t.trim() == "\"v1\""));
        if fresh {
            return reply("304 Not Modified").header("ETag", "\"v1\"").no_body();
        }
        reply("200 OK")
            .header("Content-Type", "text/html")
            .header("ETag", "\"v1\"")
            .body("<img src=\"/logo.png\">")
    })
    .await?;
    let proxy = Proxy::builder()
        .route_file("app.yml", app_routes("app", &app.url()))
        .start()
        .await?;
    let c = raw_client()?;
    let first = c.get(proxy.url("/embed/app/")).send().await?;
    let etag = header(&first, "etag").context("no ETag")?;
    ensure!(etag == "W/\"v1\"", "first ETag {etag}");
    ensure!(first.text().await? == "<img src=\"/embed/app/logo.png\">");

    // The browser revalidates with what it got.
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let again = c
            .request(method.clone(), proxy.url("/embed/app/"))
            .header("If-None-Match", &etag)
            .send()
            .await?;
        ensure!(
            again.status() == 304,
            "{method} revalidation: {}",
            again.status()
        );
        ensure!(
            header(&again, "etag").as_deref() == Some("W/\"v1\""),
            "{method} 304 ETag {:?}",
            header(&again, "etag")
        );
    }
    let sent = app.requests();
    ensure!(
        sent[1].header("if-none-match") == Some("W/\"v1\", \"v1\""),
        "upstream got If-None-Match {:?}",
        sent[1].header("if-none-match")
    );
    // A changed page is sent whole again.
    let other = c
        .get(proxy.url("/embed/app/"))
        .header("If-None-Match", "W/\"v0\"")
        .send()
        .await?;
    ensure!(other.status() == 200, "stale tag: {}", other.status());
    Ok(())
}

#[tokio::test]
async fn manifests_are_rewritten_and_recompressed() -> anyhow::Result<()> {
    let manifest = r#"{"name":"App","start_url":"/","scope":"/","id":"/","icons":[{"src":"/icon-192.png","sizes":"192x192"}],"shortcuts":[{"name":"New","url":"/new","icons":[{"src":"/new.png"}]}]}"#;
    let zipped = gzip(manifest.as_bytes());
    let app = RawUpstream::start(move |req| match req.path() {
        "/manifest.webmanifest" => reply("200 OK")
            .header("Content-Type", "application/manifest+json")
            .header("Content-Encoding", "gzip")
            .body(zipped.clone()),
        "/site.webmanifest" => reply("200 OK")
            .header("Content-Type", "application/json")
            .body(manifest),
        _ => reply("200 OK")
            .header("Content-Type", "application/json")
            .body(manifest),
    })
    .await?;
    let proxy = Proxy::builder()
        .route_file("app.yml", app_routes("app", &app.url()))
        .start()
        .await?;
    let c = raw_client()?;
    let want = serde_json::json!({
        "name": "App", "start_url": "/embed/app/", "scope": "/embed/app/", "id": "/embed/app/",
        "icons": [{"src": "/embed/app/icon-192.png", "sizes": "192x192"}],
        "shortcuts": [{"name": "New", "url": "/embed/app/new",
                       "icons": [{"src": "/embed/app/new.png"}]}],
    });
    let resp = c
        .get(proxy.url("/embed/app/manifest.webmanifest"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await?;
    ensure!(header(&resp, "content-encoding").as_deref() == Some("gzip"));
    ensure!(header(&resp, "content-length").is_none());
    let got: serde_json::Value = serde_json::from_slice(&gunzip(&resp.bytes().await?)?)?;
    ensure!(got == want, "{got}");

    let resp = c
        .get(proxy.url("/embed/app/site.webmanifest"))
        .send()
        .await?;
    let got: serde_json::Value = resp.json().await?;
    ensure!(got == want, "{got}");

    // Other JSON is the app's data: untouched, byte for byte.
    let resp = c.get(proxy.url("/embed/app/api/state")).send().await?;
    ensure!(resp.text().await? == manifest);
    Ok(())
}

/// Lines the proxy logged at ERROR level.
fn error_lines(proxy: &Proxy) -> Vec<String> {
    proxy
        .logs()
        .lines()
        .filter(|l| l.contains(" ERROR "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_a_long_poll_is_not_an_error_but_an_upstream_failure_is(
) -> anyhow::Result<()> {
    // A long poll: the first bytes, then nothing until the gate opens (never: the client
    // leaves first; the upstream gives up after 5 s by itself).
    let gate = Gate::default();
    let poll_gate = gate.clone();
    let app = RawUpstream::start(move |req| match req.path() {
        "/poll" => reply("200 OK")
            .header("Content-Type", "text/plain")
            .chunks(vec![
                Part::Data(b"waiting\n".to_vec()),
                Part::Wait(poll_gate.clone()),
            ]),
        _ => reply("200 OK")
            .header("Content-Type", "text/html")
            .body("<p>"),
    })
    .await?;
    // An upstream that promises 1000 bytes, sends 10 and hangs up.
    let broken = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let broken_url = format!("http://{}", broken.local_addr()?);
    let broken_task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = broken.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                .await;
        }
    });
    let proxy = Proxy::builder()
        .route_file("app.yml", app_routes("app", &app.url()))
        .route_file("broken.yml", app_routes("broken", &broken_url))
        .static_yaml("log:\n  level: debug\n")
        .start()
        .await?;

    // The client reads the first bytes of the long poll, then closes its connection.
    let mut sock = tokio::net::TcpStream::connect(proxy.web).await?;
    sock.write_all(b"GET /embed/app/poll HTTP/1.1\r\nHost: bloud.local\r\n\r\n")
        .await?;
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("waiting") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await??;
        ensure!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    drop(sock);
    let logged = support::eventually(Duration::from_secs(10), || async {
        proxy
            .logs()
            .contains("client closed the connection before the response ended")
    })
    .await;
    gate.open();
    ensure!(
        logged,
        "the disconnect was not logged at debug:\n{}",
        proxy.logs()
    );
    let errors = error_lines(&proxy);
    ensure!(
        errors.is_empty(),
        "a client disconnect logged at ERROR: {errors:?}"
    );

    // A real upstream failure still is an error.
    let c = raw_client()?;
    if let Ok(resp) = c.get(proxy.url("/embed/broken/")).send().await {
        let _ = resp.bytes().await;
    }
    let logged = support::eventually(Duration::from_secs(10), || async {
        !error_lines(&proxy).is_empty()
    })
    .await;
    broken_task.abort();
    ensure!(
        logged,
        "an upstream failure was not logged at ERROR:\n{}",
        proxy.logs()
    );
    Ok(())
}
