//! History and rollback (`/api/system/versions`, `/api/system/rollback`), end to end:
//! - demo mode with the real binary and demo/rebuild.sh: install A, install B, roll back to the
//!   generation with only A: B's demo app stops, its route and record are gone, A still serves;
//! - NixOS mode (`rebuild.systemProfile`) against a stand-in root helper that keeps a profile of
//!   generation links: numbers come from the profile, the helper gets exactly `--rollback <n>`,
//!   a generation Bloud did not make cannot be rolled back to, a browser session needs the
//!   password again, and a generation argument carrying shell code never reaches the helper.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = admin_with(base, Some(Duration::from_secs(120)))
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn versions(base: &str) -> Vec<Value> {
    let v: Value = admin(base)
        .get(format!("{base}/api/system/versions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["generations"].as_array().unwrap().clone()
}

fn app_names(g: &Value) -> Vec<String> {
    g["apps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn installed(base: &str) -> Vec<String> {
    let mut names: Vec<String> = statuses(base).await.into_iter().map(|(n, _)| n).collect();
    names.sort();
    names
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[tokio::test]
async fn demo_rollback_restores_the_previous_app_set_and_routes() {
    let dirs = Dirs::new();
    let (pa, pb) = (free_port(), free_port());
    write_catalog(
        &dirs.path("apps"),
        &[
            TestApp {
                name: "alpha",
                port: Some(pa),
                extra: "",
            },
            TestApp {
                name: "beta",
                port: Some(pb),
                extra: "",
            },
        ],
    );
    let _cleanup = DemoCleanup(dirs.path("data/demo"));
    let config_file = write_demo_config(&dirs, "");
    let agent = AgentProcess::start(&config_file, &[("BLOUD_DEMO_STEP_MS", "10")]).await;
    let base = agent.base.clone();
    assert!(
        versions(&base).await.is_empty(),
        "no generation before the first rebuild"
    );

    for app in ["alpha", "beta"] {
        let (s, v) = post(&base, &format!("/api/apps/{app}/install"), json!({})).await;
        assert_eq!(s, 200, "install {app}: {v}");
    }
    assert!(port_open(pa) && port_open(pb));
    let gens = versions(&base).await;
    assert_eq!(gens.len(), 2, "{gens:?}");
    assert_eq!(
        (gens[0]["number"].as_i64(), gens[0]["current"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(app_names(&gens[0]), ["alpha", "beta"]);
    assert_eq!(app_names(&gens[1]), ["alpha"]);
    assert_eq!(gens[1]["summary"], "install alpha");

    // Already running, and unknown generations, are refused before anything is queued.
    assert_eq!(
        post(&base, "/api/system/rollback", json!({"generation": 2}))
            .await
            .0,
        409
    );
    assert_eq!(
        post(&base, "/api/system/rollback", json!({"generation": 7}))
            .await
            .0,
        404
    );

    let (s, v) = post(&base, "/api/system/rollback", json!({"generation": 1})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["unconfigured"], json!(["beta"]), "{v}");

    // B is gone: record, route, process. A stays and still serves.
    assert_eq!(installed(&base).await, ["alpha"]);
    let routes = std::fs::read_to_string(dirs.path("routes/apps-routes.yml")).unwrap();
    assert!(routes.contains(&format!("127.0.0.1:{pa}")), "{routes}");
    assert!(
        !routes.contains(&format!("127.0.0.1:{pb}")) && !routes.contains("beta"),
        "{routes}"
    );
    wait_for(
        "beta's demo app to stop",
        Duration::from_secs(10),
        || async move { (!port_open(pb)).then_some(()) },
    )
    .await;
    assert!(port_open(pa));
    let log = admin(&base)
        .get(format!("{base}/api/rebuilds/latest"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(log["summary"], "rollback to generation 1", "{log}");
    assert!(
        log["log"]
            .as_str()
            .unwrap()
            .contains("stopping podman-beta.service"),
        "{log}"
    );
    let gens = versions(&base).await;
    assert_eq!(
        gens.iter().find(|g| g["current"] == true).unwrap()["number"],
        1
    );
    // apps.nix follows: the next install builds on A alone, and makes generation 3.
    let state = std::fs::read_to_string(dirs.path("data/nix/apps.list")).unwrap();
    assert!(
        state.contains("alpha") && !state.contains("beta"),
        "{state}"
    );
    let (s, v) = post(&base, "/api/apps/beta/install", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let gens = versions(&base).await;
    assert_eq!(
        (gens[0]["number"].as_i64(), gens[0]["current"].as_bool()),
        (Some(3), Some(true))
    );
    assert!(port_open(pb));
}

/// The stand-in root helper: no arguments makes a new generation link and points the profile at
/// it; `--rollback N` appends its arguments to `calls` and points the profile at link N.
const HELPER: &str = r#"#!/bin/sh
set -eu
p="$PROFILE"
if [ "$#" -eq 0 ]; then
  n=$(ls "$(dirname "$p")" | sed -n 's/^system-\([0-9]*\)-link$/\1/p' | sort -n | tail -1)
  n=$((n + 1))
  ln -s /nix/store/fake "$p-$n-link"
  ln -sfn "system-$n-link" "$p"
  echo "switched to generation $n"
else
  printf '%s\n' "$@" >> "$CALLS"
  ln -sfn "system-$2-link" "$p"
  echo "rolled back to $2"
fi
"#;

#[tokio::test]
async fn nixos_generations_come_from_the_profile_and_rollback_passes_only_a_number() {
    let dirs = Dirs::new();
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
        ],
    );
    std::fs::write(dirs.path("web/index.html"), "<html>shell</html>").unwrap();
    let profiles = dirs.path("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let profile = profiles.join("system");
    // Generation 1: the system as installed, before Bloud recorded anything.
    std::os::unix::fs::symlink("/nix/store/fake", profiles.join("system-1-link")).unwrap();
    std::os::unix::fs::symlink("system-1-link", &profile).unwrap();
    let helper = dirs.path("helper.sh");
    std::fs::write(&helper, HELPER).unwrap();
    let calls = dirs.path("calls");
    std::env::set_var("PROFILE", &profile);
    std::env::set_var("CALLS", &calls);
    let mut cfg = config(
        &dirs,
        &["sh", helper.to_str().unwrap()],
        Duration::from_millis(20),
    );
    cfg.system_profile = Some(profile.clone());
    let running = bloud_agent::server::start(cfg).await.unwrap();
    let base = base_of(&running);

    for app in ["alpha", "beta"] {
        let (s, v) = post(&base, &format!("/api/apps/{app}/install"), json!({})).await;
        assert_eq!(s, 200, "install {app}: {v}");
    }
    let gens = versions(&base).await;
    let numbers: Vec<i64> = gens.iter().map(|g| g["number"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [3, 2, 1]);
    assert_eq!(gens[0]["current"], true);
    assert_eq!(app_names(&gens[0]), ["alpha", "beta"]);
    assert_eq!(app_names(&gens[1]), ["alpha"]);
    assert_eq!(
        gens[2]["apps"],
        Value::Null,
        "not made by Bloud: apps unknown"
    );

    // A generation Bloud has no record of would leave its app records wrong: refused.
    let (s, v) = post(&base, "/api/system/rollback", json!({"generation": 1})).await;
    assert_eq!(s, 409, "{v}");

    // Attacks on the one argument that reaches the root helper: nothing but a number parses.
    let pwned = dirs.path("pwned");
    for body in [
        json!({"generation": format!("2; touch {}", pwned.display())}),
        json!({"generation": format!("$(touch {})", pwned.display())}),
        json!({"generation": "2"}),
        json!({"generation": -2}),
        json!({"generation": 2.5}),
        json!({"generation": 99999999999u64}),
        json!({"generation": 2, "extra": "--help"}),
        json!({}),
    ] {
        let (s, v) = post(&base, "/api/system/rollback", body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
    }
    assert!(!pwned.exists());
    assert!(
        !calls.exists(),
        "the helper was never called for a rollback"
    );

    // From a browser session the password is needed again.
    let r = client()
        .post(format!("{base}/api/setup/create-user"))
        .header("Origin", "http://bloud.test")
        .header("Sec-Fetch-Site", "same-origin")
        .json(&json!({"username": "alice", "password": "admin-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let login = client()
        .post(format!("{base}/api/auth/login"))
        .header("X-Forwarded-For", "192.168.1.20")
        .header("Origin", "http://bloud.test")
        .header("Sec-Fetch-Site", "same-origin")
        .json(&json!({"username": "alice", "password": "admin-password"}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let r = client()
        .post(format!("{base}/api/system/rollback"))
        .header("X-Forwarded-For", "192.168.1.20")
        .header("Origin", "http://bloud.test")
        .header("Sec-Fetch-Site", "same-origin")
        .header("Cookie", &cookie)
        .json(&json!({"generation": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (&v["stepUpRequired"], &v["action"]),
        (&json!(true), &json!("system.rollback:2"))
    );
    assert!(!calls.exists());

    let (s, v) = post(&base, "/api/system/rollback", json!({"generation": 2})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(std::fs::read_to_string(&calls).unwrap(), "--rollback\n2\n");
    assert_eq!(installed(&base).await, ["alpha"]);
    let routes = std::fs::read_to_string(dirs.path("routes/apps-routes.yml")).unwrap();
    assert!(!routes.contains("beta"), "{routes}");
    let gens = versions(&base).await;
    let current: Vec<i64> = gens
        .iter()
        .filter(|g| g["current"] == true)
        .map(|g| g["number"].as_i64().unwrap())
        .collect();
    assert_eq!(current, [2], "the profile's link decides");
    running.shutdown().await;
}
