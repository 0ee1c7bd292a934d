//! Request and response framing an attacker (a LAN client or an app) can bend:
//! - an app answering `101 Switching Protocols` to a request that asked for no upgrade gets the
//!   client a 502, never a switched connection;
//! - requests pipelined behind a kept-alive one are all answered, in order;
//! - a raw TAB or NUL (or DEL) in the request path is refused with 400, never sent upstream
//!   percent-encoded (an encoded control character in the path too);
//! - through `embed`, an empty `Location` stays empty and a `Link` target holding `<` is left
//!   alone, not turned into a broken header.

mod support;

use std::time::Duration;

use support::proxy::Proxy;
use support::raw;
use support::upstream::scripted::{reply, RawUpstream};

async fn setup() -> (RawUpstream, Proxy) {
    let app = RawUpstream::start(|req| match req.path() {
        "/switch" => reply("101 Switching Protocols")
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .no_body(),
        "/empty-location" => reply("302 Found").header("Location", ""),
        "/odd-link" => reply("200 OK")
            .header("Link", "</a<b>; rel=preload, </c.css>; rel=preload")
            .body("ok"),
        _ => reply("200 OK").body(format!("seen {}", req.target)),
    })
    .await
    .expect("upstream");
    let routes = format!(
        "http:\n  routers:\n    app:\n      rule: PathPrefix(`/embed/app`)\n      middlewares: [app-strip, app-embed]\n      service: app\n  middlewares:\n    app-strip:\n      stripPrefix:\n        prefixes: [\"/embed/app\"]\n    app-embed:\n      embed:\n        prefix: \"/embed/app\"\n  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        app.url()
    );
    let proxy = Proxy::builder()
        .route_file("r.yml", routes)
        .start()
        .await
        .expect("proxy");
    (app, proxy)
}

#[tokio::test]
async fn an_unrequested_101_is_a_502() {
    let (_app, p) = setup().await;
    let out = raw::send_default(
        p.web,
        b"GET /embed/app/switch HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("send");
    assert_eq!(out.first_status(), Some(502), "{}", out.summary());
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let (app, p) = setup().await;
    let out = raw::send(
        p.web,
        b"GET /embed/app/one HTTP/1.1\r\nHost: bloud.local\r\n\r\nGET /embed/app/two HTTP/1.1\r\nHost: bloud.local\r\n\r\nGET /embed/app/three HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
        Duration::from_secs(10),
    )
    .await
    .expect("send");
    assert_eq!(
        out.text().matches("HTTP/1.1 200 OK\r\n").count(),
        3,
        "{}",
        out.summary()
    );
    let text = out.text();
    let (one, two, three) = (
        text.find("seen /one"),
        text.find("seen /two"),
        text.find("seen /three"),
    );
    assert!(
        one < two && two < three && one.is_some(),
        "{}",
        out.summary()
    );
    assert_eq!(app.count(), 3);
}

#[tokio::test]
async fn tab_or_nul_in_the_target_is_refused() {
    let (app, p) = setup().await;
    for target in [
        &b"/embed/app/a\tb"[..],
        b"/embed/app/a\0b",
        b"/embed/app/a%09b",
        b"/embed/app/\x7f",
    ] {
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(target);
        request.extend_from_slice(b" HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n");
        let out = raw::send_default(p.web, &request).await.expect("send");
        assert_eq!(
            out.first_status(),
            Some(400),
            "{:?}: {}",
            String::from_utf8_lossy(target),
            out.summary()
        );
    }
    assert_eq!(app.count(), 0, "{:?}", app.requests());
}

#[tokio::test]
async fn embed_leaves_an_empty_location_empty_and_an_odd_link_alone() {
    let (_app, p) = setup().await;
    let out = raw::send_default(
        p.web,
        b"GET /embed/app/empty-location HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("send");
    assert_eq!(out.first_status(), Some(302), "{}", out.summary());
    let text = out.text();
    let location = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location:"));
    if let Some(l) = location {
        assert!(
            l.trim_end().eq_ignore_ascii_case("location:"),
            "{}",
            out.summary()
        );
    }

    let out = raw::send_default(
        p.web,
        b"GET /embed/app/odd-link HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("send");
    let text = out.text();
    let link = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("link:"))
        .unwrap_or_default();
    assert!(
        !link.contains("/embed/app/a<b"),
        "a target with `<` must not be rewritten: {link:?}"
    );
}
