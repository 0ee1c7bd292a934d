//! HTTPS behind the real bloud-proxy: a LAN client cannot claim HTTPS with its own
//! `X-Forwarded-Proto` (no `Secure` cookie, no redirect switch), and the agent's
//! `https-redirect.yml` makes the proxy's plain-HTTP entry point redirect to the HTTPS port
//! while the CA download stays on HTTP.
//!
//! Needs the proxy binary: `BLOUD_PROXY_BIN`, or `bloud-proxy` in the same target directory as
//! this test (the test command builds all binaries first). Without it the test says so and
//! passes, so `cargo test -p bloud-agent` alone still works.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bloud_agent::tls;
use common::*;

fn proxy_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BLOUD_PROXY_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("bloud-proxy");
    candidate.is_file().then_some(candidate)
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
async fn until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn start_proxy(bin: &Path, dir: &Path, routes: &Path, web: u16) -> Proxy {
    let static_file = dir.join("proxy.yml");
    std::fs::write(
        &static_file,
        format!(
            "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\", forwardedHeaders: {{ trustedIPs: [] }} }}\n\
             providers:\n  file: {{ directory: {:?}, watch: false }}\n\
             pidFile: {:?}\n",
            routes.display().to_string(),
            dir.join("proxy.pid").display().to_string(),
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("--config")
        .arg(&static_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proxy(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lan_client_cannot_fake_https_and_the_redirect_works_in_the_proxy() {
    let Some(bin) = proxy_binary() else {
        eprintln!("bloud-proxy binary not built: skipping the HTTPS tests through the proxy");
        return;
    };
    let dirs = Dirs::new();
    write_catalog(&dirs.path("apps"), &[]);
    std::fs::create_dir_all(dirs.path("web")).unwrap();
    std::fs::write(dirs.path("web/index.html"), "<html>shell</html>").unwrap();
    let mut cfg = config(&dirs, &["true"], Duration::from_millis(50));
    cfg.tls.enabled = true;
    cfg.tls.addresses = Some(Vec::new());
    cfg.tls.https_port = 8443;
    let running = bloud_agent::server::start(cfg.clone()).await.unwrap();
    let agent = base_of(&running);

    // The proxy reads its own copy of the routes: the base routes and, later, the agent's
    // redirect file (this proxy build may not know `tls.yml`).
    let proxy_routes = dirs.path("proxy-routes");
    std::fs::create_dir_all(&proxy_routes).unwrap();
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/routes/base.yml"),
    )
    .unwrap()
    .replace("http://127.0.0.1:3000", &format!("http://{}", running.addr));
    std::fs::write(proxy_routes.join("base.yml"), base).unwrap();
    let web = free_port();
    let proxy = start_proxy(&bin, &dirs.path(""), &proxy_routes, web);
    let url = |p: &str| format!("http://127.0.0.1:{web}{p}");
    let c = no_redirects();
    until(
        "the proxy to forward to the agent",
        Duration::from_secs(30),
        || async { matches!(c.get(url("/api/health")).send().await, Ok(r) if r.status() == 200) },
    )
    .await;

    // A LAN client over plain HTTP says it came over HTTPS: the proxy replaces the header.
    let creds = serde_json::json!({"username": "alice", "password": "correct horse"});
    let r = c
        .post(url("/api/setup/create-user"))
        .header("x-forwarded-proto", "https")
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("bloud_session="))
        .unwrap()
        .to_string();
    assert!(!cookie.contains("Secure"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let status: serde_json::Value = c
        .get(url("/api/tls/status"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["https"], false);
    // Nor can it turn on the redirect from plain HTTP (which would lock out every device that
    // does not trust the CA yet), even as the signed-in admin.
    let r = c
        .put(url("/api/tls/redirect"))
        .header("cookie", &session)
        .header("x-forwarded-proto", "https")
        .json(&serde_json::json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(!cfg.routes_dir.join(tls::REDIRECT_FILE).exists());

    // From the HTTPS entry point (the agent sees what the proxy sets there) it is accepted.
    let r = client()
        .put(format!("{agent}/api/tls/redirect"))
        .header("cookie", &session)
        .header("x-forwarded-proto", "https")
        .json(&serde_json::json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    std::fs::copy(
        cfg.routes_dir.join(tls::REDIRECT_FILE),
        proxy_routes.join(tls::REDIRECT_FILE),
    )
    .unwrap();
    unsafe { libc::kill(proxy.0.id() as i32, libc::SIGHUP) };
    until(
        "the proxy to load the redirect",
        Duration::from_secs(30),
        || async { matches!(c.get(url("/")).send().await, Ok(r) if r.status() == 302) },
    )
    .await;
    let r = c
        .get(url("/apps/notes/?x=1"))
        .header("host", "bloud.local")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "https://bloud.local:8443/apps/notes/?x=1"
    );
    let r = c
        .post(url("/api/auth/login"))
        .header("host", "bloud.local")
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307, "a POST keeps its method and body");
    // A new device still gets the CA over HTTP.
    let r = c.get(url("/api/tls/ca.crt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    drop(proxy);
    running.shutdown().await;
}
