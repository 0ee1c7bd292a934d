//! Auth over real HTTP against an in-process agent on 127.0.0.1:0: no trust by address (an app on
//! loopback is refused everywhere), the CLI's Unix socket and its peer check, cross-origin
//! refusals, first-user setup under concurrency, sessions.

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
    let base = base_of(&running);
    (dirs, running, base)
}

const PROTECTED: &[&str] = &[
    "/api/apps",
    "/api/apps/installed",
    "/api/apps/notes/plan-install",
    "/api/rebuilds",
];

/// State-changing routes that need no session: setup (only while no user exists), login, logout.
const PUBLIC_MUTATING: &[&str] = &[
    "/api/setup/create-user",
    "/api/auth/login",
    "/api/auth/logout",
    "/auth/logout",
];

/// Every (method, path) the agent's router declares with POST, PUT, PATCH or DELETE, read from
/// the `.route("…", …)` calls of the API's sources, so a route added later is covered without
/// editing this list. Path parameters become a catalog app (`notes`) or `1`.
fn mutating_routes() -> Vec<(reqwest::Method, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut found = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            // The call's arguments: up to the matching parenthesis.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap_or(rest.len());
            let args = &rest[..end];
            let Some(path) = args.split('"').nth(1) else {
                continue;
            };
            // The API is under /api and /auth; other paths (the shell, /embed 404s) change nothing.
            let api = path.starts_with("/api/") || path.starts_with("/auth/");
            if !api || path.contains('*') || PUBLIC_MUTATING.contains(&path) {
                continue;
            }
            let path = path
                .split('/')
                .map(|seg| match seg {
                    "{name}" | "{app}" => "notes",
                    s if s.starts_with('{') => "1",
                    s => s,
                })
                .collect::<Vec<_>>()
                .join("/");
            let methods = args.replace(char::is_whitespace, "");
            for (token, method) in [
                ("post(", reqwest::Method::POST),
                ("put(", reqwest::Method::PUT),
                ("patch(", reqwest::Method::PATCH),
                ("delete(", reqwest::Method::DELETE),
            ] {
                let called = methods
                    .match_indices(token)
                    .any(|(i, _)| i == 0 || !methods[..i].ends_with(char::is_alphanumeric));
                let any = methods.contains("any(");
                if called || any {
                    found.push((method, path.clone()));
                }
            }
        }
    }
    found.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
    found.dedup();
    found
}

