//! Hot reload and signals on the real binary: SIGHUP never kills, a broken file keeps the old
//! routes, an atomic write is picked up by the watcher, SIGTERM drains and exits quickly.

mod core_common;

use std::time::{Duration, Instant};

use core_common::*;

fn routes(prefix: &str, port: u16) -> String {
    format!(
        "http:\n  routers:\n    app:\n      rule: PathPrefix(`{prefix}`)\n      service: app\n  services:\n    app:\n      loadBalancer:\n        servers:\n        - url: http://127.0.0.1:{port}\n"
    )
}

async fn status(url: String) -> u16 {
    client()
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn metrics(p: &Proxy) -> String {
    client()
        .get(p.admin_url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn reload_keeps_old_table_on_errors_and_follows_atomic_writes() {
    let up = echo_upstream("app").await;
    let mut p = start_proxy(&[("apps-routes.yml", routes("/one", up))], "").await;
    assert_eq!(status(p.url("/one")).await, 200);

    // SIGHUP: reload, process stays up.
    p.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(p.alive(), "SIGHUP must not kill the proxy");
    assert_eq!(status(p.url("/one")).await, 200);

    // A broken file: the old table stays live and the failure is counted.
    std::fs::write(
        p.routes_dir().join("broken.yml"),
        "http:\n  routers:\n    x: {rule: 'PathPrefix(`/x`', service: app}\n",
    )
    .expect("write");
    let failed = eventually(Duration::from_secs(10), || async {
        metrics(&p)
            .await
            .contains("bloud_proxy_config_reloads_total{result=\"failure\"} 1")
    })
    .await;
    assert!(failed, "failure not counted: {}", metrics(&p).await);
    assert_eq!(
        status(p.url("/one")).await,
        200,
        "old routes must stay live"
    );
    let api = client()
        .get(p.admin_url("/api/reload"))
        .send()
        .await
        .expect("api")
        .text()
        .await
        .expect("text");
    assert!(api.contains("broken.yml"), "{api}");
    assert!(
        p.stderr_log().contains("broken.yml"),
        "error must name the file"
    );
    std::fs::remove_file(p.routes_dir().join("broken.yml")).expect("rm");

    // Atomic replace (write .tmp, rename): the .tmp is ignored, the rename is applied.
    let tmp = p.routes_dir().join("apps-routes.yml.tmp");
    std::fs::write(&tmp, routes("/two", up)).expect("write tmp");
    std::fs::rename(&tmp, p.routes_dir().join("apps-routes.yml")).expect("rename");
    let switched = eventually(Duration::from_secs(10), || async {
        status(p.url("/two")).await == 200 && status(p.url("/one")).await == 404
    })
    .await;
    assert!(switched, "new routes not applied");
    assert!(p.alive());
}

#[tokio::test]
async fn sigterm_drains_and_exits_fast_and_removes_pid_file() {
    let up = echo_upstream("app").await;
    let mut p = start_proxy(&[("apps-routes.yml", routes("/", up))], "").await;
    let pid_file = p.dir.path().join("proxy.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(pid.trim(), p.pid().to_string());
    let started = Instant::now();
    p.signal("TERM");
    let mut exited = false;
    while started.elapsed() < Duration::from_secs(8) {
        if !p.alive() {
            exited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(exited, "must exit within graceTimeOut (3s) + 5s");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "idle proxy should exit before the grace period ends"
    );
    assert!(!pid_file.exists(), "pid file removed on exit");
}

#[tokio::test]
async fn check_reports_file_and_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes_dir = dir.path().join("routes");
    std::fs::create_dir_all(&routes_dir).expect("mkdir");
    std::fs::write(
        routes_dir.join("bad.yml"),
        "http:\n  middlewares:\n    m:\n      basicAuth: {users: [x]}\n",
    )
    .expect("write");
    let cfg = dir.path().join("static.yml");
    std::fs::write(
        &cfg,
        format!("entryPoints:\n  web: {{ address: ':80' }}\nproviders:\n  file: {{ directory: '{}' }}\n", routes_dir.display()),
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bloud-proxy"))
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("bad.yml: http.middlewares.m: unknown field `basicAuth`"),
        "{stdout}"
    );
    assert!(stdout.contains("line 4"), "{stdout}");

    std::fs::write(routes_dir.join("bad.yml"), "# nothing\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bloud-proxy"))
        .args(["--config"])
        .arg(&cfg)
        .arg("check")
        .output()
        .expect("run check");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
