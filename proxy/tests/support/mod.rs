//! Shared harness for the black-box tests: start the real `bloud-proxy` binary with a config
//! written to a temp dir, start upstream servers on ephemeral ports, and talk to the proxy
//! over reqwest, WebSocket or raw TCP.
//!
//! - `proxy`: start the binary (`Proxy::builder()`), wait for `/ping`, signal it, read its
//!   metrics, admin API and log, wait for reloads by their count.
//! - `upstream`: the axum `Upstream` (echo, SSE, WebSocket, large files), `BrokenUpstream`,
//!   and `upstream::scripted::RawUpstream` for byte-exact answers.
//! - `raw`: a raw TCP client. `fixtures`: the route fixture sets (own and upstream Bloud's).
//!
//! Each test file includes this with `mod support;` and uses only part of it.
#![allow(dead_code)]

pub mod fixtures;
pub mod proxy;
pub mod raw;
pub mod tls;
pub mod upstream;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

/// The test's own route files (`proxy/tests/fixtures`), written for this project.
pub fn own_fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// Upstream Bloud's fixtures directory (holding `traefik/` and `upstream-apps/`) for the
/// compatibility suite: `$BLOUD_UPSTREAM_FIXTURES`, else `shared/fixtures` beside the clone.
///
/// A user's clone has no such directory, so by default its absence skips the calling test
/// with one line saying how to run it; with `BLOUD_REQUIRE_UPSTREAM_FIXTURES=1` (CI, where the
/// files are expected) a missing directory fails instead of silently testing nothing.
pub fn upstream_fixtures() -> Option<PathBuf> {
    let traefik = bloud_testkit::upstream_fixtures("traefik", "proxy compatibility suite")?;
    traefik.parent().map(PathBuf::from)
}

/// A client that never goes through an environment proxy (http_proxy would hide our proxy)
/// and never follows redirects (the tests assert on 3xx answers).
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the reqwest test client")
}

/// Polls `cond` every 50 ms until it returns true or `limit` elapses.
pub async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads a Prometheus sample: the sum of every series of `name` whose label set contains all
/// of `labels` (e.g. `result="failure"`). `None` when no such series exists.
pub fn metric_value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (label_part, value_part) = match rest.strip_prefix('{') {
            Some(after) => match after.split_once('}') {
                Some((l, v)) => (l, v),
                None => continue,
            },
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        if !labels.iter().all(|want| label_part.contains(want)) {
            continue;
        }
        let Some(value) = value_part.split_whitespace().next() else {
            continue;
        };
        if let Ok(v) = value.parse::<f64>() {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// A dynamic route file in the shape bloud-agent generates: `/embed/<app>` (segment-exact),
/// stripPrefix, then `extra_middlewares`, to `url`.
pub fn embed_app_routes(app: &str, url: &str, extra_middlewares: &[&str]) -> String {
    embed_app_routes_with(app, url, extra_middlewares, "")
}

/// `embed_app_routes` plus middleware definitions (`mw_defs`, YAML indented by 4 spaces, as
/// entries of `http.middlewares`).
pub fn embed_app_routes_with(
    app: &str,
    url: &str,
    extra_middlewares: &[&str],
    mw_defs: &str,
) -> String {
    let mut mws = format!("        - {app}-stripprefix\n");
    for m in extra_middlewares {
        mws.push_str(&format!("        - {m}\n"));
    }
    format!(
        r#"http:
  routers:
    {app}-backend:
      rule: "Path(`/embed/{app}`) || PathPrefix(`/embed/{app}/`)"
      priority: 100
      middlewares:
{mws}      service: {app}
  middlewares:
    {app}-stripprefix:
      stripPrefix:
        prefixes:
          - "/embed/{app}"
{mw_defs}  services:
    {app}:
      loadBalancer:
        servers:
          - url: "{url}"
"#
    )
}