/// An app on the box (host networking, so a loopback peer) calls every state-changing endpoint
/// without a session, as a well-formed JSON client with or without proxy-like headers: 401
/// every time, and nothing happens.
#[tokio::test]
async fn an_app_on_loopback_gets_401_from_every_mutating_endpoint() {
    let (_dirs, running, base) = start().await;
    let routes = mutating_routes();
    let paths: Vec<&str> = routes.iter().map(|(_, p)| p.as_str()).collect();
    for expected in [
        "/api/apps/notes/install",
        "/api/apps/notes/uninstall",
        "/api/apps/notes/clear-data",
        "/api/apps/notes/rename",
        "/api/apps/notes/restart",
        "/api/apps/refresh-catalog",
        "/api/user/layout",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} not found in {routes:?}"
        );
    }
    let c = client();
    let disguises: &[&[(&str, &str)]] = &[
        &[],
        &[("Host", "127.0.0.1")],
        &[("X-Forwarded-For", "127.0.0.1")],
        &[("X-Real-Ip", "127.0.0.1")],
    ];
    for (method, path) in &routes {
        for headers in disguises {
            let mut req = c
                .request(method.clone(), format!("{base}{path}"))
                .json(&serde_json::json!({"clearData": true, "displayName": "x", "choices": {}}));
            for (k, v) in *headers {
                req = req.header(*k, *v);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} {headers:?}");
            // The proxy's forward-auth check answers in plain text (the proxy hands it to
            // the browser as is); everything else is the API's JSON refusal.
            if path.starts_with("/api/auth/forward") {
                continue;
            }
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "Not authenticated", "{method} {path}");
        }
    }
    // Reading is no different.
    for path in PROTECTED {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "GET {path} from loopback");
    }
    // A forged cookie is no better, and is cleared.
    let r = c
        .get(format!("{base}/api/apps"))
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
    for path in ["/api/health", "/api/setup/status"] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = c.get(format!("{base}/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(running.service.db.list_apps().unwrap().is_empty());
    assert!(running
        .service
        .db
        .list_rebuilds(10)
        .unwrap_or_default()
        .is_empty());
    running.shutdown().await;
}

/// Runs the `bloud-agent` binary with `args`, as uid/gid 65534 with `groups` when `drop` is
/// set (the test runs as root); returns (success, stdout, stderr).
async fn cli(args: &[&str], drop: Option<&[u32]>) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bloud-agent"));
    cmd.args(args)
        .env("BLOUD_LOG", "warn")
        .env_remove("BLOUD_SOCKET")
        .stdin(std::process::Stdio::null());
    if let Some(groups) = drop {
        let groups = groups.to_vec();
        // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid) between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(65534) != 0
                    || libc::setuid(65534) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::from(cmd).output(),
    )
    .await
    .expect("the CLI finished within 60 s")
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_installs_and_uninstalls_over_the_socket() {
    let (_dirs, running, base) = start().await;
    let socket = running.socket.display().to_string();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&running.socket).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o660, "socket mode {mode:o}");
    let (ok, out, err) = cli(&["install", "notes", "--socket", &socket], None).await;
    assert!(ok, "install failed:\n{out}\n{err}");
    assert!(out.contains("installed notes"), "{out}\n{err}");
    assert_eq!(status_of(&base, "notes").await.as_deref(), Some("running"));
    let (ok, out, err) = cli(&["uninstall", "notes", "--socket", &socket], None).await;
    assert!(ok, "uninstall failed:\n{out}\n{err}");
    assert!(out.contains("uninstalled notes"), "{out}\n{err}");
    assert!(statuses(&base).await.is_empty());
    // The config file is another way to find the socket.
    let config = running.socket.with_file_name("cli.yaml");
    std::fs::write(&config, format!("socket: {socket}\n")).unwrap();
    let (ok, out, err) = cli(
        &[
            "install",
            "notes",
            "--config",
            &config.display().to_string(),
        ],
        None,
    )
    .await;
    assert!(ok, "install with --config failed:\n{out}\n{err}");
    // No agent on a path: says so and what to do.
    let (ok, _, err) = cli(
        &["install", "notes", "--socket", "/nonexistent/agent.sock"],
        None,
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("no bloud-agent listening on /nonexistent/agent.sock"),
        "{err}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn the_socket_refuses_other_users() {
    let (dirs, running, base) = start().await;
    let socket = running.socket.display().to_string();
    // Let uid 65534 reach the socket file: the directory is searchable by all.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dirs.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // The file mode (0660, owner root) stops it first: connect(2) fails.
    let (ok, out, err) = cli(&["install", "notes", "--socket", &socket], Some(&[])).await;
    assert!(!ok, "{out}\n{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains("run as root or add your user"), "{err}");

    // With the file open to all, the peer credentials refuse it.
    std::fs::set_permissions(&running.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (ok, out, err) = cli(&["install", "notes", "--socket", &socket], Some(&[])).await;
    assert!(!ok, "{out}\n{err}");
    assert!(
        err.contains("uid 65534 may not use bloud-agent's socket")
            && err.contains("add your user to group bloud-admin"),
        "{err}"
    );
    // A raw request gets 403 too, and nothing was queued.
    assert!(statuses(&base).await.is_empty());
    running.shutdown().await;
}

/// A member of the admin group (as a supplementary group) may use the socket.
#[tokio::test]
async fn admin_group_members_may_use_the_socket() {
    let dirs = Dirs::new();
    write_catalog(
        &dirs.path("apps"),
        &[TestApp {
            name: "notes",
            port: None,
            extra: "",
        }],
    );
    let mut cfg = config(&dirs, &["true"], Duration::from_millis(50));
    // `daemon` (gid 1) exists on every Debian-like and NixOS system.
    cfg.admin_group = "daemon".into();
    let running = bloud_agent::server::start(cfg).await.unwrap();
    let base = base_of(&running);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::set_permissions(dirs.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(std::fs::metadata(&running.socket).unwrap().gid(), 1);
    let socket = running.socket.display().to_string();
    let (ok, out, err) = cli(&["install", "notes", "--socket", &socket], Some(&[1])).await;
    assert!(ok, "a bloud-admin-like member was refused:\n{out}\n{err}");
    assert_eq!(status_of(&base, "notes").await.as_deref(), Some("running"));
    // Outside the group: refused by the file mode.
    let (ok, _, err) = cli(&["uninstall", "notes", "--socket", &socket], Some(&[])).await;
    assert!(!ok && err.contains("permission denied"), "{err}");
    running.shutdown().await;
}

/// A page on another site cannot log in or act with the user's cookie.
#[tokio::test]
async fn cross_origin_state_changes_are_refused() {
    let (_dirs, running, base) = start().await;
    let c = client();
    let creds = r#"{"username":"alice","password":"password123"}"#;
    let r = c
        .post(format!("{base}/api/setup/create-user"))
        .header("content-type", "text/plain")
        .body(creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(!running.service.db.has_users().unwrap());
    let r = c
        .post(format!("{base}/api/setup/create-user"))
        .json(&serde_json::json!({"username": "alice", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pair = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let host = base.trim_start_matches("http://").to_string();

    // The classic: a form-like text/plain POST with a JSON body, from another site.
    let r = c
        .post(format!("{base}/api/auth/login"))
        .header("content-type", "text/plain")
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .body(creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.headers().get("set-cookie").is_none());
    // Even as JSON (after a preflight a browser would not get): 403, no cookie.
    let r = c
        .post(format!("{base}/api/auth/login"))
        .header("origin", "http://evil.example")
        .json(&serde_json::json!({"username": "alice", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    // Install with the user's cookie from another origin: refused, nothing queued.
    for (h, v) in [
        ("origin", "http://evil.example".to_string()),
        ("sec-fetch-site", "cross-site".to_string()),
        ("sec-fetch-site", "same-site".to_string()),
    ] {
        let r = c
            .post(format!("{base}/api/apps/notes/install"))
            .header("cookie", &pair)
            .header(h, v.as_str())
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{h}: {v}");
    }
    let r = c
        .post(format!("{base}/api/apps/notes/install"))
        .header("cookie", &pair)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(running.service.db.list_apps().unwrap().is_empty());

    // The shell itself: same origin as the Host it was loaded from.
    let r = c
        .post(format!("{base}/api/auth/login"))
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .json(&serde_json::json!({"username": "alice", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_some());
    let r = c
        .post(format!("{base}/api/apps/notes/install"))
        .header("cookie", &pair)
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Through the proxy at the public address (Host is the proxy's, Origin the publicUrl).
    let r = c
        .post(format!("{base}/api/apps/notes/rename"))
        .header("cookie", &pair)
        .header("host", "bloud.test")
        .header("origin", "http://bloud.test")
        .json(&serde_json::json!({"displayName": "Notes"}))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 403);
    assert_ne!(r.status(), 415);
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
    // …and without a session there is none.
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
        .json(&serde_json::json!({}))
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
    let v: serde_json::Value = admin(&base)
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
    let s: serde_json::Value = admin(&base)
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

/// A socket left by a crashed agent is replaced; a live agent's socket, or a file that is not a
/// socket, stops the start with a message naming the setting.
#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
    let dirs = Dirs::new();
    let cfg = config(&dirs, &["true"], Duration::from_millis(50));
    // A socket file nobody listens on, as a killed agent leaves it.
    drop(std::os::unix::net::UnixListener::bind(&cfg.socket).unwrap());
    assert!(cfg.socket.exists());
    let running = bloud_agent::server::start(cfg.clone()).await.unwrap();
    let base = base_of(&running);
    assert!(statuses(&base).await.is_empty(), "the new socket answers");

    let mut second = cfg.clone();
    second.listen = "127.0.0.1:0".parse().unwrap();
    let err = match bloud_agent::server::start(second).await {
        Ok(_) => panic!("a second agent took over a live socket"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("another bloud-agent is listening"), "{err}");
    assert!(err.contains("`socket`"), "{err}");
    running.shutdown().await;
    assert!(!cfg.socket.exists(), "shutdown removes the socket");

    std::fs::write(&cfg.socket, "not a socket").unwrap();
    let err = match bloud_agent::server::start(cfg.clone()).await {
        Ok(_) => panic!("started over a regular file"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&cfg.socket).unwrap(),
        "not a socket"
    );
}
