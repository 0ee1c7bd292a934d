//! Connection limits and timeouts an attacker on the LAN meets: an idle keep-alive connection is
//! closed after `idleTimeout`, a header dribbled a line at a time is cut at the `readTimeout`
//! deadline (one deadline, not per read), an oversized header gets 431, connections past
//! `maxConnections` are refused while the open ones keep working, and a late upstream header is
//! a 504 after `responseHeaderTimeout` while an SSE stream that already answered keeps going.
//! Each limit shows in `/metrics` when it triggers.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::metric_value;
use support::proxy::{Ports, Proxy};
use support::upstream::{Breakage, BrokenUpstream, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The test static config with `web_extra` merged into the web entry point.
fn static_with(
    web_extra: Value,
    top_extra: Value,
) -> impl Fn(Ports, &Path, &Path) -> Value + Send + 'static {
    move |ports, dir, routes| {
        let mut web = json!({ "address": format!("127.0.0.1:{}", ports.web) });
        if let (Value::Object(w), Value::Object(extra)) = (&mut web, &web_extra) {
            w.extend(extra.clone());
        }
        let mut doc = json!({
            "entryPoints": {
                "web": web,
                "admin": { "address": format!("127.0.0.1:{}", ports.admin) },
            },
            "providers": { "file": { "directory": routes, "watch": false } },
            "ping": { "entryPoint": "web" },
            "metrics": { "prometheus": { "entryPoint": "admin" } },
            "api": { "entryPoint": "admin" },
            "log": { "level": "info" },
            "pidFile": dir.join("bloud-proxy.pid"),
            "lifeCycle": { "graceTimeOut": "2s" },
        });
        if let (Value::Object(d), Value::Object(extra)) = (&mut doc, &top_extra) {
            d.extend(extra.clone());
        }
        doc
    }
}

async fn start(web_extra: Value, top_extra: Value, routes: Option<String>) -> Proxy {
    let mut b = Proxy::builder().static_config(static_with(web_extra, top_extra));
    if let Some(r) = routes {
        b = b.route_file("r.yml", r);
    }
    b.start().await.expect("proxy starts")
}

async fn metric(p: &Proxy, name: &str, label: &str) -> f64 {
    let text = p.metrics().await.expect("metrics");
    metric_value(&text, name, &[label]).unwrap_or(0.0)
}

async fn connect(p: &Proxy) -> TcpStream {
    tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(p.web))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Reads one `/ping` answer (`OK`, Content-Length 2) off a kept-alive connection.
async fn ping_on(sock: &mut TcpStream) -> String {
    sock.write_all(b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !(got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"OK")) {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    String::from_utf8_lossy(&got).into_owned()
}

/// Waits (bounded) for the peer to close; returns when it did, `None` if it stayed open.
async fn closed_within(sock: &mut TcpStream, limit: Duration) -> Option<Instant> {
    let mut buf = [0u8; 4096];
    let wait = async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, wait).await.ok()
}

#[tokio::test]
async fn idle_keepalive_connection_is_closed_after_idle_timeout() {
    let p = start(
        json!({ "transport": { "respondingTimeouts": { "idleTimeout": "1s" } } }),
        json!({}),
        None,
    )
    .await;
    let mut sock = connect(&p).await;
    let first = ping_on(&mut sock).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first:?}");
    // The connection is reusable before the deadline...
    let second = ping_on(&mut sock).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second:?}");
    let idle_since = Instant::now();
    // ...and closed by the proxy once idle for 1 s (the bound is far above that).
    let closed = closed_within(&mut sock, Duration::from_secs(10)).await;
    let at = closed.expect("the idle keep-alive connection must be closed after idleTimeout");
    let idle = at - idle_since;
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(5),
        "closed after {idle:?}"
    );
    assert!(metric(&p, "bloud_proxy_timeouts_total", "kind=\"idle\"").await >= 1.0);
}

#[tokio::test]
async fn dribbled_header_is_cut_at_the_total_read_deadline() {
    let p = start(
        json!({ "transport": { "respondingTimeouts": { "readTimeout": "2s" } } }),
        json!({}),
        None,
    )
    .await;
    let mut sock = connect(&p).await;
    let started = Instant::now();
    sock.write_all(b"GET /ping HTTP/1.1\r\nHost: a\r\n")
        .await
        .expect("write");
    // One header line every 300 ms: each read is quick, the header never completes.
    let mut buf = [0u8; 1024];
    let closed_at = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the dribbling connection was still open after 10 s (readTimeout 2s)"
        );
        match tokio::time::timeout(Duration::from_millis(300), sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break Instant::now(),
            Ok(Ok(_)) => {}
            Err(_) => {
                if sock.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    break Instant::now();
                }
            }
        }
    };
    let held = closed_at - started;
    assert!(
        held >= Duration::from_millis(1900) && held < Duration::from_secs(4),
        "held for {held:?}"
    );
    assert!(metric(&p, "bloud_proxy_timeouts_total", "kind=\"request_header\"").await >= 1.0);
}

