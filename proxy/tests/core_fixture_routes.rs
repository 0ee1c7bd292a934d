//! The upstream Bloud route files, loaded by the real binary, route as they do under Traefik.

mod core_common;

use core_common::*;
use serde_json::Value;

struct Setup {
    proxy: Proxy,
}

async fn setup() -> Setup {
    let agent = echo_upstream("host-agent").await;
    let ui = echo_upstream("bloud-ui").await;
    let authentik = echo_upstream("authentik").await;
    let miniflux = echo_upstream("miniflux").await;
    let adguard = echo_upstream("adguard-home").await;
    let actual = echo_upstream("actual-budget").await;
    let ports = [
        (3000, agent),
        (5173, ui),
        (9001, authentik),
        (8085, miniflux),
        (3080, adguard),
        (5006, actual),
    ];
    let files = [
        (
            "apps-routes.yml",
            fixture("golden-multiple_apps.yml", &ports),
        ),
        ("authentik.yml", fixture("authentik.yml", &ports)),
        ("base.yml", fixture("base.yml", &ports)),
        ("miniflux-sso.yml", fixture("miniflux-sso.yml", &ports)),
    ];
    Setup {
        proxy: start_proxy(&files, "").await,
    }
}

async fn get_json(
    url: &str,
    headers: &[(&str, &str)],
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let h = resp.headers().clone();
    let text = resp.text().await.expect("body");
    (
        status,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn fixture_routes_reach_the_right_upstreams() {
    let s = setup().await;
    let p = &s.proxy;

    // /api/v3 belongs to Authentik (priority 95), the rest of /api to the host agent (90).
    let (st, _, body) = get_json(&p.url("/api/v3/core/users"), &[]).await;
    assert_eq!(st, 200);
    assert_eq!(body["name"], "authentik");
    let (_, _, body) = get_json(&p.url("/api/apps/installed"), &[]).await;
    assert_eq!(body["name"], "host-agent");
    assert_eq!(body["path"], "/api/apps/installed");
    let (_, _, body) = get_json(&p.url("/auth/login"), &[]).await;
    assert_eq!(body["name"], "host-agent");

    // Catch-all: the shell, with the cross-origin isolation headers.
    let (_, h, body) = get_json(&p.url("/apps/miniflux"), &[]).await;
    assert_eq!(body["name"], "bloud-ui");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert_eq!(h["cross-origin-embedder-policy"], "credentialless");

    // Authentik root routes carry the authentik iframe headers (XFO removed, CSP replaced).
    let (_, h, body) = get_json(&p.url("/flows/-/default/authentication/"), &[]).await;
    assert_eq!(body["name"], "authentik");
    assert!(h.get("x-frame-options").is_none());
    assert_eq!(
        h["content-security-policy"],
        "frame-ancestors 'self' http://localhost:* https://localhost:*"
    );
    assert_eq!(h["cross-origin-resource-policy"], "cross-origin");
}

#[tokio::test]
async fn embedded_app_is_stripped_and_framable() {
    let s = setup().await;
    let p = &s.proxy;
    let (st, h, body) = get_json(
        &p.url("/embed/adguard-home/control/status?x=1"),
        &[("Host", "bloud.local")],
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(body["name"], "adguard-home");
    assert_eq!(body["path"], "/control/status?x=1");
    let up = &body["headers"];
    assert_eq!(up["x-forwarded-prefix"], "/embed/adguard-home");
    // passHostHeader: the app sees the browser's Host.
    assert_eq!(up["host"], "bloud.local");
    // embed-forwarded-headers overrides X-Forwarded-Host, exactly as upstream's file says.
    assert_eq!(up["x-forwarded-host"], "localhost:8080");
    assert_eq!(up["x-forwarded-proto"], "http");
    // iframe-headers removed the restrictive headers, embed-isolation added COOP/COEP.
    assert!(h.get("x-frame-options").is_none(), "{h:?}");
    assert!(h.get("content-security-policy").is_none(), "{h:?}");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert_eq!(h["cross-origin-embedder-policy"], "credentialless");

    // The bare prefix becomes "/".
    let (_, _, body) = get_json(&p.url("/embed/miniflux"), &[]).await;
    assert_eq!(body["path"], "/");
}

#[tokio::test]
async fn miniflux_login_redirects_without_reaching_miniflux() {
    let s = setup().await;
    let resp = client()
        .get(s.proxy.url("/embed/miniflux/login"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"],
        "/embed/miniflux/oauth2/oidc/redirect"
    );
}

#[tokio::test]
async fn edge_policy_and_error_pages() {
    let s = setup().await;
    let p = &s.proxy;
    // Spoofed forwarding headers from an untrusted peer are replaced.
    let (_, _, body) = get_json(
        &p.url("/api/apps"),
        &[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Real-Ip", "6.6.6.6"),
            ("Forwarded", "for=6.6.6.6"),
            ("True-Client-IP", "6.6.6.6"),
        ],
    )
    .await;
    let up = &body["headers"];
    assert_eq!(up["x-forwarded-for"], "127.0.0.1");
    assert_eq!(up["x-real-ip"], "127.0.0.1");
    assert!(up.get("forwarded").is_none());
    assert!(up.get("true-client-ip").is_none());
    assert!(up.get("x-forwarded-server").is_some());

    // Dot-segments, raw or encoded, never reach an upstream.
    for path in [
        "/embed/miniflux/%2e%2e/%2e%2e/etc/passwd",
        "/api/../x",
        "/embed/miniflux/%2E%2E/x",
        "/embed/miniflux/./x",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n");
        assert_eq!(raw_status(p.web, &req).await, 400, "{path}");
    }

    // The ping endpoint.
    let resp = client().get(p.url("/ping")).send().await.expect("ping");
    assert_eq!(resp.text().await.expect("body"), "OK");

    // The dashboard router points at api@internal, which has no dashboard: a small 404 page.
    let resp = client()
        .get(p.url("/dashboard/"))
        .send()
        .await
        .expect("dashboard");
    assert_eq!(resp.status(), 404);
    assert!(resp
        .text()
        .await
        .expect("body")
        .contains("traefik-dashboard"));
}

#[tokio::test]
async fn refused_upstream_is_502_naming_the_router_and_missing_route_is_404() {
    let dead = closed_port();
    let routes = format!(
        "http:\n  routers:\n    dead-app:\n      rule: PathPrefix(`/embed/dead`)\n      service: dead\n  services:\n    dead:\n      loadBalancer:\n        servers:\n        - url: http://127.0.0.1:{dead}\n"
    );
    let p = start_proxy(&[("apps.yml", routes)], "").await;
    let resp = client()
        .get(p.url("/embed/dead/x"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 502);
    let body = resp.text().await.expect("body");
    assert!(body.contains("dead-app"), "{body}");
    let resp = client()
        .get(p.url("/nothing/here"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
    let metrics = client()
        .get(p.admin_url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("bloud_proxy_upstream_connect_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("{code=\"5xx\",method=\"GET\",router=\"dead-app\"} 1"),
        "{metrics}"
    );
}
