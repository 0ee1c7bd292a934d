//! Per-app OpenID Connect clients with the real binary in demo mode (docs/sso.md): installing a
//! native-OIDC app registers its client and writes its secret (0600), the demo app is started
//! with it and keeps it through an app restart; an agent restart and a re-install keep one client and the same secret, which still
//! authenticates at the token endpoint; uninstalling removes the client (the secret no longer
//! authenticates) and the file.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::{json, Value};

/// Stops the demo app left behind by a failing test.
struct DemoCleanup(u16);

impl Drop for DemoCleanup {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in entries.flatten() {
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let ours = args.contains(&b"demo-app".as_slice())
                && args.contains(&self.0.to_string().as_bytes());
            if let (true, Some(pid)) = (ours, e.file_name().to_str().and_then(|p| p.parse().ok())) {
                // SAFETY: a pid whose command line is our demo app on our port.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }
}

async fn clients(base: &str) -> Vec<Value> {
    admin(base)
        .get(format!("{base}/api/oidc/clients"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The token endpoint's verdict on `secret` for client `reader`: `invalid_grant` means the
/// client authenticated (the code is bogus), `invalid_client` that it did not.
async fn token_error(base: &str, secret: &str) -> (u16, String) {
    let r = client()
        .post(format!("{base}/api/oidc/token"))
        .basic_auth("reader", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "not-a-code"),
            ("redirect_uri", "http://bloud.local/embed/reader/cb"),
            ("code_verifier", "v".repeat(43).as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

async fn install(base: &str) {
    let r = admin(base)
        .post(format!("{base}/api/apps/reader/install"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_native_oidc_app_gets_one_client_and_keeps_its_secret() {
    let dirs = Dirs::new();
    let port = free_port();
    write_catalog(
        &dirs.path("apps"),
        &[TestApp {
            name: "reader",
            port: Some(port),
            extra: "sso:\n  strategy: native-oidc\n  callbackPath: /cb\n",
        }],
    );
    let _cleanup = DemoCleanup(port);
    let config_file = write_demo_config(&dirs, "publicUrl: http://bloud.local\n");
    let secret_file = dirs.path("data/secrets/values/oidc-reader-client-secret");
    let mut agent = AgentProcess::start(&config_file, &[("BLOUD_DEMO_STEP_MS", "10")]).await;

    install(&agent.base).await;
    let list = clients(&agent.base).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["client_id"], "reader");
    assert_eq!(list[0]["app"], "reader");
    assert_eq!(
        list[0]["redirect_uris"],
        json!(["http://bloud.local/embed/reader/cb"])
    );
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    assert_eq!(token_error(&agent.base, &secret).await.1, "invalid_grant");
    assert_eq!(
        token_error(&agent.base, &"0".repeat(64)).await,
        (401, "invalid_client".to_string())
    );
    // The demo app was started with the client: it offers the sign-in.
    let page = client()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with Bloud"), "{page}");

    // Restarting the app (the app menu) keeps the client it was started with.
    let r = admin(&agent.base)
        .post(format!("{}/api/apps/reader/restart", agent.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let page = client()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Sign in with Bloud"),
        "after a restart: {page}"
    );

    // Agent restart: same client, same secret.
    assert!(agent.terminate().is_some(), "the agent did not stop");
    let agent = AgentProcess::start(&config_file, &[("BLOUD_DEMO_STEP_MS", "10")]).await;
    assert_eq!(clients(&agent.base).await.len(), 1);
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);
    assert_eq!(token_error(&agent.base, &secret).await.1, "invalid_grant");

    // Re-install: still one client and the secret the app already has.
    install(&agent.base).await;
    assert_eq!(clients(&agent.base).await.len(), 1);
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);
    assert_eq!(token_error(&agent.base, &secret).await.1, "invalid_grant");

    let r = admin(&agent.base)
        .post(format!("{}/api/apps/reader/uninstall", agent.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(clients(&agent.base).await.is_empty());
    assert!(!secret_file.exists());
    assert_eq!(
        token_error(&agent.base, &secret).await,
        (401, "invalid_client".to_string())
    );
}
