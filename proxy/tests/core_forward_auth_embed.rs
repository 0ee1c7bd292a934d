//! forwardAuth (Traefik semantics) and the embed middleware, wired into the proxy phases.

mod support;

use support::proxy::Proxy;
use support::upstream::scripted::{reply, RawUpstream};
use support::upstream::{refused_addr, Upstream};

fn client() -> reqwest::Client {
    support::client().expect("test client")
}

async fn setup() -> (Proxy, RawUpstream, RawUpstream) {
    // Auth server: lets `auth=ok` cookies through with identity headers; otherwise redirects.
    let auth = RawUpstream::start(|req| {
        let uri = req.header("x-forwarded-uri").unwrap_or("").to_string();
        if req.header("cookie").is_some_and(|c| c.contains("auth=ok")) {
            reply("200 OK")
                .header("X-authentik-username", "alice")
                .header("X-Auth-Seen-Uri", uri)
                .header("Set-Cookie", "authentik_session=s1; Path=/")
        } else {
            reply("302 Found")
                .header("Location", "/application/o/authorize/?next=1")
                .header("Set-Cookie", "authentik_proxy_x=state; Path=/")
                .body("login first")
        }
    })
    .await
    .expect("auth server");
    // The app: root-absolute links and redirects, and it echoes what identity it was given.
    let app = RawUpstream::start(|req| {
        let user = req.header("x-authentik-username").unwrap_or("-").to_string();
        let seen = req.header("x-auth-seen-uri").unwrap_or("-").to_string();
        let answer = match req.path() {
            "/redir" => reply("302 Found").header("Location", "/login"),
            _ => reply("200 OK")
                .header("Content-Type", "text/html; charset=utf-8")
                .body("<html><head><title>t</title></head><body><a href=\"/login\">in</a><img src=\"/static/x.png\"></body></html>"),
        };
        answer
            .header("X-Seen-User", user)
            .header("X-Seen-Uri", seen)
            .header("X-Seen-Path", req.target.clone())
    })
    .await
    .expect("app");
    let routes = format!(
        "http:
  routers:
    app-backend:
      rule: Path(`/embed/app`) || PathPrefix(`/embed/app/`)
      priority: 100
      middlewares: [app-forwardauth, app-stripprefix, app-embed]
      service: app
  middlewares:
    app-forwardauth:
      forwardAuth:
        address: {auth_url}/outpost.goauthentik.io/auth/traefik
        trustForwardHeader: true
        authResponseHeaders: [X-authentik-username, X-Auth-Seen-Uri]
        addAuthCookiesToResponse: [authentik_session]
    app-stripprefix:
      stripPrefix:
        prefixes: [/embed/app]
    app-embed:
      embed:
        prefix: /embed/app
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
async fn unauthenticated_requests_get_the_auth_answer_and_never_reach_the_app() {
    let (p, auth, app) = setup().await;
    let resp = client()
        .get(p.url("/embed/app/page"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 302);
    let h = resp.headers().clone();
    assert_eq!(
        h["location"],
        format!("{}/application/o/authorize/?next=1", auth.url())
    );
    assert!(
        h.get("x-seen-path").is_none(),
        "the app must not be reached"
    );
    assert_eq!(app.count(), 0, "the app must not be reached");
    assert_eq!(h["set-cookie"], "authentik_proxy_x=state; Path=/");
    assert_eq!(resp.text().await.expect("body"), "login first");
}

#[tokio::test]
async fn authenticated_requests_carry_identity_and_are_rewritten() {
    let (p, _auth, _app) = setup().await;
    let resp = client()
        .get(p.url("/embed/app/page?q=1"))
        .header("cookie", "auth=ok")
        .header("X-authentik-username", "mallory")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(
        h["x-seen-user"], "alice",
        "identity comes from the auth server, not the client"
    );
    assert_eq!(
        h["x-seen-uri"], "/embed/app/page?q=1",
        "auth sees the original URI (before stripPrefix)"
    );
    assert_eq!(h["x-seen-path"], "/page?q=1");
    assert!(h
        .get_all("set-cookie")
        .iter()
        .any(|v| v == "authentik_session=s1; Path=/"));
    let body = resp.text().await.expect("body");
    assert!(body.contains("href=\"/embed/app/login\""), "{body}");
    assert!(body.contains("src=\"/embed/app/static/x.png\""), "{body}");

    let resp = client()
        .get(p.url("/embed/app/redir"))
        .header("cookie", "auth=ok")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/embed/app/login");
}

#[tokio::test]
async fn auth_server_down_fails_closed() {
    let app = Upstream::start("app").await.expect("app");
    let dead = refused_addr().expect("refused addr").port();
    let routes = format!(
        "http:\n  routers:\n    r:\n      rule: PathPrefix(`/x`)\n      middlewares: [fa]\n      service: app\n  middlewares:\n    fa:\n      forwardAuth:\n        address: http://127.0.0.1:{dead}/auth\n  services:\n    app:\n      loadBalancer:\n        servers:\n        - url: {}\n",
        app.url()
    );
    let p = Proxy::builder()
        .route_file("r.yml", routes)
        .start()
        .await
        .expect("proxy");
    let resp = client().get(p.url("/x")).send().await.expect("request");
    assert_eq!(resp.status(), 500);
    assert!(resp
        .text()
        .await
        .expect("body")
        .contains("authentication server"));
}

#[tokio::test]
async fn root_service_worker_from_embedded_page_is_refused() {
    let (p, _auth, _app) = setup().await;
    let resp = client()
        .get(p.url("/sw.js"))
        .header("referer", p.url("/embed/app/page"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
    let body = resp.text().await.expect("body");
    assert!(
        body.contains("Service workers of embedded apps are disabled"),
        "{body}"
    );
}
