//! Hot reload and signals on the real binary: SIGHUP never kills, a broken file keeps the old
//! routes, an atomic write is picked up by the watcher and its temp file is never loaded,
//! SIGTERM drains and exits quickly.

mod support;

use std::time::{Duration, Instant};

use support::proxy::{run_bin, run_check, Proxy};
use support::upstream::Upstream;

const RELOAD_LIMIT: Duration = Duration::from_secs(10);

fn client() -> reqwest::Client {
    support::client().expect("test client")
}

fn routes(prefix: &str, app: &Upstream) -> String {
    named_routes("app", prefix, app)
}

/// One router `name` for `prefix` and its service, also called `name`.
fn named_routes(name: &str, prefix: &str, app: &Upstream) -> String {
    format!(
        "http:\n  routers:\n    {name}:\n      rule: PathPrefix(`{prefix}`)\n      service: {name}\n  services:\n    {name}:\n      loadBalancer:\n        servers:\n        - url: {}\n",
        app.url()
    )
}

async fn start(prefix: &str, app: &Upstream) -> Proxy {
    Proxy::builder()
        .watch(true)
        .grace("3s")
        .route_file("apps-routes.yml", routes(prefix, app))
        .start()
        .await
        .expect("proxy")
}

async fn status(url: String) -> u16 {
    client()
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn reload_keeps_old_table_on_errors_and_follows_atomic_writes() {
    let up = Upstream::start("app").await.expect("upstream");
    let mut p = start("/one", &up).await;
    assert_eq!(status(p.url("/one")).await, 200);

    // SIGHUP: a reload is done and the process is still there afterwards.
    let before = p.reload_count().await.expect("metrics");
    p.sighup().expect("SIGHUP");
    let after = p
        .next_reload(before, RELOAD_LIMIT)
        .await
        .expect("SIGHUP reload");
    assert_eq!(after.success, before.success + 1, "{after:?}");
    assert!(p.is_running(), "SIGHUP must not kill the proxy");
    assert_eq!(status(p.url("/one")).await, 200);

    // A broken file: the old table stays live and the failure is counted.
    std::fs::write(
        p.routes_dir.join("broken.yml"),
        "http:\n  routers:\n    x: {rule: 'PathPrefix(`/x`', service: app}\n",
    )
    .expect("write");
    let p_ref = &p;
    let failed = support::eventually(RELOAD_LIMIT, || async move {
        p_ref.reload_count().await.is_ok_and(|c| c.failure >= 1)
    })
    .await;
    assert!(failed, "failure not counted: {:?}", p.reload_count().await);
    assert_eq!(
        status(p.url("/one")).await,
        200,
        "old routes must stay live"
    );
    let api = p.admin_json("/api/reload").await.expect("api").to_string();
    assert!(api.contains("broken.yml"), "{api}");
    assert!(p.logs().contains("broken.yml"), "error must name the file");
    std::fs::remove_file(p.routes_dir.join("broken.yml")).expect("rm");

    // Atomic replace (write .tmp, rename): the rename is applied.
    let tmp = p.routes_dir.join("apps-routes.yml.tmp");
    std::fs::write(&tmp, routes("/two", &up)).expect("write tmp");
    std::fs::rename(&tmp, p.routes_dir.join("apps-routes.yml")).expect("rename");
    let switched = support::eventually(RELOAD_LIMIT, || async {
        status(p.url("/two")).await == 200 && status(p.url("/one")).await == 404
    })
    .await;
    assert!(switched, "new routes not applied");
    assert!(p.is_running());

    // A temp file left half-written and an editor's dotfile are never loaded. The next rewrite
    // going live proves a reload read the directory with both files in it.
    let dir = &p.routes_dir;
    std::fs::write(
        dir.join("more.yml.tmp"),
        named_routes("tmp", "/from-tmp", &up),
    )
    .expect("tmp");
    std::fs::write(
        dir.join(".more.yml"),
        named_routes("dot", "/from-dotfile", &up),
    )
    .expect("dot");
    p.write_route_file("apps-routes.yml", &routes("/three", &up))
        .expect("rewrite");
    let switched = support::eventually(RELOAD_LIMIT, || async {
        status(p.url("/three")).await == 200
    })
    .await;
    assert!(
        switched,
        "the rewrite next to the ignored files was not applied"
    );
    assert_eq!(
        status(p.url("/from-tmp")).await,
        404,
        "a .tmp file was loaded"
    );
    assert_eq!(
        status(p.url("/from-dotfile")).await,
        404,
        "a dotfile was loaded"
    );
}

#[tokio::test]
async fn sigterm_drains_and_exits_fast_and_removes_pid_file() {
    let up = Upstream::start("app").await.expect("upstream");
    let mut p = start("/", &up).await;
    let pid_file = p.pid_file();
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(pid.trim(), p.pid().to_string());
    let started = Instant::now();
    p.signal(libc::SIGTERM).expect("SIGTERM");
    let exited = p.wait_exit(Duration::from_secs(8)).await.expect("wait");
    assert!(exited.is_some(), "must exit within graceTimeOut (3s) + 5s");
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
    let out = run_check(&cfg).await.expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("bad.yml: http.middlewares.m: unknown field `basicAuth`"),
        "{stdout}"
    );
    assert!(stdout.contains("line 4"), "{stdout}");

    std::fs::write(routes_dir.join("bad.yml"), "# nothing\n").expect("write");
    // The global flag may also come before the subcommand.
    let out = run_bin(&["--config".as_ref(), cfg.as_os_str(), "check".as_ref()])
        .await
        .expect("run check");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
