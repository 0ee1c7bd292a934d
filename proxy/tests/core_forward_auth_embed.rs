//! forwardAuth (Traefik semantics) and the embed middleware, wired into the proxy phases.

mod core_common;

use std::sync::Arc;

use core_common::*;

async fn setup() -> (Proxy, u16) {
    // Auth server: lets `auth=ok` cookies through with identity headers; otherwise redirects.
    let auth = http_upstream(Arc::new(|req: &SeenRequest| {
        let uri = req.header("x-forwarded-uri").unwrap_or("").to_string();
        if req.header("cookie").is_some_and(|c| c.contains("auth=ok")) {
            response(
                "200 OK",
                &format!("X-authentik-username: alice\r\nX-Auth-Seen-Uri: {uri}\r\nSet-Cookie: authentik_session=s1; Path=/\r\n"),
                "",
            )
        } else {
            response(
                "302 Found",
                "Location: /application/o/authorize/?next=1\r\nSet-Cookie: authentik_proxy_x=state; Path=/\r\n",
                "login first",
            )
        }
    }))
    .await;
    // The app: root-absolute links and redirects, and it echoes what identity it was given.
    let app = http_upstream(Arc::new(|req: &SeenRequest| {
        let user = req.header("x-authentik-username").unwrap_or("-").to_string();
        let seen = req.header("x-auth-seen-uri").unwrap_or("-").to_string();
        let extra = format!("X-Seen-User: {user}\r\nX-Seen-Uri: {seen}\r\nX-Seen-Path: {}\r\n", req.path);
        match req.path.as_str() {
            "/redir" => response("302 Found", &format!("{extra}Location: /login\r\n"), ""),
            _ => response(
                "200 OK",
                &format!("{extra}Content-Type: text/html; charset=utf-8\r\n"),
                "<html><head><title>t</title></head><body><a href=\"/login\">in</a><img src=\"/static/x.png\"></body></html>",
            ),
        }
    }))
    .await;
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
        address: http://127.0.0.1:{auth}/outpost.goauthentik.io/auth/traefik
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
        - url: http://127.0.0.1:{app}
"
    );
    (start_proxy(&[("apps-routes.yml", routes)], "").await, auth)
}

#[tokio::test]
async fn unauthenticated_requests_get_the_auth_answer_and_never_reach_the_app() {
    let (p, auth) = setup().await;
    let resp = client()
        .get(p.url("/embed/app/page"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 302);
    let h = resp.headers().clone();
    assert_eq!(
        h["location"],
        format!("http://127.0.0.1:{auth}/application/o/authorize/?next=1")
    );
    assert!(
        h.get("x-seen-path").is_none(),
        "the app must not be reached"
    );
    assert_eq!(h["set-cookie"], "authentik_proxy_x=state; Path=/");
    assert_eq!(resp.text().await.expect("body"), "login first");
}

#[tokio::test]
async fn authenticated_requests_carry_identity_and_are_rewritten() {
    let (p, _) = setup().await;
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
    let app = echo_upstream("app").await;
    let dead = closed_port();
    let routes = format!(
        "http:\n  routers:\n    r:\n      rule: PathPrefix(`/x`)\n      middlewares: [fa]\n      service: app\n  middlewares:\n    fa:\n      forwardAuth:\n        address: http://127.0.0.1:{dead}/auth\n  services:\n    app:\n      loadBalancer:\n        servers:\n        - url: http://127.0.0.1:{app}\n"
    );
    let p = start_proxy(&[("r.yml", routes)], "").await;
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
    let (p, _) = setup().await;
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