#[tokio::test]
async fn oversized_request_header_gets_431() {
    let p = start(
        json!({ "http": { "maxHeaderBytes": 8192 } }),
        json!({}),
        None,
    )
    .await;
    let request = |filler: usize| {
        format!(
            "GET /ping HTTP/1.1\r\nHost: a\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(filler)
        )
    };
    let small = support::raw::send_default(p.web, request(6000).as_bytes())
        .await
        .expect("send");
    assert_eq!(small.first_status(), Some(200), "{}", small.summary());
    let large = support::raw::send_default(p.web, request(9000).as_bytes())
        .await
        .expect("send");
    assert_eq!(large.first_status(), Some(431), "{}", large.summary());
    // 1 MB, as the attack sent it: refused, not accepted.
    let huge = support::raw::send_default(p.web, request(1 << 20).as_bytes())
        .await
        .expect("send");
    assert_ne!(huge.first_status(), Some(200), "{}", huge.summary());
    assert!(
        metric(
            &p,
            "bloud_proxy_connections_refused_total",
            "reason=\"header_size\""
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_while_open_ones_work() {
    let p = start(
        json!({ "transport": { "maxConnections": 3 } }),
        json!({}),
        None,
    )
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut s = connect(&p).await;
        let r = ping_on(&mut s).await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r:?}");
        open.push(s);
    }
    // The fourth is answered 503 (or closed) at once, without a request being served.
    let extra = support::raw::send_default(p.web, b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("send");
    assert!(extra.closed, "{}", extra.summary());
    assert!(
        extra.first_status().is_none() || extra.first_status() == Some(503),
        "{}",
        extra.summary()
    );
    // The open ones keep working.
    let r = ping_on(&mut open[0]).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r:?}");
    assert!(
        metric(
            &p,
            "bloud_proxy_connections_refused_total",
            "reason=\"max_connections\""
        )
        .await
            >= 1.0
    );
    // A slot freed by a client that leaves is usable again.
    drop(open.pop());
    let web = p.web;
    let served = support::eventually(Duration::from_secs(5), move || async move {
        support::raw::send_default(
            web,
            b"GET /ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .await
        .is_ok_and(|o| o.first_status() == Some(200))
    })
    .await;
    assert!(served, "a freed slot must take a new connection");
}

#[tokio::test]
async fn late_upstream_header_is_504_while_an_answered_sse_stream_keeps_going() {
    let silent = BrokenUpstream::start(Breakage::NeverAnswer)
        .await
        .expect("silent upstream");
    let app = Upstream::start("events").await.expect("upstream");
    let routes = format!(
        "http:\n  routers:\n    slow-app:\n      rule: PathPrefix(`/slow`)\n      service: slow\n    events:\n      rule: PathPrefix(`/sse`)\n      service: events\n  services:\n    slow:\n      loadBalancer:\n        servers:\n        - url: {}\n    events:\n      loadBalancer:\n        servers:\n        - url: {}\n",
        silent.url(),
        app.url()
    );
    let p = start(
        json!({}),
        json!({ "serversTransport": { "forwardingTimeouts": { "responseHeaderTimeout": "1s" } } }),
        Some(routes),
    )
    .await;
    let client = support::client().expect("client");
    // Events 1.5 s apart: every pause is longer than the header timeout.
    let sse = {
        let client = client.clone();
        let url = p.url("/sse?n=3&gap_ms=1500");
        tokio::spawn(async move {
            let resp = client.get(url).send().await.expect("sse request");
            assert_eq!(resp.status(), 200);
            tokio::time::timeout(Duration::from_secs(15), resp.text())
                .await
                .expect("sse in time")
                .expect("sse body")
        })
    };
    let started = Instant::now();
    let resp = client.get(p.url("/slow/x")).send().await.expect("request");
    assert_eq!(resp.status(), 504);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let body = sse.await.expect("sse task");
    for i in 0..3 {
        assert!(body.contains(&format!("data: event {i}")), "{body:?}");
    }
    assert!(metric(&p, "bloud_proxy_timeouts_total", "kind=\"response_header\"").await >= 1.0);
}
