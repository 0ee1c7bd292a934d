//! `RawUpstream`: a keep-alive HTTP/1.1 server written on a bare socket, for tests that must
//! control every byte, framing and timing of an app's answer (redirects with odd `Location`s,
//! chunked bodies released in steps, replies without a body, auth servers). It records every
//! request and every connection it accepted or saw closed.
//!
//! The axum `Upstream` beside it covers the common case (echo, SSE, WebSocket, large files).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A request as an upstream app saw it.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    /// Path and query as sent on the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The port this app listens on (apps write their own address into some redirects).
    pub port: u16,
    /// Which accepted connection carried it (0 for the first one), to see connection reuse.
    pub connection: usize,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn host(&self) -> &str {
        self.header("host").unwrap_or("")
    }
}

/// Opened by the test client once it has seen some output; an upstream chunk sequence waits
/// on it (at most 5 s) to prove the proxy forwarded earlier bytes before the body ended.
#[derive(Clone, Default)]
pub struct Gate {
    notify: Arc<Notify>,
    late: Arc<AtomicBool>,
}

impl Gate {
    pub fn open(&self) {
        self.notify.notify_one();
    }

    /// The upstream gave up waiting: the client did not get the bytes sent before the gate.
    pub fn was_late(&self) -> bool {
        self.late.load(Ordering::SeqCst)
    }
}

pub enum Part {
    Data(Vec<u8>),
    Sleep(Duration),
    Wait(Gate),
}

enum ReplyBody {
    /// Sent with `Content-Length`.
    Fixed(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, one chunk per `Part::Data`.
    Chunks(Vec<Part>),
    /// No body and no framing header added (HEAD, 204, 304: the headers say what they say).
    Nothing,
}

pub struct Reply {
    status: String,
    headers: Vec<(String, String)>,
    body: ReplyBody,
}

/// A reply with `status` (e.g. `"302 Found"`) and an empty `Content-Length` body.
pub fn reply(status: &str) -> Reply {
    Reply {
        status: status.to_string(),
        headers: Vec::new(),
        body: ReplyBody::Fixed(Vec::new()),
    }
}

impl Reply {
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = ReplyBody::Fixed(body.into());
        self
    }

    pub fn chunks(mut self, parts: Vec<Part>) -> Self {
        self.body = ReplyBody::Chunks(parts);
        self
    }

    pub fn no_body(mut self) -> Self {
        self.body = ReplyBody::Nothing;
        self
    }
}

type Handler = Arc<dyn Fn(&RawRequest) -> Reply + Send + Sync>;

#[derive(Default)]
struct Log {
    requests: Vec<RawRequest>,
    accepted: usize,
    /// When each connection that ended was closed (by the proxy or by an error).
    closed: Vec<Instant>,
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1:0 that answers with `handler`.
pub struct RawUpstream {
    pub port: u16,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawUpstream {
    pub async fn start(
        handler: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static,
    ) -> anyhow::Result<RawUpstream> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a raw upstream")?;
        let port = listener.local_addr()?.port();
        let log = Arc::new(Mutex::new(Log::default()));
        let handler: Handler = Arc::new(handler);
        let log2 = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let connection = {
                    let mut g = lock(&log2);
                    g.accepted += 1;
                    g.accepted - 1
                };
                let (handler, log) = (handler.clone(), log2.clone());
                tokio::spawn(async move {
                    serve_connection(sock, port, connection, handler, log.clone()).await;
                    lock(&log).closed.push(Instant::now());
                });
            }
        });
        Ok(RawUpstream { port, log, task })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        lock(&self.log).requests.clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.log).requests.len()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.log).accepted
    }

    /// When each finished connection closed, in order.
    pub fn closed_at(&self) -> Vec<Instant> {
        lock(&self.log).closed.clone()
    }
}

fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn serve_connection(
    mut sock: TcpStream,
    port: u16,
    connection: usize,
    handler: Handler,
    log: Arc<Mutex<Log>>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        let mut length = 0usize;
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        while buf.len() < length {
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..length);
        let req = RawRequest {
            method,
            target,
            headers,
            port,
            connection,
        };
        lock(&log).requests.push(req.clone());
        let r = handler(&req);
        let mut out = format!("HTTP/1.1 {}\r\n", r.status);
        for (k, v) in &r.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        match &r.body {
            ReplyBody::Fixed(b) => out.push_str(&format!("Content-Length: {}\r\n\r\n", b.len())),
            ReplyBody::Chunks(_) => out.push_str("Transfer-Encoding: chunked\r\n\r\n"),
            ReplyBody::Nothing => out.push_str("\r\n"),
        }
        if sock.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        match r.body {
            ReplyBody::Fixed(b) => {
                if req.method != "HEAD" && sock.write_all(&b).await.is_err() {
                    return;
                }
            }
            ReplyBody::Chunks(parts) => {
                for part in parts {
                    match part {
                        Part::Data(d) => {
                            let mut frame = format!("{:x}\r\n", d.len()).into_bytes();
                            frame.extend_from_slice(&d);
                            frame.extend_from_slice(b"\r\n");
                            if sock.write_all(&frame).await.is_err() {
                                return;
                            }
                            let _ = sock.flush().await;
                        }
                        Part::Sleep(d) => tokio::time::sleep(d).await,
                        Part::Wait(gate) => {
                            let waited = tokio::time::timeout(
                                Duration::from_secs(5),
                                gate.notify.notified(),
                            )
                            .await;
                            if waited.is_err() {
                                gate.late.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                }
                if sock.write_all(b"0\r\n\r\n").await.is_err() {
                    return;
                }
            }
            ReplyBody::Nothing => {}
        }
        let _ = sock.flush().await;
    }
}
