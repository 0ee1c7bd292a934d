//! Auth over real HTTP against an in-process agent on 127.0.0.1:0: the loopback rule, the
//! forwarding headers that cancel it, first-user setup under concurrency, sessions.

mod common;

use std::time::Duration;

use common::*;

async fn start() -> (Dirs, bloud_agent::server::Running, String) {
    let dirs = Dirs::new();
    write_catalog(
        &dirs.path("apps"),
        &[TestApp {
            name: "notes",
            port: None,
            extra: "",
        }],
    );
    std::fs::write(dirs.path("web/index.html"), "<html>shell index</html>").unwrap();
    std::fs::write(dirs.path("web/app.js"), "console.log('shell')").unwrap();
    let running = bloud_agent::server::start(config(&dirs, &["true"], Duration::from_millis(50)))
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    (dirs, running, base)
}

const PROTECTED: &[&str] = &[
    "/api/apps",
    "/api/apps/installed",
    "/api/apps/notes/plan-install",
    "/api/rebuilds",
];

#[tokio::test]
async fn forwarding_headers_cancel_the_loopback_trust() {
    let (_dirs, running, base) = start().await;
    let c = client();
    // Loopback peer, no forwarding header: the CLI case, allowed.
    for path in PROTECTED {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} from loopback");
    }
    // Any forwarding header means "came through a proxy": a session is needed, whatever it says.
    let spoofs = [
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Real-Ip", "127.0.0.1"),
        ("True-Client-IP", "127.0.0.1"),
        ("Forwarded", "for=127.0.0.1"),
        ("X-Forwarded-For", "192.168.1.7, 127.0.0.1"),
        // A web page driving a browser on the box itself.
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Host", "rebound.evil.example:3000"),
    ];
    for (h, v) in spoofs {
        for path in PROTECTED {
            let r = c
                .get(format!("{base}{path}"))
                .header(h, v)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{path} with {h}: {v}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "Not authenticated");
        }
        // Installing is refused too (and nothing gets queued).
        let r = c
            .post(format!("{base}/api/apps/notes/install"))
            .header(h, v)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "install with {h}");
    }
    // A forged cookie is no better.
    let r = c
        .get(format!("{base}/api/apps"))
        .header("X-Forwarded-For", "10.0.0.2")
        .header("Cookie", "bloud_session=0000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // Public endpoints stay public.
    let r = c
        .get(format!("{base}/api/health"))
        .header("X-Forwarded-For", "10.0.0.2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // /api/auth/me has no loopback shortcut: a CLI is not a user.
    let r = c.get(format!("{base}/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(running.service.db.list_apps().unwrap().is_empty());
    running.shutdown().await;
}

#[tokio::test]
async fn three_concurrent_setups_create_one_user_then_sessions_work() {
    let (_dirs, running, base) = start().await;
    let c = client();
    let status: serde_json::Value = c
        .get(format!("{base}/api/setup/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["setupRequired"], true);

    let attempts = ["alice", "bob", "carol"].map(|name| {
        let c = c.clone();
        let url = format!("{base}/api/setup/create-user");
        tokio::spawn(async move {
            let r = c
                .post(url)
                .json(&serde_json::json!({"username": name, "password": "password123"}))
                .send()
                .await
                .unwrap();
            (name, r.status().as_u16())
        })
    });
    let mut results = Vec::new();
    for a in attempts {
        results.push(a.await.unwrap());
    }
    let winners: Vec<_> = results.iter().filter(|(_, s)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(
        results.iter().filter(|(_, s)| *s == 409).count(),
        2,
        "{results:?}"
    );
    let user = winners[0].0;
    for other in ["alice", "bob", "carol"].iter().filter(|n| **n != user) {
        assert!(running.service.db.user_by_name(other).unwrap().is_none());
    }
    let status: serde_json::Value = c
        .get(format!("{base}/api/setup/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["setupRequired"], false);

    // Wrong password, unknown user: 401 and no cookie.
    for (u, p) in [(user, "wrong-password"), ("mallory", "password123")] {
        let r = c
            .post(format!("{base}/api/auth/login"))
            .json(&serde_json::json!({"username": u, "password": p}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("set-cookie").is_none());
    }
    let r = c
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": user, "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_string();
    assert!(pair.starts_with("bloud_session="));

    // Through the proxy (forwarding header) with the session: allowed, and /me names the user.
    let r = c
        .get(format!("{base}/api/apps"))
        .header("X-Forwarded-For", "192.168.1.7")
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = c
        .get(format!("{base}/api/auth/me"))
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], user);

    // The home layout belongs to the user: saved and read back with the session…
    let layout =
        serde_json::json!([{"type":"app","id":"notes","col":1,"row":1,"colspan":2,"rowspan":1}]);
    let r = c
        .put(format!("{base}/api/user/layout"))
        .header("Cookie", &pair)
        .json(&layout)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let back: serde_json::Value = c
        .get(format!("{base}/api/user/layout"))
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(back, layout);
    // …while a local CLI request passes the gate but is nobody.
    let r = c
        .get(format!("{base}/api/user/layout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .put(format!("{base}/api/user/layout"))
        .header("Cookie", &pair)
        .json(&serde_json::json!([{"type":"app","id":"x","col":0,"row":1,"colspan":1,"rowspan":1}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Logout ends the session for good.
    let r = c
        .post(format!("{base}/api/auth/logout"))
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{base}/api/apps"))
        .header("X-Forwarded-For", "192.168.1.7")
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    running.shutdown().await;
}

#[tokio::test]
async fn shell_spa_fallback_and_embed_404() {
    let (_dirs, running, base) = start().await;
    let c = client();
    let r = c.get(format!("{base}/app.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "console.log('shell')");
    // Client-side routes get the shell.
    let r = c.get(format!("{base}/apps/notes/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("shell index"));
    // An app path reaching the agent means the app has no route: 404 page, never the shell.
    for path in [
        "/embed/miniflux/",
        "/embed/miniflux/static/app.js",
        "/embed",
    ] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("App not installed"), "{path}: {body}");
        assert!(!body.contains("shell index"));
    }
    // Unknown API paths are JSON 404s, not the shell.
    let r = c.get(format!("{base}/api/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("/api/nope"));
    running.shutdown().await;
}

#[tokio::test]
async fn system_status_storage_and_stream() {
    let (_dirs, running, base) = start().await;
    let c = client();
    let v: serde_json::Value = c
        .get(format!("{base}/api/system/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for k in ["cpu", "memory", "disk"] {
        let n = v[k].as_u64().unwrap_or(999);
        assert!(n <= 100, "{k}: {v}");
    }
    assert!(v["memory"].as_u64().unwrap() > 0, "{v}");
    let s: serde_json::Value = c
        .get(format!("{base}/api/system/storage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        s["total"].as_u64().unwrap() >= s["used"].as_u64().unwrap(),
        "{s}"
    );
    let mut stream = SseReader::open(&format!("{base}/api/system/status/stream")).await;
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next_json())
        .await
        .unwrap()
        .unwrap();
    assert!(first["memory"].as_u64().is_some(), "{first}");
    // Protected like the rest of the API.
    let r = c
        .get(format!("{base}/api/system/status"))
        .header("X-Forwarded-For", "10.0.0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    running.shutdown().await;
}
