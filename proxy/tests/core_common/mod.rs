//! Helpers for the core integration tests: a tiny echo upstream, a free-port picker, and a
//! running `bloud-proxy` process with its config in a temp dir.

#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");

/// A request as a test upstream saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub type Handler = std::sync::Arc<dyn Fn(&SeenRequest) -> String + Send + Sync>;

/// Starts an HTTP/1.1 upstream (keep-alive) whose `handler` returns the full raw response.
pub async fn http_upstream(handler: Handler) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let head_end = loop {
                        if let Some(i) = find(&buf, b"\r\n\r\n") {
                            break i;
                        }
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    buf.drain(..head_end + 4);
                    let mut lines = head.split("\r\n");
                    let mut parts = lines.next().unwrap_or("").split(' ');
                    let method = parts.next().unwrap_or("").to_string();
                    let path = parts.next().unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    let mut content_length = 0usize;
                    for l in lines {
                        if let Some((k, v)) = l.split_once(':') {
                            let (k, v) = (k.trim().to_string(), v.trim().to_string());
                            if k.eq_ignore_ascii_case("content-length") {
                                content_length = v.parse().unwrap_or(0);
                            }
                            headers.push((k, v));
                        }
                    }
                    while buf.len() < content_length {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..content_length);
                    let resp = handler(&SeenRequest {
                        method,
                        path,
                        headers,
                    });
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A raw response with a body and extra header lines (each ending in CRLF).
pub fn response(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Starts an upstream that answers every request with JSON describing it:
/// `{"name", "method", "path", "headers": {lowercase name: value, …}}`. It also sends
/// `X-Frame-Options: DENY` and a CSP so header middlewares can be observed.
pub async fn echo_upstream(name: &'static str) -> u16 {
    http_upstream(std::sync::Arc::new(move |req: &SeenRequest| {
        let mut headers = serde_json::Map::new();
        for (k, v) in &req.headers {
            let entry = headers
                .entry(k.to_ascii_lowercase())
                .or_insert(serde_json::Value::String(String::new()));
            if let serde_json::Value::String(s) = entry {
                if !s.is_empty() {
                    s.push_str(", ");
                }
                s.push_str(v);
            }
        }
        let body = serde_json::json!({
            "name": name, "method": req.method, "path": req.path, "headers": headers,
        })
        .to_string();
        response(
            "200 OK",
            "Content-Type: application/json\r\nX-Frame-Options: DENY\r\nContent-Security-Policy: frame-ancestors 'none'\r\n",
            &body,
        )
    }))
    .await
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A port that was free a moment ago (Pingora cannot report the port it bound).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A port with nothing listening (bound then released).
pub fn closed_port() -> u16 {
    free_port()
}

pub struct Proxy {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub web: u16,
    pub admin: u16,
}

impl Proxy {
    pub fn routes_dir(&self) -> PathBuf {
        self.dir.path().join("routes")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.web)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `files` (name, text) into `<tmp>/routes`, a static config, and starts the proxy; waits
/// until `/ping` answers. Retries with new ports when a port was taken in between.
pub async fn start_proxy(files: &[(&str, String)], static_extra: &str) -> Proxy {
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let routes = dir.path().join("routes");
        std::fs::create_dir_all(&routes).expect("routes dir");
        for (name, text) in files {
            std::fs::write(routes.join(name), text).expect("write route file");
        }
        let web = free_port();
        // Two probes can return the same port, and the proxy binds with SO_REUSEPORT, so both
        // entry points would share it: keep them apart.
        let mut admin = free_port();
        while admin == web {
            admin = free_port();
        }
        let static_cfg = format!(
            "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n  admin: {{ address: \"127.0.0.1:{admin}\" }}\nproviders:\n  file: {{ directory: \"{}\", watch: true }}\nping: {{ entryPoint: web }}\nmetrics: {{ prometheus: {{ entryPoint: admin }} }}\napi: {{ entryPoint: admin }}\npidFile: \"{}\"\nlifeCycle: {{ graceTimeOut: 3s }}\n{static_extra}",
            routes.display(),
            dir.path().join("proxy.pid").display()
        );
        let cfg_path = dir.path().join("static.yml");
        std::fs::write(&cfg_path, static_cfg).expect("write static");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_bloud-proxy"))
            .arg("--config")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start bloud-proxy");
        let mut proxy = Proxy {
            child,
            dir,
            web,
            admin,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = client();
        while Instant::now() < deadline && proxy.alive() {
            if let Ok(r) = client.get(proxy.url("/ping")).send().await {
                if r.status() == 200 {
                    return proxy;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("proxy did not come up, retrying: {}", proxy.stderr_log());
    }
    panic!("bloud-proxy did not start");
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("client")
}

/// A fixture file from shared/fixtures/traefik with `http://localhost:<port>` URLs pointed at
/// test upstreams (everything else unchanged).
pub fn fixture(name: &str, ports: &[(u16, u16)]) -> String {
    let mut text = std::fs::read_to_string(Path::new(SHARED).join("fixtures/traefik").join(name))
        .expect("read fixture");
    for (from, to) in ports {
        text = text.replace(
            &format!("http://localhost:{from}\""),
            &format!("http://127.0.0.1:{to}\""),
        );
        text = text.replace(
            &format!("http://localhost:{from}\n"),
            &format!("http://127.0.0.1:{to}\n"),
        );
    }
    text
}

/// Polls `f` until it returns true or the timeout passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Sends bytes as-is (no URL normalisation) and returns the status code of the answer.
pub async fn raw_status(port: u16, request: &str) -> u16 {
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    sock.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 1024];
        while find(&buf, b"\r\n").is_none() {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
