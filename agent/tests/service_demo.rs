//! Demo mode end to end with the real binary: `bloud-agent install` (the CLI) makes the agent run
//! demo/rebuild.sh, which starts a demo app on the catalog port; the app turns `running` and
//! serves pages; `POST /api/apps/<n>/restart` restarts it; `bloud-agent uninstall` stops it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bloud-agent"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn install_from_the_cli_starts_a_demo_app_and_uninstall_stops_it() {
    let dirs = Dirs::new();
    let port = free_port();
    let port2 = free_port();
    write_catalog(
        &dirs.path("apps"),
        &[
            TestApp {
                name: "hello",
                port: Some(port),
                extra: "healthCheck:\n  path: /\n  interval: 1\n  timeout: 20\n",
            },
            TestApp {
                name: "world",
                port: Some(port2),
                extra: "",
            },
        ],
    );
    let _cleanup = DemoCleanup(dirs.path("data/demo"));
    let config_file = write_demo_config(&dirs, "");
    let agent = AgentProcess::start(&config_file, &[("BLOUD_DEMO_STEP_MS", "10")]).await;

    let socket = agent.socket.display().to_string();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || cli(&["install", "hello", "--socket", &socket]))
            .await
            .unwrap();
    assert!(ok, "install failed: {stdout}\n{stderr}");
    assert!(stdout.contains("installed hello"), "{stdout}");
    // The CLI printed the rebuild log while it ran.
    assert!(stderr.contains("starting podman-hello.service"), "{stderr}");

    let page = client()
        .get(format!("http://127.0.0.1:{port}/settings"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<h1>hello</h1>") && page.contains("/settings"),
        "{page}"
    );
    // Under its own prefix (an app that keeps /embed/<app>), links keep the prefix too.
    let page = client()
        .get(format!("http://127.0.0.1:{port}/embed/hello/x"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("href=\"/embed/hello/settings\""), "{page}");
    wait_for("hello running", TEST_TIMEOUT, || {
        let base = agent.base.clone();
        async move { (status_of(&base, "hello").await? == "running").then_some(()) }
    })
    .await;
    // The app's log streams over SSE: the demo app logged its start and our request.
    let mut logs = SseReader::open(&format!("{}/api/apps/hello/logs", agent.base)).await;
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains("GET /settings")) {
        let line = tokio::time::timeout(Duration::from_secs(10), logs.next())
            .await
            .expect("log lines arrive")
            .expect("the log stream stays open");
        if let Ok(line) = line {
            lines.push(line);
        }
    }
    assert!(lines[0].contains("hello: demo app listening"), "{lines:?}");
    drop(logs);
    let r = admin(&agent.base)
        .get(format!("{}/api/apps/nope/logs", agent.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Restart (the app menu's): a new demo app process on the same port, its log kept, and the
    // app health-checked back to running.
    let pid_of = || {
        std::fs::read_to_string(dirs.path("data/demo/hello.pid"))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let before = pid_of();
    let r = admin(&agent.base)
        .post(format!("{}/api/apps/hello/restart", agent.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true, "{body}");
    let after = pid_of();
    assert_ne!(before, after, "a new process");
    assert!(!std::path::Path::new(&format!("/proc/{before}")).exists());
    let page = client()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<h1>hello</h1>"), "{page}");
    let log = std::fs::read_to_string(dirs.path("data/demo/hello.log")).unwrap();
    assert_eq!(log.matches("demo app listening").count(), 2, "{log}");
    wait_for("hello running again", TEST_TIMEOUT, || {
        let base = agent.base.clone();
        async move { (status_of(&base, "hello").await? == "running").then_some(()) }
    })
    .await;
    // Again: the process the agent itself started is reaped when it ends (no zombie for the
    // restart to wait on until its 5 s SIGKILL fallback).
    let started = std::time::Instant::now();
    let r = admin(&agent.base)
        .post(format!("{}/api/apps/hello/restart", agent.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(!std::path::Path::new(&format!("/proc/{after}")).exists());
    let r = admin(&agent.base)
        .post(format!("{}/api/apps/nope/restart", agent.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let routes = std::fs::read_to_string(dirs.path("routes/apps-routes.yml")).unwrap();
    assert!(
        routes.contains(&format!("http://127.0.0.1:{port}")),
        "{routes}"
    );

    // Wiped pid files (a deleted state directory): the next rebuild finds the running demo app
    // by its command line instead of failing on a taken port.
    std::fs::remove_file(dirs.path("data/demo/hello.pid")).unwrap();
    let socket = agent.socket.display().to_string();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || cli(&["install", "world", "--socket", &socket]))
            .await
            .unwrap();
    assert!(ok, "install failed: {stdout}\n{stderr}");
    assert!(
        stderr.contains("hello: demo app already running"),
        "{stderr}"
    );
    let socket = agent.socket.display().to_string();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || cli(&["uninstall", "world", "--socket", &socket]))
            .await
            .unwrap();
    assert!(ok, "uninstall failed: {stdout}\n{stderr}");

    let socket = agent.socket.display().to_string();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || cli(&["uninstall", "hello", "--socket", &socket]))
            .await
            .unwrap();
    assert!(ok, "uninstall failed: {stdout}\n{stderr}");
    assert!(statuses(&agent.base).await.is_empty());
    wait_for(
        "the demo app to stop",
        Duration::from_secs(10),
        || async move {
            (std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
                && std::net::TcpStream::connect(("127.0.0.1", port2)).is_err())
            .then_some(())
        },
    )
    .await;

    // Unknown app: the CLI fails with the agent's message.
    let socket = agent.socket.display().to_string();
    let (ok, _, stderr) =
        tokio::task::spawn_blocking(move || cli(&["install", "nope", "--socket", &socket]))
            .await
            .unwrap();
    assert!(!ok);
    assert!(stderr.contains("unknown app: nope"), "{stderr}");
}

#[test]
fn the_demo_config_loads_and_help_explains() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo/agent.yaml");
    let c = bloud_agent::config::Config::load_with_env(Some(std::path::Path::new(file)), |_| None)
        .unwrap();
    assert!(matches!(
        c.rebuild,
        bloud_agent::config::RebuildMode::Command { .. }
    ));
    let (ok, stdout, _) = cli(&["--help"]);
    assert!(ok);
    for word in ["serve", "install", "uninstall"] {
        assert!(stdout.contains(word), "{stdout}");
    }
    let (ok, stdout, _) = cli(&["serve", "--help"]);
    assert!(ok);
    assert!(stdout.contains("BLOUD_QUEUE_BATCH_WINDOW"), "{stdout}");
    // A typo in the config is refused with the key path.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("agent.yaml");
    std::fs::write(&bad, "listen: 127.0.0.1:0\nqueue:\n  batchWindw: 1s\n").unwrap();
    let (ok, _, stderr) = cli(&["serve", "--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("queue.batchWindw: unknown key"), "{stderr}");
}
