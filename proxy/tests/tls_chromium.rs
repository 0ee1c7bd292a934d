//! Debian's Chromium loads a page through the HTTPS entry point over HTTP/2, trusting the
//! test certificate by its public-key hash (`--ignore-certificate-errors-spki-list`), not by
//! ignoring certificate errors: the page sees a secure context and `h2` as its protocol.

mod support;

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context};
use base64::Engine;
use sha2::Digest;
use support::proxy::Proxy;
use support::tls::{catch_all_routes, start_https, tls_yaml, TestCa};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The page the upstream serves: it writes what the browser knows about its own load.
const PAGE: &str = r#"<!doctype html><html><head><title>tls</title></head><body>
<script>
const nav = performance.getEntriesByType('navigation')[0];
document.body.setAttribute('data-result', JSON.stringify({
  protocol: nav ? nav.nextHopProtocol : 'none',
  secure: window.isSecureContext,
  scheme: location.protocol,
}));
</script></body></html>"#;

async fn page_upstream() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().fallback(|| async {
        (
            [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
            PAGE,
        )
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

async fn run_chromium(profile: &Path, args: &[String]) -> anyhow::Result<String> {
    let mut cmd = tokio::process::Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .context("Chromium did not finish within 60 s")?
        .context("running Chromium")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_loads_a_proxied_page_over_h2_trusting_the_key_hash() -> anyhow::Result<()> {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("skipped: {CHROMIUM} is missing (scripts/ensure-deps test installs it)");
        return Ok(());
    }
    let ca = TestCa::new()?;
    let leaf = ca.leaf(&["box.test"], false)?;
    let upstream = page_upstream().await?;
    let (proxy, https) = start_https(
        Proxy::builder()
            .route_file("routes.yml", catch_all_routes(&upstream))
            .route_file("tls.yml", tls_yaml(&["box"], None)),
    )
    .await?;
    leaf.write(&proxy.routes_dir, "box")?;
    let before = proxy.reload_count().await?;
    proxy.sighup()?;
    let after = proxy.next_reload(before, Duration::from_secs(10)).await?;
    ensure!(after.success > before.success, "certificate not loaded");

    let spki =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&leaf.spki_der));
    let profile = tempfile::tempdir()?;
    let url = format!("https://box.test:{}/", https.port());
    let common = vec![
        format!("--host-resolver-rules=MAP box.test 127.0.0.1"),
        "--virtual-time-budget=5000".to_string(),
        "--dump-dom".to_string(),
    ];

    // Without the pin the certificate (from an unknown CA) is refused: no page.
    let mut args = common.clone();
    args.push(url.clone());
    let dom = run_chromium(profile.path(), &args).await?;
    ensure!(
        !dom.contains("data-result"),
        "Chromium loaded the page without trusting the certificate: {dom}"
    );

    let mut args = common;
    args.push(format!("--ignore-certificate-errors-spki-list={spki}"));
    args.push(url);
    let dom = run_chromium(profile.path(), &args).await?;
    ensure!(
        dom.contains(r#"&quot;protocol&quot;:&quot;h2&quot;"#)
            || dom.contains(r#""protocol":"h2""#),
        "the page was not loaded over h2: {dom}"
    );
    ensure!(
        dom.contains("&quot;secure&quot;:true") || dom.contains(r#""secure":true"#),
        "the page is not a secure context: {dom}"
    );
    Ok(())
}
