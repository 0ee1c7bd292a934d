//! Users, roles, per-app access and step-up over real HTTP against an in-process agent. Every
//! request acts like the shell in a browser behind the proxy (forwarding header, same-origin
//! headers, session cookie), so no loopback trust is involved: what a script in an app frame
//! could send with the ambient session is exactly what these requests carry.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "admin-password";

async fn start() -> (Dirs, bloud_agent::server::Running, String) {
    let dirs = Dirs::new();
    let apps = ["notes", "photos"].map(|name| TestApp {
        name,
        port: None,
        extra: "",
    });
    write_catalog(&dirs.path("apps"), &apps);
    std::fs::write(dirs.path("web/index.html"), "<html>shell</html>").unwrap();
    let running = bloud_agent::server::start(config(&dirs, &["true"], Duration::from_millis(20)))
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    (dirs, running, base)
}

/// A signed-in browser: its session cookie on every request, like the shell (and like any
/// script running same-origin in an app frame).
#[derive(Clone)]
struct Browser {
    base: String,
    cookie: String,
}

impl Browser {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        client()
            .request(method, format!("{}{path}", self.base))
            .header("X-Forwarded-For", "192.168.1.20")
            .header("Origin", "http://bloud.test")
            .header("Sec-Fetch-Site", "same-origin")
            .header("Cookie", &self.cookie)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        step_up: Option<&str>,
    ) -> (u16, Value) {
        let mutating = method != reqwest::Method::GET;
        let mut r = self.req(method, path);
        // As the shell does: every state-changing request is JSON (the agent's CSRF rule).
        match body {
            Some(b) => r = r.json(&b),
            None if mutating => r = r.json(&json!({})),
            None => {}
        }
        if let Some(t) = step_up {
            r = r.header("X-Bloud-Step-Up", t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None, None).await
    }

    /// `POST /api/auth/step-up`: the token, or the failure.
    async fn step_up(&self, password: &str, action: &str) -> Result<String, (u16, Value)> {
        let (s, v) = self
            .call(
                reqwest::Method::POST,
                "/api/auth/step-up",
                Some(json!({"password": password, "action": action})),
                None,
            )
            .await;
        if s == 200 {
            Ok(v["token"].as_str().unwrap().to_string())
        } else {
            Err((s, v))
        }
    }
}

async fn login(base: &str, username: &str, password: &str) -> Option<Browser> {
    let r = client()
        .post(format!("{base}/api/auth/login"))
        .header("X-Forwarded-For", "192.168.1.20")
        .header("Origin", "http://bloud.test")
        .header("Sec-Fetch-Site", "same-origin")
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return None;
    }
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    Some(Browser {
        base: base.to_string(),
        cookie: cookie.split(';').next().unwrap().to_string(),
    })
}

