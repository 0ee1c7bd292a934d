//! Services: round robin, passHostHeader, active health checks, the 504 on upstream timeout,
//! and how long idle upstream connections are kept.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::proxy::Proxy;
use support::upstream::scripted::{reply, RawUpstream};
use support::upstream::{echo_header, refused_addr, Breakage, BrokenUpstream, Upstream};

fn client() -> reqwest::Client {
    support::client().expect("test client")
}

/// The proxy with `routes`; `static_yaml` adds top-level keys to its static config.
async fn start(routes: String, static_yaml: Option<&str>) -> Proxy {
    let mut builder = Proxy::builder().route_file("r.yml", routes);
    if let Some(yaml) = static_yaml {
        builder = builder.static_yaml(yaml);
    }
    builder.start().await.expect("proxy")
}

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
    let a = Upstream::start("a").await.expect("upstream a");
    let b = Upstream::start("b").await.expect("upstream b");
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
        - url: {a_url}
        - url: {b_url}
    fixed:
      loadBalancer:
        passHostHeader: false
        servers:
        - url: {a_url}/base/
",
        a_url = a.url(),
        b_url = b.url(),
    );
    let p = start(routes, None).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (status, body) = name_of(&p, "/lb/x").await;
        // A failed answer shows its status and body in the assertion message below.
        seen.push(
            body["server"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{status}: {body}")),
        );
    }
    assert_eq!(seen.iter().filter(|n| *n == "a").count(), 2, "{seen:?}");
    assert_eq!(seen.iter().filter(|n| *n == "b").count(), 2, "{seen:?}");

    let (_, body) = name_of(&p, "/fixed/y?z=1").await;
    assert_eq!(echo_header(&body, "host"), [a.addr.to_string()]);
    assert_eq!(body["path"], "/base/fixed/y");
    assert_eq!(body["query"], "z=1");
}

