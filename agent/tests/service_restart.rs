//! A real agent process killed with SIGKILL in the middle of an install: after a restart no app
//! is left `installing`, the rebuild is recorded as interrupted, and apps.nix does not keep the
//! half-done app; the next install works.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn sigkill_mid_install_leaves_nothing_installing() {
    let dirs = Dirs::new();
    write_catalog(
        &dirs.path("apps"),
        &[
            TestApp {
                name: "alpha",
                port: None,
                extra: "",
            },
            TestApp {
                name: "beta",
                port: None,
                extra: "",
            },
        ],
    );
    let marker = dirs.path("rebuild-started");
    // Long enough to be killed in the middle; it records that it started.
    let slow = format!("touch {}; echo compiling; exec sleep 15", marker.display());
    let config_file = dirs.path("agent.yaml");
    std::fs::write(
        &config_file,
        format!(
            "appsDir: {}\ndataDir: {}\nroutesDir: {}\nproxyPidFile: {}\nwebDir: {}\n\
             rebuild:\n  mode: command\n  command: [sh, -c, \"{}\"]\nqueue:\n  batchWindow: 100ms\n",
            dirs.path("apps").display(),
            dirs.path("data").display(),
            dirs.path("routes").display(),
            dirs.path("proxy.pid").display(),
            dirs.path("web").display(),
            slow
        ),
    )
    .unwrap();

    let mut agent = AgentProcess::start(&config_file, &[]).await;
    let r = admin(&agent.base)
        .post(format!("{}/api/apps/alpha/install?wait=false", agent.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for("the rebuild to start", TEST_TIMEOUT, || {
        let marker = marker.clone();
        async move { marker.exists().then_some(()) }
    })
    .await;
    assert_eq!(
        status_of(&agent.base, "alpha").await.as_deref(),
        Some("installing")
    );
    let nix = std::fs::read_to_string(dirs.path("data/nix/apps.nix")).unwrap();
    assert!(nix.contains("bloud.apps.alpha.enable = true;"));
    agent.kill();

    // Restart with a fast rebuild command (the environment wins over the file).
    let agent = AgentProcess::start(&config_file, &[("BLOUD_REBUILD_COMMAND", "true")]).await;
    let statuses = statuses(&agent.base).await;
    assert_eq!(statuses, vec![("alpha".to_string(), "failed".to_string())]);
    let nix = std::fs::read_to_string(dirs.path("data/nix/apps.nix")).unwrap();
    assert!(!nix.contains("alpha"), "{nix}");
    let latest: serde_json::Value = admin(&agent.base)
        .get(format!("{}/api/rebuilds/latest", agent.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(latest["status"], "interrupted");
    assert!(latest["log"].as_str().unwrap().contains("compiling"));

    // The failed app can be installed again, and other installs work.
    for app in ["alpha", "beta"] {
        let r = admin(&agent.base)
            .post(format!("{}/api/apps/{app}/install", agent.base))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{app}");
    }
    wait_for("both running", TEST_TIMEOUT, || {
        let base = agent.base.clone();
        async move {
            let s = common::statuses(&base).await;
            s.iter().all(|(_, st)| st == "running").then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn sigterm_stops_the_agent_even_with_open_streams() {
    let dirs = Dirs::new();
    let config_file = dirs.path("agent.yaml");
    std::fs::write(
        &config_file,
        format!(
            "appsDir: {}\ndataDir: {}\nroutesDir: {}\nproxyPidFile: {}\nrebuild: {{mode: command, command: [\"true\"]}}\n",
            dirs.path("apps").display(),
            dirs.path("data").display(),
            dirs.path("routes").display(),
            dirs.path("proxy.pid").display(),
        ),
    )
    .unwrap();
    let mut agent = AgentProcess::start(&config_file, &[]).await;
    let _stream = SseReader::open(&format!("{}/api/rebuilds/stream", agent.base)).await;
    let status = agent
        .terminate()
        .expect("agent exits within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}");
}
