//! Services: round robin, passHostHeader, active health checks, the 504 on upstream timeout,
//! and how long idle upstream connections are kept.

mod core_common;

use std::sync::Arc;
use std::time::Duration;

use core_common::*;
use serde_json::Value;

async fn name_of(p: &Proxy, path: &str) -> (u16, Value) {
    let resp = client().get(p.url(path)).send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn round_robin_pass_host_header_and_base_path() {
    let a = echo_upstream("a").await;
    let b = echo_upstream("b").await;
    let routes = format!(
        "http:
  routers:
    lb:
      rule: PathPrefix(`/lb`)
      service: two
    fixed-host:
      rule: PathPrefix(`/fixed`)
      service: fixed
  services:
    two:
      loadBalancer:
        servers:
        - url: http://127.0.0.1:{a}
        - url: http://127.0.0.1:{b}
    fixed:
      loadBalancer:
        passHostHeader: false
        servers:
        - url: http://127.0.0.1:{a}/base/
"
    );
    let p = start_proxy(&[("r.yml", routes)], "").await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (status, body) = name_of(&p, "/lb/x").await;
        // A failed answer shows its status and body in the assertion message below.
        seen.push(
            body["name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{status}: {body}")),
        );
    }
    assert_eq!(seen.iter().filter(|n| *n == "a").count(), 2, "{seen:?}");
    assert_eq!(seen.iter().filter(|n| *n == "b").count(), 2, "{seen:?}");

    let (_, body) = name_of(&p, "/fixed/y?z=1").await;
    assert_eq!(body["headers"]["host"], format!("127.0.0.1:{a}"));
    assert_eq!(body["path"], "/base/fixed/y?z=1");
}

#[tokio::test]
async fn health_check_takes_failing_servers_out_of_rotation() {
    let good = echo_upstream("good").await;
    // Answers requests but fails its health endpoint.
    let sick = http_upstream(Arc::new(|req: &SeenRequest| {
        if req.path == "/health" {
            response("503 Service Unavailable", "", "sick")
        } else {
            response(
                "200 OK",
                "Content-Type: application/json\r\n",
                "{\"name\":\"sick\"}",
            )
        }
    }))
    .await;
    let routes = format!(
        "http:
  routers:
    app:
      rule: PathPrefix(`/`)
      service: app
  services:
    app:
      loadBalancer:
        healthCheck: {{ path: /health, interval: 200ms, timeout: 1s }}
        servers:
        - url: http://127.0.0.1:{good}
        - url: http://127.0.0.1:{sick}
"
    );
    let p = start_proxy(&[("r.yml", routes)], "").await;
    let only_good = eventually(Duration::from_secs(10), || async {
        let mut all_good = true;
        for _ in 0..4 {
            let (_, body) = name_of(&p, "/x").await;
            all_good &= body["name"] == "good";
        }
        all_good
    })
    .await;
    assert!(only_good, "the sick server must be skipped");
    let services = client()
        .get(p.admin_url("/api/http/services"))
        .send()
        .await
        .expect("api")
        .text()
        .await
        .expect("text");
    assert!(services.contains("\"DOWN\""), "{services}");
}

#[tokio::test]
async fn upstream_timeout_is_504_naming_the_router() {
    // Accepts and reads, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let routes = format!(
        "http:\n  routers:\n    slow-app:\n      rule: PathPrefix(`/slow`)\n      service: slow\n  services:\n    slow:\n      loadBalancer:\n        servers:\n        - url: http://127.0.0.1:{port}\n"
    );
    let p = start_proxy(
        &[("r.yml", routes)],
        "serversTransport:\n  forwardingTimeouts:\n    responseHeaderTimeout: 1s\n",
    )
    .await;
    let started = std::time::Instant::now();
    let resp = client()
        .get(p.url("/slow/x"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(resp.text().await.expect("body").contains("slow-app"));
}

/// An upstream that answers `ok` to every request on a kept-alive connection. It reports each
/// connection it accepts (`true`) and each one the proxy closes (`false`).
async fn keepalive_upstream() -> (u16, tokio::sync::mpsc::UnboundedReceiver<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            let _ = tx.send(true);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if sock.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
                let _ = tx.send(false);
            });
        }
    });
    (port, rx)
}

fn keepalive_routes(port: u16) -> String {
    format!(
        "http:\n  routers:\n    app:\n      rule: PathPrefix(`/app`)\n      service: app\n  services:\n    app:\n      loadBalancer:\n        servers:\n        - url: http://127.0.0.1:{port}\n"
    )
}

