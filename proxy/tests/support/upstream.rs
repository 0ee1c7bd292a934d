//! Upstream servers the tests route to, each on its own ephemeral loopback port.
//!
//! `Upstream` is one axum app with these endpoints (any other path is the echo):
//! - echo (fallback): JSON `{server, method, path, query, headers, body_len}`; the response also
//!   carries `X-Frame-Options: DENY` and a CSP, like real apps that forbid framing.
//! - `/sse?n=&gap_ms=`: `text/event-stream`, one event every `gap_ms`.
//! - `/chunked?n=&gap_ms=&size=`: chunked body (no Content-Length), one chunk every `gap_ms`.
//! - `/slow?ms=`: answers after `ms`.
//! - `/large?size=`: `size` bytes (default 1 GiB) generated on the fly, byte i = i % 251,
//!   with `Range: bytes=a-b` support.
//! - `/redirect?to=`: 302 to `to`.
//! - `/ws`: WebSocket echo (text and binary).
//!
//! Every request is recorded (method, path+query, headers) before it is handled.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures_util::stream;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub mod scripted;

pub const GIB: u64 = 1 << 30;
/// The download pattern repeats every 251 bytes (a prime, so chunk boundaries never line up).
pub const PATTERN_PERIOD: usize = 251;
const PATTERN_CHUNK: usize = PATTERN_PERIOD * 1024;

pub const UPSTREAM_XFO: &str = "DENY";
pub const UPSTREAM_CSP: &str = "default-src 'self'; frame-ancestors 'none'";

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone)]
struct AppState {
    name: Arc<str>,
    log: Arc<Mutex<Vec<RecordedRequest>>>,
    pattern: Bytes,
}

pub struct Upstream {
    pub name: String,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<RecordedRequest>>>,
    task: JoinHandle<()>,
}

