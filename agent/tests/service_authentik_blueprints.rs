//! The agent keeps Authentik's blueprint directory in step with installs and uninstalls
//! (docs/sso.md, "When Authentik is installed"): nothing while Authentik is not installed, a
//! file per SSO app and the outpost file once it is, files removed with their app, all of them
//! removed with Authentik.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

async fn post(base: &str, path: &str) -> serde_json::Value {
    let r = admin(base)
        .post(format!("{base}{path}"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
    assert_eq!(
        (s, &v["success"]),
        (200, &serde_json::json!(true)),
        "{path}: {v}"
    );
    v
}

#[tokio::test]
async fn blueprints_follow_installs_and_uninstalls() {
    let dirs = Dirs::new();
    write_catalog(
        &dirs.path("apps"),
        &[
            TestApp {
                name: "authentik",
                port: Some(free_port()),
                extra: "",
            },
            TestApp {
                name: "notes",
                port: Some(free_port()),
                extra: "sso:\n  strategy: native-oidc\n  callbackPath: /oidc/callback\n",
            },
            TestApp {
                name: "torrents",
                port: Some(free_port()),
                extra: "sso:\n  strategy: forward-auth\n",
            },
        ],
    );
    let running = bloud_agent::server::start(config(&dirs, &["true"], Duration::from_millis(50)))
        .await
        .unwrap();
    let base = base_of(&running);
    let bp = dirs.path("data").join("authentik-blueprints");
    let files = || -> BTreeSet<String> {
        std::fs::read_dir(&bp)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };

    // Without Authentik an SSO app gets no blueprint (bloud-agent is the provider).
    post(&base, "/api/apps/notes/install").await;
    assert!(files().is_empty(), "{:?}", files());

    post(&base, "/api/apps/authentik/install").await;
    assert_eq!(files(), BTreeSet::from(["notes.yaml".to_string()]));
    let secret_file = dirs.path("data").join("sso-host-secret");
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the SSO secret is the agent's alone");
    let host_secret = std::fs::read(&secret_file).unwrap();
    let notes = std::fs::read_to_string(bp.join("notes.yaml")).unwrap();
    assert!(notes.contains("client_id: \"notes-client\""), "{notes}");
    assert!(notes.contains(&format!(
        "client_secret: \"{}\"",
        bloud_agent::authentik::client_secret(&host_secret, "notes")
    )));
    assert!(
        notes.contains("url: \"http://bloud.test/embed/notes/oidc/callback\""),
        "{notes}"
    );

    post(&base, "/api/apps/torrents/install").await;
    assert_eq!(
        files(),
        BTreeSet::from([
            "notes.yaml".into(),
            "torrents.yaml".into(),
            "bloud-outpost.yaml".into()
        ])
    );
    let outpost = std::fs::read_to_string(bp.join("bloud-outpost.yaml")).unwrap();
    assert!(
        outpost.contains("[name, \"torrents app Proxy Provider\"]"),
        "{outpost}"
    );

    post(&base, "/api/apps/torrents/uninstall").await;
    assert_eq!(files(), BTreeSet::from(["notes.yaml".to_string()]));

    post(&base, "/api/apps/authentik/uninstall").await;
    assert!(files().is_empty(), "{:?}", files());
    running.shutdown().await;
}