#[tokio::test]
async fn health_check_takes_failing_servers_out_of_rotation() {
    let good = Upstream::start("good").await.expect("good upstream");
    // Answers requests but fails its health endpoint.
    let sick = RawUpstream::start(|req| {
        if req.path() == "/health" {
            reply("503 Service Unavailable").body("sick")
        } else {
            reply("200 OK")
                .header("Content-Type", "application/json")
                .body("{\"server\":\"sick\"}")
        }
    })
    .await
    .expect("sick upstream");
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
        - url: {}
        - url: {}
",
        good.url(),
        sick.url()
    );
    let p = start(routes, None).await;
    let only_good = support::eventually(Duration::from_secs(10), || async {
        let mut all_good = true;
        for _ in 0..4 {
            let (_, body) = name_of(&p, "/x").await;
            all_good &= body["server"] == "good";
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
    let silent = BrokenUpstream::start(Breakage::NeverAnswer)
        .await
        .expect("silent upstream");
    let routes = format!(
        "http:\n  routers:\n    slow-app:\n      rule: PathPrefix(`/slow`)\n      service: slow\n  services:\n    slow:\n      loadBalancer:\n        servers:\n        - url: {}\n",
        silent.url()
    );
    let p = start(
        routes,
        Some("serversTransport:\n  forwardingTimeouts:\n    responseHeaderTimeout: 1s\n"),
    )
    .await;
    let started = Instant::now();
    let resp = client()
        .get(p.url("/slow/x"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(resp.text().await.expect("body").contains("slow-app"));
}

/// An upstream that answers `ok` on kept-alive connections; it records which connection
/// carried each request and when the proxy closed one.
async fn keepalive_upstream() -> RawUpstream {
    RawUpstream::start(|_| reply("200 OK").body("ok"))
        .await
        .expect("keep-alive upstream")
}

fn keepalive_routes(app: &RawUpstream) -> String {
    format!(
        "http:\n  routers:\n    app:\n      rule: PathPrefix(`/app`)\n      service: app\n  services:\n    app:\n      loadBalancer:\n        servers:\n        - url: {}\n",
        app.url()
    )
}

#[tokio::test]
async fn idle_conn_timeout_closes_pooled_upstream_connections() {
    let app = keepalive_upstream().await;
    let p = start(
        keepalive_routes(&app),
        Some("serversTransport:\n  forwardingTimeouts:\n    idleConnTimeout: 1s\n"),
    )
    .await;
    let resp = client().get(p.url("/app/x")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body"), "ok");
    assert_eq!(app.connections(), 1, "one upstream connection");
    let idle_since = Instant::now();
    let a = &app;
    let closed = support::eventually(Duration::from_secs(5), move || async move {
        !a.closed_at().is_empty()
    })
    .await;
    assert!(
        closed,
        "the idle pooled connection must be closed by the proxy after idleConnTimeout (1s)"
    );
    let after = app.closed_at()[0].saturating_duration_since(idle_since);
    assert!(
        after >= Duration::from_millis(800),
        "closed after {after:?}, before the timeout"
    );
}

#[tokio::test]
async fn by_default_pooled_upstream_connections_stay_open_and_are_reused() {
    let app = keepalive_upstream().await;
    let p = start(keepalive_routes(&app), None).await;
    let resp = client().get(p.url("/app/x")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(app.connections(), 1, "one upstream connection");
    // The idle time is what is tested: longer than idleConnTimeout in the test above.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A fresh client, so only the proxy's upstream pool can carry the reuse.
    let resp = client().get(p.url("/app/y")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body"), "ok");
    let conns: Vec<usize> = app.requests().iter().map(|r| r.connection).collect();
    assert_eq!(
        conns,
        [0, 0],
        "both requests must travel on the first pooled connection"
    );
    assert!(
        app.closed_at().is_empty() && app.connections() == 1,
        "the idle connection was neither closed nor replaced by a new one"
    );
}

#[tokio::test]
async fn a_retry_on_the_next_server_sends_the_same_headers_once() {
    // The first server refuses connections; the request goes to the second one. The header
    // edits (forwarding headers, stripPrefix, headers middleware) are made once per request,
    // not once per attempt; the Host and base path follow the server that answers.
    let dead = refused_addr().expect("refused addr");
    let live = Upstream::start("live").await.expect("live upstream");
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
        - url: http://{dead}/dead/
        - url: {live_url}/live/
",
        live_url = live.url(),
    );
    let p = start(routes, None).await;
    for _ in 0..2 {
        let (status, body) = name_of(&p, "/app/x?q=1").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["server"], "live");
        assert_eq!(body["path"], "/live/x");
        assert_eq!(body["query"], "q=1");
        let h = |name| echo_header(&body, name);
        assert_eq!(h("host"), [live.addr.to_string()]);
        assert_eq!(h("x-forwarded-prefix"), ["/app"]);
        assert_eq!(h("x-forwarded-proto"), ["https"]);
        assert_eq!(h("x-extra"), ["one"]);
        assert_eq!(h("x-forwarded-for"), ["127.0.0.1"]);
        assert_eq!(h("x-forwarded-host"), [p.web.to_string()]);
    }
}

#[tokio::test]
async fn access_log_reports_the_client_user_agent_not_the_edited_one() {
    // The header edits are made on the client's request; the log still says what the client
    // sent, while the upstream gets the middleware's value.
    let app = Upstream::start("app").await.expect("app");
    let routes = format!(
        "http:\n  routers:\n    app:\n      rule: PathPrefix(`/app`)\n      service: app\n      middlewares: [ua]\n  middlewares:\n    ua:\n      headers:\n        customRequestHeaders:\n          User-Agent: edited-by-middleware\n  services:\n    app:\n      loadBalancer:\n        servers:\n        - url: {}\n",
        app.url()
    );
    // The generated static config writes a JSON access log.
    let p = start(routes, None).await;
    let log_path = p.access_log_path();
    let resp = client()
        .get(p.url("/app/x"))
        .header("User-Agent", "client-agent/1")
        .header("Referer", "http://bloud.local/home")
        .send()
        .await
        .expect("request");
    let body: Value = serde_json::from_str(&resp.text().await.expect("body")).expect("json");
    assert_eq!(echo_header(&body, "user-agent"), ["edited-by-middleware"]);
    let logged = support::eventually(Duration::from_secs(5), || async {
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