async fn setup_admin(base: &str) -> Browser {
    let r = client()
        .post(format!("{base}/api/setup/create-user"))
        .header("Origin", "http://bloud.test")
        .header("Sec-Fetch-Site", "same-origin")
        .json(&json!({"username": "alice", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["user"]["role"], "admin", "the first user is the admin");
    login(base, "alice", ADMIN_PASSWORD).await.unwrap()
}

fn assert_step_up_required(what: &str, (status, body): &(u16, Value), action: &str) {
    assert_eq!(*status, 403, "{what}: {body}");
    assert_eq!(body["stepUpRequired"], true, "{what}: {body}");
    assert_eq!(body["action"], action, "{what}: {body}");
}

/// Adds a user through the API (with a step-up); returns their id.
async fn add_user(admin: &Browser, name: &str, role: &str, apps: &[&str]) -> String {
    let t = admin.step_up(ADMIN_PASSWORD, "users.add").await.unwrap();
    let (s, v) = admin
        .call(
            reqwest::Method::POST,
            "/api/users",
            Some(json!({"username": name, "password": "member-password", "role": role, "apps": apps})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn each_destructive_action_needs_a_fresh_single_use_password_confirmation() {
    let (dirs, running, base) = start().await;
    let admin = setup_admin(&base).await;
    let bob = add_user(&admin, "bob", "member", &[]).await;
    use reqwest::Method as M;

    // (what, method, path, body, step-up action, status when done)
    type Case = (&'static str, M, String, Option<Value>, String, u16);
    let uninstall_path = "/api/apps/notes/uninstall";
    let cases: Vec<Case> = vec![
        (
            "add a user",
            M::POST,
            "/api/users".into(),
            Some(json!({"username": "carol", "password": "carol-password"})),
            "users.add".into(),
            201,
        ),
        (
            "give access",
            M::PUT,
            format!("/api/users/{bob}/apps"),
            Some(json!({"apps": ["notes"]})),
            format!("users.apps:{bob}"),
            200,
        ),
        (
            "change a role",
            M::PUT,
            format!("/api/users/{bob}/role"),
            Some(json!({"role": "admin"})),
            format!("users.role:{bob}"),
            200,
        ),
        (
            "reset a password",
            M::PUT,
            format!("/api/users/{bob}/password"),
            Some(json!({"password": "new-password"})),
            format!("users.password:{bob}"),
            200,
        ),
        (
            "remove a user",
            M::DELETE,
            format!("/api/users/{bob}"),
            None,
            format!("users.remove:{bob}"),
            200,
        ),
        (
            "clear an app's data",
            M::POST,
            "/api/apps/photos/clear-data".into(),
            None,
            "apps.clear-data:photos".into(),
            200,
        ),
        (
            "uninstall with its data",
            M::POST,
            uninstall_path.into(),
            Some(json!({"clearData": true})),
            "apps.uninstall-data:notes".into(),
            200,
        ),
    ];

    // What the destructive actions act on: photos' data, an installed notes.
    let photos_data = dirs.path("data/photos");
    std::fs::create_dir_all(&photos_data).unwrap();
    std::fs::write(photos_data.join("album.jpg"), "pixels").unwrap();
    let (s, v) = admin
        .call(M::POST, "/api/apps/notes/install", Some(json!({})), None)
        .await;
    assert_eq!(s, 200, "installing needs no step-up: {v}");

    let other_session = login(&base, "alice", ADMIN_PASSWORD).await.unwrap();
    for (i, (what, method, path, body, action, done)) in cases.iter().enumerate() {
        // The ambient session alone: refused, and nothing happened.
        let r = admin.call(method.clone(), path, body.clone(), None).await;
        assert_step_up_required(what, &r, action);
        // A made-up token, or one confirmed for another action, or by another session: refused.
        let r = admin
            .call(method.clone(), path, body.clone(), Some("00ff"))
            .await;
        assert_step_up_required(what, &r, action);
        let wrong_action = admin
            .step_up(ADMIN_PASSWORD, "users.add-other")
            .await
            .unwrap();
        let r = admin
            .call(method.clone(), path, body.clone(), Some(&wrong_action))
            .await;
        assert_step_up_required(what, &r, action);
        let theirs = other_session.step_up(ADMIN_PASSWORD, action).await.unwrap();
        let r = admin
            .call(method.clone(), path, body.clone(), Some(&theirs))
            .await;
        assert_step_up_required(what, &r, action);
        // A wrong password gets no token (once: wrong passwords count toward the account's
        // backoff, tested on its own below).
        if i == 0 {
            let (s, v) = admin.step_up("guess-password", action).await.unwrap_err();
            assert_eq!(s, 403, "{v}");
            assert_eq!(v["error"], "Wrong password");
        }

        // Nothing happened so far.
        match *what {
            "clear an app's data" => assert!(photos_data.join("album.jpg").exists()),
            "uninstall with its data" => {
                assert!(running.service.db.get_app("notes").unwrap().is_some())
            }
            "reset a password" => {
                assert!(login(&base, "bob", "member-password").await.is_some())
            }
            "remove a user" => assert!(running.service.db.user_by_name("bob").unwrap().is_some()),
            _ => {}
        }

        // With the password confirmed: done. The same token again: refused.
        let token = admin.step_up(ADMIN_PASSWORD, action).await.unwrap();
        let r = admin
            .call(method.clone(), path, body.clone(), Some(&token))
            .await;
        assert_eq!(r.0, *done, "{what}: {}", r.1);
        let r = admin
            .call(method.clone(), path, body.clone(), Some(&token))
            .await;
        assert_step_up_required(what, &r, action);
    }
    assert!(!photos_data.join("album.jpg").exists());
    assert!(running.service.db.get_app("notes").unwrap().is_none());
    assert!(running.service.db.user_by_name("bob").unwrap().is_none());
    assert!(running.service.db.user_by_name("carol").unwrap().is_some());

    // Uninstalling but keeping the data needs no step-up.
    let (s, v) = admin
        .call(M::POST, "/api/apps/notes/install", Some(json!({})), None)
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = admin
        .call(
            M::POST,
            uninstall_path,
            Some(json!({"clearData": false})),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    running.shutdown().await;
}

#[tokio::test]
async fn a_member_uses_only_the_apps_they_were_given_and_manages_nothing() {
    let (_dirs, running, base) = start().await;
    let admin = setup_admin(&base).await;
    use reqwest::Method as M;
    for app in ["notes", "photos"] {
        let (s, v) = admin
            .call(
                M::POST,
                &format!("/api/apps/{app}/install"),
                Some(json!({})),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let bob_id = add_user(&admin, "bob", "member", &[]).await;
    let bob = login(&base, "bob", "member-password").await.unwrap();
    let (_, me) = bob.get("/api/auth/me").await;
    assert_eq!(me["role"], "member");

    // A new member sees no apps, and may open none.
    let (s, v) = bob.get("/api/apps/installed").await;
    assert_eq!((s, v.clone()), (200, json!([])), "{v}");
    let bob_user = running.service.db.user_by_id(&bob_id).unwrap().unwrap();
    assert!(!running
        .service
        .db
        .user_may_open(&bob_user, "notes")
        .unwrap());

    // Access to notes: bob sees and may open notes, not photos.
    let t = admin
        .step_up(ADMIN_PASSWORD, &format!("users.apps:{bob_id}"))
        .await
        .unwrap();
    let (s, v) = admin
        .call(
            M::PUT,
            &format!("/api/users/{bob_id}/apps"),
            Some(json!({"apps": ["notes"]})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = bob.get("/api/apps/installed").await;
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["notes"]);
    assert!(running
        .service
        .db
        .user_may_open(&bob_user, "notes")
        .unwrap());
    assert!(!running
        .service
        .db
        .user_may_open(&bob_user, "photos")
        .unwrap());
    let alice = running.service.db.user_by_name("alice").unwrap().unwrap().0;
    assert!(running.service.db.user_may_open(&alice, "photos").unwrap());
    // The live list is filtered the same way.
    let mut sse = SseReaderWithCookie::open(&bob, "/api/apps/events").await;
    let first = sse.next_json().await;
    assert_eq!(first.as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first[0]["name"], "notes");
    // The admin renames photos: bob's stream sends his list again, still without photos.
    let (s, _) = admin
        .call(
            M::PATCH,
            "/api/apps/photos/rename",
            Some(json!({"displayName": "Holiday photos"})),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let again = sse.next_json().await;
    assert_eq!(again.as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again[0]["name"], "notes");

    // Everything an admin does is 403 for bob, step-up or not; nothing changes.
    let t = bob.step_up("member-password", "users.add").await.unwrap();
    let admin_only: &[(M, &str, Option<Value>)] = &[
        (M::GET, "/api/users", None),
        (
            M::POST,
            "/api/users",
            Some(json!({"username": "eve", "password": "eve-password"})),
        ),
        (M::DELETE, &format!("/api/users/{bob_id}"), None),
        (
            M::PUT,
            &format!("/api/users/{bob_id}/role"),
            Some(json!({"role": "admin"})),
        ),
        (
            M::PUT,
            &format!("/api/users/{bob_id}/apps"),
            Some(json!({"apps": ["photos"]})),
        ),
        (
            M::PUT,
            &format!("/api/users/{bob_id}/password"),
            Some(json!({"password": "whatever-pw"})),
        ),
        (M::POST, "/api/apps/photos/install", Some(json!({}))),
        (M::POST, "/api/apps/notes/uninstall", Some(json!({}))),
        (M::POST, "/api/apps/notes/clear-data", None),
        (
            M::PATCH,
            "/api/apps/notes/rename",
            Some(json!({"displayName": "Mine"})),
        ),
        (M::POST, "/api/apps/refresh-catalog", None),
        (M::POST, "/api/apps/notes/restart", None),
        (M::GET, "/api/apps/notes/plan-install", None),
        (M::GET, "/api/rebuilds", None),
    ];
    for (method, path, body) in admin_only {
        let (s, v) = bob.call(method.clone(), path, body.clone(), Some(&t)).await;
        assert_eq!(s, 403, "{method} {path}: {v}");
    }
    assert_eq!(
        bob_user.role,
        running
            .service
            .db
            .user_by_id(&bob_id)
            .unwrap()
            .unwrap()
            .role
    );
    assert!(running.service.db.user_by_name("eve").unwrap().is_none());
    assert_eq!(running.service.db.list_apps().unwrap().len(), 2);
    assert_eq!(
        running
            .service
            .db
            .get_app("notes")
            .unwrap()
            .unwrap()
            .display_name,
        "notes app"
    );
    // What members may do: their layout, the catalog, status.
    for path in ["/api/user/layout", "/api/apps", "/api/system/status"] {
        let (s, v) = bob.get(path).await;
        assert_eq!(s, 200, "{path}: {v}");
    }

    // Made an admin, bob manages on his next request.
    let t = admin
        .step_up(ADMIN_PASSWORD, &format!("users.role:{bob_id}"))
        .await
        .unwrap();
    let (s, _) = admin
        .call(
            M::PUT,
            &format!("/api/users/{bob_id}/role"),
            Some(json!({"role": "admin"})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = bob.get("/api/users").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2);
    // His open stream follows: the next change shows him every app.
    let (s, _) = admin
        .call(
            M::PATCH,
            "/api/apps/photos/rename",
            Some(json!({"displayName": "Photos"})),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let all = sse.next_json().await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    running.shutdown().await;
}

#[tokio::test]
async fn the_last_admin_stays_and_a_password_reset_or_removal_ends_sessions() {
    let (_dirs, running, base) = start().await;
    let admin = setup_admin(&base).await;
    use reqwest::Method as M;
    let alice_id = running
        .service
        .db
        .user_by_name("alice")
        .unwrap()
        .unwrap()
        .0
        .id;

    // The only admin can be neither removed nor demoted.
    for (method, path, body, action) in [
        (
            M::DELETE,
            format!("/api/users/{alice_id}"),
            None,
            format!("users.remove:{alice_id}"),
        ),
        (
            M::PUT,
            format!("/api/users/{alice_id}/role"),
            Some(json!({"role": "member"})),
            format!("users.role:{alice_id}"),
        ),
    ] {
        let t = admin.step_up(ADMIN_PASSWORD, &action).await.unwrap();
        let (s, v) = admin.call(method, &path, body, Some(&t)).await;
        assert_eq!(s, 409, "{path}: {v}");
    }
    let (s, _) = admin.get("/api/users").await;
    assert_eq!(s, 200, "alice is still signed in and admin");

    // Bob's password is reset: his open session ends, the old password stops working.
    let bob_id = add_user(&admin, "bob", "member", &["notes"]).await;
    let bob = login(&base, "bob", "member-password").await.unwrap();
    assert_eq!(bob.get("/api/apps/installed").await.0, 200);
    let mut bob_stream = SseReaderWithCookie::open(&bob, "/api/apps/events").await;
    assert_eq!(bob_stream.next_json().await, json!([]));
    let t = admin
        .step_up(ADMIN_PASSWORD, &format!("users.password:{bob_id}"))
        .await
        .unwrap();
    let (s, v) = admin
        .call(
            M::PUT,
            &format!("/api/users/{bob_id}/password"),
            Some(json!({"password": "fresh-password"})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(bob.get("/api/apps/installed").await.0, 401);
    assert!(login(&base, "bob", "member-password").await.is_none());
    // His open stream ends at the next change instead of showing it.
    running.service.notify_apps();
    assert!(
        bob_stream.ended().await,
        "the stream of an ended session closes"
    );
    let bob = login(&base, "bob", "fresh-password").await.unwrap();
    // An admin resetting their own password stays signed in on this session.
    let t = admin
        .step_up(ADMIN_PASSWORD, &format!("users.password:{alice_id}"))
        .await
        .unwrap();
    let (s, _) = admin
        .call(
            M::PUT,
            &format!("/api/users/{alice_id}/password"),
            Some(json!({"password": "alice-new-password"})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(admin.get("/api/users").await.0, 200);

    // Removing bob ends his session too.
    let t = admin
        .step_up("alice-new-password", &format!("users.remove:{bob_id}"))
        .await
        .unwrap();
    let (s, _) = admin
        .call(M::DELETE, &format!("/api/users/{bob_id}"), None, Some(&t))
        .await;
    assert_eq!(s, 200);
    assert_eq!(bob.get("/api/apps/installed").await.0, 401);
    running.shutdown().await;
}

/// An SSE reader that sends the browser's cookie and headers.
struct SseReaderWithCookie {
    resp: reqwest::Response,
    buf: String,
}

impl SseReaderWithCookie {
    async fn open(b: &Browser, path: &str) -> SseReaderWithCookie {
        let resp = b.req(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        SseReaderWithCookie {
            resp,
            buf: String::new(),
        }
    }

    /// True when the stream closes (before any further frame).
    async fn ended(&mut self) -> bool {
        loop {
            if self.buf.contains("data:") {
                return false;
            }
            match tokio::time::timeout(TEST_TIMEOUT, self.resp.chunk())
                .await
                .expect("the stream closes or sends in time")
            {
                Ok(Some(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) | Err(_) => return true,
            }
        }
    }

    async fn next_json(&mut self) -> Value {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let data: String = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                    .collect();
                if !data.is_empty() {
                    return serde_json::from_str(&data).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(TEST_TIMEOUT, self.resp.chunk())
                .await
                .expect("SSE frame in time")
                .unwrap()
                .expect("stream open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// A script holding the session cannot guess the password through step-up: wrong passwords
/// count like failed logins, and past the limit even the right one waits (429, Retry-After).
#[tokio::test]
async fn guessing_the_step_up_password_backs_off() {
    let (_dirs, running, base) = start().await;
    let admin = setup_admin(&base).await;
    let action = "apps.clear-data:photos";
    for _ in 0..5 {
        let (s, v) = admin.step_up("guess-password", action).await.unwrap_err();
        assert_eq!(s, 403, "{v}");
    }
    let resp = admin
        .req(reqwest::Method::POST, "/api/auth/step-up")
        .json(&json!({"password": ADMIN_PASSWORD, "action": action}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    running.shutdown().await;
}
