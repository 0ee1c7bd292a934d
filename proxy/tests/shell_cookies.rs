//! The session stays with the shell: an app route in the agent's generated shape (Bloud's
//! forwardAuth, `shellCookies`, stripPrefix, embed with `cookiePath`) never hands the app the
//! `bloud_session` cookie, never lets the app set it, and gives the app its identity only through
//! the auth server's headers.

mod support;

use support::proxy::Proxy;
use support::upstream::scripted::{reply, RawUpstream};

fn client() -> reqwest::Client {
    support::client().expect("test client")
}

/// An auth server answering like the agent's `/api/auth/forward/<app>`, an app that sets
/// cookies (among them one named like the shell's session) and the route in the agent's shape.
async fn setup() -> (Proxy, RawUpstream, RawUpstream) {
    let auth = RawUpstream::start(|req| {
        let signed_in = req
            .header("cookie")
            .is_some_and(|c| c.split(';').any(|p| p.trim() == "bloud_session=good"));
        if signed_in {
            reply("200 OK")
                .header("Remote-User", "alice")
                .header("X-Bloud-User", "alice")
        } else if req.header("sec-fetch-mode") == Some("navigate") {
            let next = req.header("x-forwarded-uri").unwrap_or("/").to_string();
            reply("302 Found").header("Location", format!("/login?next={next}"))
        } else {
            reply("401 Unauthorized").body("Sign in to Bloud first.\n")
        }
    })
    .await
    .expect("auth server");
    let app = RawUpstream::start(|req| {
        let seen_cookie = req.header("cookie").unwrap_or("-").to_string();
        let seen_user = req.header("remote-user").unwrap_or("-").to_string();
        reply("200 OK")
            .header("Set-Cookie", "bloud_session=stolen; Path=/api")
            .header("Set-Cookie", "sid=1; Path=/api; HttpOnly")
            .header("Set-Cookie", "bloud_session=x; Path=/")
            .header("Set-Cookie", "theme=dark; Path=/")
            .header("X-Seen-Cookie", seen_cookie)
            .header("X-Seen-User", seen_user)
            .body("app")
    })
    .await
    .expect("app");
    let routes = format!(
        "http:
  routers:
    app-backend:
      rule: Path(`/embed/app`) || PathPrefix(`/embed/app/`)
      priority: 100
      middlewares: [app-auth, shell-cookies, app-stripprefix, app-embed]
      service: app
  middlewares:
    app-auth:
      forwardAuth:
        address: {auth_url}/api/auth/forward/app
        preserveLocationHeader: true
        authRequestHeaders: [Cookie, Accept, Sec-Fetch-Mode]
        authResponseHeaders: [Remote-User, Remote-Name, Remote-Groups, X-Bloud-User]
    shell-cookies:
      shellCookies:
        names: [bloud_session]
    app-stripprefix:
      stripPrefix:
        prefixes: [/embed/app]
    app-embed:
      embed:
        prefix: /embed/app
        cookiePath: true
  services:
    app:
      loadBalancer:
        servers:
        - url: {app_url}
",
        auth_url = auth.url(),
        app_url = app.url(),
    );
    let proxy = Proxy::builder()
        .route_file("apps-routes.yml", routes)
        .start()
        .await
        .expect("proxy");
    (proxy, auth, app)
}

#[tokio::test]
async fn the_app_never_receives_the_session_and_only_the_proxy_sets_identity() {
    let (p, auth, app) = setup().await;
    let resp = client()
        .get(p.url("/embed/app/page"))
        .header("cookie", "theme=dark; bloud_session=good; lang=en")
        .header("cookie", "other=1")
        // A LAN client pretending to be the admin.
        .header("Remote-User", "admin")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(
        h["x-seen-user"], "alice",
        "identity comes from the auth answer"
    );
    assert_eq!(
        h["x-seen-cookie"], "theme=dark; lang=en; other=1",
        "the app's own cookies are kept, the session is not"
    );
    // The auth server did see the session (it decides on it).
    assert!(auth.requests()[0]
        .header("cookie")
        .is_some_and(|c| c.contains("bloud_session=good")));
    for r in app.requests() {
        let cookies: Vec<&str> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(
            cookies.iter().all(|c| !c.contains("bloud_session")),
            "{cookies:?}"
        );
        let users: Vec<&str> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("remote-user"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            users,
            ["alice"],
            "a client-sent Remote-User never reaches the app"
        );
    }
}

#[tokio::test]
async fn a_request_with_only_the_session_reaches_the_app_without_a_cookie_header() {
    let (p, _auth, app) = setup().await;
    let resp = client()
        .get(p.url("/embed/app/"))
        .header("cookie", "bloud_session=good")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-seen-cookie"], "-");
    assert!(app.requests()[0].header("cookie").is_none());
}

#[tokio::test]
async fn the_app_cannot_set_the_session_and_its_cookies_stay_under_its_prefix() {
    let (p, _auth, _app) = setup().await;
    let resp = client()
        .get(p.url("/embed/app/page"))
        .header("cookie", "bloud_session=good")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        cookies,
        [
            "sid=1; Path=/embed/app/api; HttpOnly",
            "theme=dark; Path=/embed/app/"
        ],
        "no bloud_session, and Path=/api is not let through as is"
    );
}

#[tokio::test]
async fn without_a_session_the_app_is_not_reached() {
    let (p, _auth, app) = setup().await;
    let nav = client()
        .get(p.url("/embed/app/movies?x=1"))
        .header("sec-fetch-mode", "navigate")
        .header("cookie", "bloud_session=forged")
        .send()
        .await
        .expect("request");
    assert_eq!(nav.status(), 302);
    assert_eq!(
        nav.headers()["location"],
        "/login?next=/embed/app/movies?x=1",
        "the login redirect reaches the browser relative to the shell"
    );
    let fetch = client()
        .get(p.url("/embed/app/api/x"))
        .send()
        .await
        .expect("request");
    assert_eq!(fetch.status(), 401);
    assert_eq!(app.count(), 0);
}