#[tokio::test]
async fn idle_conn_timeout_closes_pooled_upstream_connections() {
    let (port, mut events) = keepalive_upstream().await;
    let p = start_proxy(
        &[("r.yml", keepalive_routes(port))],
        "serversTransport:\n  forwardingTimeouts:\n    idleConnTimeout: 1s\n",
    )
    .await;
    let resp = client().get(p.url("/app/x")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body"), "ok");
    assert_eq!(events.recv().await, Some(true), "one upstream connection");
    let idle_since = std::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    assert_eq!(
        closed.ok().flatten(),
        Some(false),
        "the idle pooled connection must be closed by the proxy after idleConnTimeout (1s)"
    );
    assert!(
        idle_since.elapsed() >= Duration::from_millis(800),
        "closed after {:?}, before the timeout",
        idle_since.elapsed()
    );
}

#[tokio::test]
async fn by_default_pooled_upstream_connections_stay_open_and_are_reused() {
    let (port, mut events) = keepalive_upstream().await;
    let p = start_proxy(&[("r.yml", keepalive_routes(port))], "").await;
    let resp = client().get(p.url("/app/x")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(events.recv().await, Some(true), "one upstream connection");
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A fresh client, so only the proxy's upstream pool can carry the reuse.
    let resp = client().get(p.url("/app/y")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body"), "ok");
    assert!(
        events.try_recv().is_err(),
        "the idle connection was neither closed nor replaced by a new one"
    );
}

#[tokio::test]
async fn a_retry_on_the_next_server_sends_the_same_headers_once() {
    // The first server refuses connections; the request goes to the second one. The header
    // edits (forwarding headers, stripPrefix, headers middleware) are made once per request,
    // not once per attempt; the Host and base path follow the server that answers.
    let dead = closed_port();
    let live = echo_upstream("live").await;
    let routes = format!(
        "http:
  routers:
    app:
      rule: PathPrefix(`/app`)
      service: two
      middlewares: [strip, hdrs]
  middlewares:
    strip:
      stripPrefix:
        prefixes: [/app]
    hdrs:
      headers:
        customRequestHeaders:
          X-Forwarded-Proto: https
          X-Extra: one
  services:
    two:
      loadBalancer:
        passHostHeader: false
        servers:
        - url: http://127.0.0.1:{dead}/dead/
        - url: http://127.0.0.1:{live}/live/
"
    );
    let p = start_proxy(&[("r.yml", routes)], "").await;
    for _ in 0..2 {
        let (status, body) = name_of(&p, "/app/x?q=1").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["name"], "live");
        assert_eq!(body["path"], "/live/x?q=1");
        let h = &body["headers"];
        assert_eq!(h["host"], format!("127.0.0.1:{live}"));
        assert_eq!(h["x-forwarded-prefix"], "/app");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-extra"], "one");
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
        assert_eq!(h["x-forwarded-host"], format!("127.0.0.1:{}", p.web));
    }
}

#[tokio::test]
async fn access_log_reports_the_client_user_agent_not_the_edited_one() {
    // The header edits are made on the client's request; the log still says what the client
    // sent, while the upstream gets the middleware's value.
    let app = echo_upstream("app").await;
    let log_dir = tempfile::tempdir().expect("tempdir");
    let log_path = log_dir.path().join("access.log");
    let routes = format!(
        "http:\n  routers:\n    app:\n      rule: PathPrefix(`/app`)\n      service: app\n      middlewares: [ua]\n  middlewares:\n    ua:\n      headers:\n        customRequestHeaders:\n          User-Agent: edited-by-middleware\n  services:\n    app:\n      loadBalancer:\n        servers:\n        - url: http://127.0.0.1:{app}\n"
    );
    let p = start_proxy(
        &[("r.yml", routes)],
        &format!(
            "accessLog: {{ filePath: \"{}\", format: json }}\n",
            log_path.display()
        ),
    )
    .await;
    let resp = client()
        .get(p.url("/app/x"))
        .header("User-Agent", "client-agent/1")
        .header("Referer", "http://bloud.local/home")
        .send()
        .await
        .expect("request");
    let body: Value = serde_json::from_str(&resp.text().await.expect("body")).expect("json");
    assert_eq!(body["headers"]["user-agent"], "edited-by-middleware");
    let logged = eventually(Duration::from_secs(5), || async {
        std::fs::read_to_string(&log_path)
            .map(|t| t.contains("/app/x"))
            .unwrap_or(false)
    })
    .await;
    assert!(logged, "no access log line for /app/x");
    let text = std::fs::read_to_string(&log_path).expect("log");
    let line: Value = serde_json::from_str(
        text.lines()
            .find(|l| l.contains("/app/x"))
            .expect("line for /app/x"),
    )
    .expect("json line");
    assert_eq!(line["request_User-Agent"], "client-agent/1", "{line}");
    assert_eq!(line["request_Referer"], "http://bloud.local/home", "{line}");
}