impl Upstream {
    pub async fn start(name: &str) -> anyhow::Result<Upstream> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding upstream on 127.0.0.1:0")?;
        let addr = listener.local_addr().context("upstream local addr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = AppState {
            name: Arc::from(name),
            log: log.clone(),
            pattern: pattern_bytes(),
        };
        let app = Router::new()
            .route("/sse", get(sse))
            .route("/chunked", get(chunked))
            .route("/slow", any(slow))
            .route("/large", get(large))
            .route("/redirect", any(redirect))
            .route("/ws", get(ws))
            .fallback(echo)
            .layer(middleware::from_fn_with_state(state.clone(), record))
            .with_state(state);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("upstream server stopped: {e}");
            }
        });
        Ok(Upstream {
            name: name.to_string(),
            addr,
            log,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        match self.log.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .map(|r| r.path_and_query)
            .collect()
    }

    pub fn count(&self) -> usize {
        match self.log.lock() {
            Ok(g) => g.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let rec = RecordedRequest {
        method: req.method().to_string(),
        path_and_query: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    match state.log.lock() {
        Ok(mut g) => g.push(rec),
        Err(poisoned) => poisoned.into_inner().push(rec),
    }
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&state.name) {
        resp.headers_mut().insert("x-upstream", v);
    }
    resp
}

async fn echo(State(state): State<AppState>, req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let body_len = match axum::body::to_bytes(req.into_body(), 16 << 20).await {
        Ok(b) => b.len() as i64,
        Err(_) => -1,
    };
    let doc = serde_json::json!({
        "server": &*state.name,
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body_len": body_len,
    });
    (
        [
            ("content-type", "application/json"),
            ("x-frame-options", UPSTREAM_XFO),
            ("content-security-policy", UPSTREAM_CSP),
        ],
        doc.to_string(),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct StreamParams {
    n: Option<u32>,
    gap_ms: Option<u64>,
    size: Option<usize>,
}

async fn sse(Query(p): Query<StreamParams>) -> Response {
    let n = p.n.unwrap_or(5);
    let gap = Duration::from_millis(p.gap_ms.unwrap_or(300));
    let events = stream::unfold(0u32, move |i| async move {
        if i >= n {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        let line = format!("id: {i}\ndata: event {i}\n\n");
        Some((Ok::<_, Infallible>(Bytes::from(line)), i + 1))
    });
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

async fn chunked(Query(p): Query<StreamParams>) -> Response {
    let n = p.n.unwrap_or(5);
    let gap = Duration::from_millis(p.gap_ms.unwrap_or(200));
    let size = p.size.unwrap_or(16).max(8);
    let chunks = stream::unfold(0u32, move |i| async move {
        if i >= n {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        let mut text = format!("chunk-{i:04}|");
        while text.len() < size {
            text.push('.');
        }
        Some((Ok::<_, Infallible>(Bytes::from(text)), i + 1))
    });
    (
        [("content-type", "application/octet-stream")],
        Body::from_stream(chunks),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct SlowParams {
    ms: Option<u64>,
}

async fn slow(Query(p): Query<SlowParams>) -> Response {
    tokio::time::sleep(Duration::from_millis(p.ms.unwrap_or(2000))).await;
    ([("content-type", "text/plain")], "slow response done").into_response()
}

#[derive(serde::Deserialize)]
struct RedirectParams {
    to: Option<String>,
}

async fn redirect(Query(p): Query<RedirectParams>) -> Response {
    let to = p.to.unwrap_or_else(|| "/".to_string());
    match HeaderValue::from_str(&to) {
        Ok(v) => {
            let mut resp = StatusCode::FOUND.into_response();
            resp.headers_mut().insert("location", v);
            resp
        }
        Err(_) => (StatusCode::BAD_REQUEST, "bad redirect target").into_response(),
    }
}

#[derive(serde::Deserialize)]
struct LargeParams {
    size: Option<u64>,
}

/// One period-aligned buffer; any offset's data is a zero-copy slice of it.
fn pattern_bytes() -> Bytes {
    let len = PATTERN_CHUNK + PATTERN_PERIOD;
    Bytes::from(
        (0..len)
            .map(|i| (i % PATTERN_PERIOD) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// The expected content of `[offset, offset + len)` of a `/large` download.
pub fn expected_slice(pattern: &[u8], offset: u64, len: usize) -> &[u8] {
    let start = (offset % PATTERN_PERIOD as u64) as usize;
    &pattern[start..start + len]
}

/// A buffer to compare downloads against with `expected_slice` (pieces of at most
/// `PATTERN_CHUNK` bytes).
pub fn pattern_for_checks() -> Bytes {
    pattern_bytes()
}

pub const PATTERN_CHECK_MAX: usize = PATTERN_CHUNK;

fn parse_range(headers: &HeaderMap, size: u64) -> Option<(u64, u64)> {
    let v = headers.get("range")?.to_str().ok()?;
    let spec = v.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end: u64 = if b.trim().is_empty() {
        size - 1
    } else {
        b.trim().parse().ok()?
    };
    if start > end || end >= size {
        return None;
    }
    Some((start, end))
}

async fn large(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(p): Query<LargeParams>,
) -> Response {
    let size = p.size.unwrap_or(GIB);
    let (status, start, end) = match parse_range(&headers, size) {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
        None => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    let pattern = state.pattern.clone();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let chunks = stream::unfold(start, move |off| {
            let pattern = pattern.clone();
            async move {
                let remaining = (start + len).saturating_sub(off);
                if remaining == 0 {
                    return None;
                }
                let n = remaining.min(PATTERN_CHUNK as u64) as usize;
                let from = (off % PATTERN_PERIOD as u64) as usize;
                let chunk = pattern.slice(from..from + n);
                Some((Ok::<_, Infallible>(chunk), off + n as u64))
            }
        });
        Body::from_stream(chunks)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert("accept-ranges", HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        h.insert("content-length", v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
            h.insert("content-range", v);
        }
    }
    resp
}

async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo_socket)
}

async fn echo_socket(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let reply = match msg {
            Message::Text(t) => Message::Text(t),
            Message::Binary(b) => Message::Binary(b),
            Message::Close(_) => break,
            // Ping/Pong are answered by the library.
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

/// An address where nothing listens (connection refused).
pub fn refused_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    listener.local_addr().context("reading the bound port")
}

/// How a `BrokenUpstream` fails each connection it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breakage {
    /// Closes as soon as the connection is accepted, before reading anything (the request
    /// then meets a closed socket: the proxy sees EOF or a reset).
    CloseOnAccept,
    /// Reads the request head, then closes: a clean FIN after the request arrived, like an
    /// app that crashed while handling it.
    CloseAfterRequest,
    /// Reads the request and holds the connection open without ever answering.
    NeverAnswer,
}

/// A server that accepts TCP connections and never sends a valid answer.
pub struct BrokenUpstream {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl BrokenUpstream {
    pub async fn start(how: Breakage) -> anyhow::Result<BrokenUpstream> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a broken upstream")?;
        let addr = listener.local_addr().context("broken upstream addr")?;
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                if how == Breakage::CloseOnAccept {
                    drop(sock);
                    continue;
                }
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt;
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    let read_head = async {
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            match sock.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(2), read_head).await;
                    if how == Breakage::NeverAnswer {
                        // Until the peer gives up (or the test ends and aborts the server).
                        while let Ok(n) = sock.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                        }
                    }
                    drop(sock);
                });
            }
        });
        Ok(BrokenUpstream { addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for BrokenUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Header values of an echo reply, by lower-case name.
pub fn echo_header(reply: &serde_json::Value, name: &str) -> Vec<String> {
    reply["headers"][name]
        .as_array()
        .map(|vals| {
            vals.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
