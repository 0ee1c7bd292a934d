//! Install/uninstall through the API with a command-mode rebuild: batching, per-app dedup,
//! uninstalls first, apps.nix and routes after success, rollback of apps.nix on failure, and
//! the health lifecycle.

mod common;

use std::time::Duration;

use common::*;

/// A rebuild command that records which apps each rebuild saw enabled, and fails when apps.nix
/// enables `broken`.
const SCRIPT: &str = r#"
set -eu
enabled=$(grep -o 'bloud.apps.[a-z0-9-]*.enable' "$BLOUD_APPS_NIX" | cut -d. -f3 | tr '\n' ' ')
echo "$BLOUD_REBUILD_ID: $enabled" >> "$BLOUD_DATA_DIR/../rebuilds.txt"
echo "building: $enabled"
echo "warning on stderr" >&2
case " $enabled " in *" broken "*) echo "error: broken does not build" >&2; exit 1;; esac
if [ -e "$BLOUD_DATA_DIR/../fail" ]; then echo "error: forced failure" >&2; exit 2; fi
"#;

async fn post(base: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = admin(base)
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn batch_dedup_order_routes_and_failure_rollback() {
    let dirs = Dirs::new();
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let healthy_port = up.local_addr().unwrap().port();
    // An app that answers 401 (behind its own login) counts as healthy.
    tokio::spawn(async move {
        let app = axum::Router::new()
            .fallback(|| async { (axum::http::StatusCode::UNAUTHORIZED, "login") });
        axum::serve(up, app).await.unwrap();
    });
    let dead_port = free_port();
    write_catalog(
        &dirs.path("apps"),
        &[
            TestApp {
                name: "alpha",
                port: Some(free_port()),
                extra: "",
            },
            TestApp {
                name: "beta",
                port: Some(free_port()),
                extra: "",
            },
            TestApp {
                name: "gamma",
                port: Some(free_port()),
                extra: "",
            },
            TestApp {
                name: "broken",
                port: Some(free_port()),
                extra: "",
            },
            TestApp {
                name: "web",
                port: Some(healthy_port),
                extra: "healthCheck:\n  path: /health\n  interval: 1\n  timeout: 10\n",
            },
            TestApp {
                name: "dead",
                port: Some(dead_port),
                extra: "healthCheck:\n  path: /health\n  interval: 1\n  timeout: 2\n",
            },
        ],
    );
    let running = bloud_agent::server::start(config(
        &dirs,
        &["sh", "-c", SCRIPT],
        // Long enough for four queued requests on a loaded machine to land in one batch.
        Duration::from_millis(2500),
    ))
    .await
    .unwrap();
    let base = base_of(&running);

    // 1. alpha alone.
    let (s, v) = post(&base, "/api/apps/alpha/install", serde_json::json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["appsInstalled"], serde_json::json!(["alpha"]));
    assert!(v["rebuildOutput"]
        .as_str()
        .unwrap()
        .contains("building: alpha"));

    // 2. One batch: install beta, uninstall alpha, install gamma, install beta again. With
    //    `wait=false` the agent answers 202 once the operation is in the queue, so awaiting
    //    each answer before sending the next fixes the arrival order without timing guesses.
    for (app, action) in [
        ("beta", "install"),
        ("alpha", "uninstall"),
        ("gamma", "install"),
        ("beta", "install"),
    ] {
        let (s, v) = post(
            &base,
            &format!("/api/apps/{app}/{action}?wait=false"),
            serde_json::json!({}),
        )
        .await;
        assert_eq!(s, 202, "{action} {app}: {v}");
        assert_eq!(v["queued"], true, "{v}");
    }
    // The batch is done when its three rebuilds (beta deduplicated) have finished.
    let finished = wait_for("the batch's rebuilds", TEST_TIMEOUT, || {
        let base = base.clone();
        async move {
            let v: serde_json::Value = admin(&base)
                .get(format!("{base}/api/rebuilds"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let list = v["rebuilds"].as_array()?.clone();
            (list.len() == 4 && list.iter().all(|r| r["status"] != "running")).then_some(list)
        }
    })
    .await;
    assert!(
        finished.iter().all(|r| r["status"] == "success"),
        "{finished:?}"
    );
    let log = std::fs::read_to_string(dirs.path("rebuilds.txt")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    // Three rebuilds for the batch: beta deduplicated, the uninstall first, then arrival order.
    assert_eq!(lines.len(), 4, "{log}");
    assert!(lines[1].ends_with(": "), "alpha removed first: {log}");
    assert!(lines[2].ends_with(": beta "), "{log}");
    assert!(lines[3].ends_with(": beta gamma "), "{log}");
    let rebuilds: serde_json::Value = admin(&base)
        .get(format!("{base}/api/rebuilds"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let summaries: Vec<&str> = rebuilds["rebuilds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["summary"].as_str().unwrap())
        .collect();
    assert_eq!(
        summaries,
        [
            "install gamma",
            "install beta",
            "uninstall alpha",
            "install alpha"
        ]
    );

    // Routes and apps.nix follow the installed set.
    let routes = std::fs::read_to_string(dirs.path("routes/apps-routes.yml")).unwrap();
    assert!(
        routes.contains("beta-backend") && routes.contains("gamma-backend"),
        "{routes}"
    );
    assert!(!routes.contains("alpha-backend"), "{routes}");
    let apps_nix = std::fs::read_to_string(dirs.path("data/nix/apps.nix")).unwrap();
    assert!(apps_nix.contains("bloud.apps.gamma.enable = true;"));
    assert!(!apps_nix.contains("alpha"));
    wait_for("beta and gamma running", TEST_TIMEOUT, || {
        let base = base.clone();
        async move {
            let s = statuses(&base).await;
            let want = vec![
                ("beta".to_string(), "running".to_string()),
                ("gamma".to_string(), "running".to_string()),
            ];
            (s == want).then_some(())
        }
    })
    .await;

    // 3. A failing rebuild: the app is `failed`, apps.nix is back to what the machine runs,
    //    the routes are unchanged, and the log on disk has the error.
    let (s, v) = post(&base, "/api/apps/broken/install", serde_json::json!({})).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["success"], false);
    assert_eq!(v["error"], "exit status 1");
    assert_eq!(status_of(&base, "broken").await.as_deref(), Some("failed"));
    let after = std::fs::read_to_string(dirs.path("data/nix/apps.nix")).unwrap();
    assert_eq!(after, apps_nix);
    assert!(
        !std::fs::read_to_string(dirs.path("routes/apps-routes.yml"))
            .unwrap()
            .contains("broken")
    );
    let id = v["rebuildId"].as_i64().unwrap();
    let text = admin(&base)
        .get(format!("{base}/api/rebuilds/{id}/log"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("error: broken does not build"), "{text}");
    assert!(text.contains("warning on stderr"), "{text}");

    // A failed reinstall of a running app leaves it running: the machine still runs it.
    std::fs::write(dirs.path("fail"), "").unwrap();
    let (s, v) = post(&base, "/api/apps/beta/install", serde_json::json!({})).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"], "exit status 2");
    assert_eq!(status_of(&base, "beta").await.as_deref(), Some("running"));
    assert!(std::fs::read_to_string(dirs.path("routes/apps-routes.yml"))
        .unwrap()
        .contains("beta-backend"));
    std::fs::remove_file(dirs.path("fail")).unwrap();

    // 4. Health: 401 counts as up; nothing listening ends in `error` after the timeout.
    let (s, v) = post(&base, "/api/apps/web/install", serde_json::json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&base, "/api/apps/dead/install", serde_json::json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(status_of(&base, "dead").await.as_deref(), Some("starting"));
    wait_for("web running, dead error", TEST_TIMEOUT, || {
        let base = base.clone();
        async move {
            let w = status_of(&base, "web").await?;
            let d = status_of(&base, "dead").await?;
            (w == "running" && d == "error").then_some(())
        }
    })
    .await;

    // Rename shows in the installed list; clear-data of an app that is not installed deletes
    // its data directory only.
    let r = admin(&base)
        .patch(format!("{base}/api/apps/beta/rename"))
        .json(&serde_json::json!({"displayName": "My Beta"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let installed: serde_json::Value = admin(&base)
        .get(format!("{base}/api/apps/installed"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(installed
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "beta" && a["display_name"] == "My Beta"));
    std::fs::create_dir_all(dirs.path("data/alpha/config")).unwrap();
    let (s, v) = post(&base, "/api/apps/alpha/clear-data", serde_json::json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert!(!dirs.path("data/alpha").exists());
    assert!(
        dirs.path("data/nix/apps.nix").exists(),
        "the agent's own files stay"
    );

    // 5. Unknown app and bad body.
    let (s, _) = post(&base, "/api/apps/nope/install", serde_json::json!({})).await;
    assert_eq!(s, 404);
    let r = admin(&base)
        .post(format!("{base}/api/apps/beta/install"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    running.shutdown().await;
}

#[tokio::test]
async fn app_events_stream_sends_a_snapshot_then_every_change() {
    let dirs = Dirs::new();
    write_catalog(
        &dirs.path("apps"),
        &[TestApp {
            name: "alpha",
            port: None,
            extra: "",
        }],
    );
    let running = bloud_agent::server::start(config(&dirs, &["true"], Duration::from_millis(10)))
        .await
        .unwrap();
    let base = base_of(&running);
    let mut events = SseReader::open(&format!("{base}/api/apps/events")).await;
    let first = events.next_json().await.unwrap();
    assert_eq!(first, serde_json::json!([]));
    let (s, _) = post(&base, "/api/apps/alpha/install", serde_json::json!({})).await;
    assert_eq!(s, 200);
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("running") {
        let frame = tokio::time::timeout(Duration::from_secs(10), events.next_json())
            .await
            .expect("a frame per status change")
            .unwrap();
        assert_eq!(frame[0]["name"], "alpha");
        assert_eq!(frame[0]["display_name"], "alpha app");
        seen.push(frame[0]["status"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["installing", "starting", "running"]);
    running.shutdown().await;
}

#[tokio::test]
async fn install_choices_reach_the_plan_and_the_stored_integrations() {
    let dirs = Dirs::new();
    let reader = "integrations:\n  database:\n    required: true\n    compatible:\n      - app: pg1\n      - app: pg2\n";
    write_catalog(
        &dirs.path("apps"),
        &[
            TestApp {
                name: "pg1",
                port: None,
                extra: "",
            },
            TestApp {
                name: "pg2",
                port: None,
                extra: "",
            },
            TestApp {
                name: "reader",
                port: None,
                extra: reader,
            },
        ],
    );
    let running = bloud_agent::server::start(config(&dirs, &["true"], Duration::from_millis(10)))
        .await
        .unwrap();
    let base = base_of(&running);

    let plan: serde_json::Value = admin(&base)
        .get(format!("{base}/api/apps/reader/plan-install"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plan["choices"][0]["integration"], "database");
    assert_eq!(plan["choices"][0]["available"].as_array().unwrap().len(), 2);

    // Two candidates, no default: the install needs a choice, and says how to give one.
    let (s, v) = post(&base, "/api/apps/reader/install", serde_json::json!({})).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("choose one of pg1, pg2"),
        "{v}"
    );
    assert!(statuses(&base).await.is_empty());

    let (s, v) = post(
        &base,
        "/api/apps/reader/install",
        serde_json::json!({"choices": {"database": "pg2"}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["appsInstalled"], serde_json::json!(["pg2", "reader"]));
    let installed: serde_json::Value = admin(&base)
        .get(format!("{base}/api/apps/installed"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reader = installed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "reader")
        .unwrap();
    assert_eq!(reader["integration_config"]["database"], "pg2");

    // pg2 is now required by reader: removing it is blocked, by the plan and by the queue.
    let plan: serde_json::Value = admin(&base)
        .get(format!("{base}/api/apps/pg2/plan-remove"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plan["canRemove"], false, "{plan}");
    let (s, v) = post(&base, "/api/apps/pg2/uninstall", serde_json::json!({})).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().starts_with("cannot remove"),
        "{v}"
    );
    running.shutdown().await;
}
