//! Helpers for the service tests: a temp catalog, an in-process agent on 127.0.0.1:0, a real
//! agent process, and a small SSE reader.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::Mutex;

use bloud_agent::config::{Config, LoginLimits, RebuildMode};

pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One catalog app for a temp `appsDir`.
pub struct TestApp<'a> {
    pub name: &'a str,
    pub port: Option<u16>,
    /// `healthCheck` lines (already indented) or empty for none.
    pub extra: &'a str,
}

pub fn write_catalog(dir: &Path, apps: &[TestApp<'_>]) {
    for app in apps {
        let d = dir.join(app.name);
        std::fs::create_dir_all(&d).unwrap();
        let port = app.port.map(|p| format!("port: {p}\n")).unwrap_or_default();
        std::fs::write(
            d.join("metadata.yaml"),
            format!(
                "name: {n}\ndisplayName: {n} app\ndescription: test app {n}\ncategory: productivity\n{port}{extra}",
                n = app.name,
                extra = app.extra
            ),
        )
        .unwrap();
    }
}

/// A free loopback port (bound then released; the test uses it right away).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Dirs {
    pub tmp: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["apps", "data", "routes", "web"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        Dirs { tmp }
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }
}

pub fn config(dirs: &Dirs, argv: &[&str], window: Duration) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        apps_dir: dirs.path("apps"),
        data_dir: dirs.path("data"),
        routes_dir: dirs.path("routes"),
        proxy_pid_file: dirs.path("proxy.pid"),
        web_dir: dirs.path("web"),
        public_url: "http://bloud.test".into(),
        rebuild: RebuildMode::Command {
            argv: argv.iter().map(|s| s.to_string()).collect(),
        },
        batch_window: window,
        system_profile: None,
        socket: dirs.path("agent.sock"),
        admin_group: "bloud-admin".into(),
        login: LoginLimits::default(),
        public_apps: Vec::new(),
        tls: bloud_agent::config::TlsConfig::disabled(&dirs.path("data")),
    }
}

/// A client without a session, over TCP: a browser or an app on the box.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Agent base URL -> its CLI socket, for [`admin`].
static SOCKETS: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

fn register(base: &str, socket: &Path) {
    SOCKETS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(base.to_string(), socket.to_path_buf());
}

/// The base URL of an in-process agent; [`admin`] reaches it through its socket.
pub fn base_of(running: &bloud_agent::server::Running) -> String {
    let base = format!("http://{}", running.addr);
    register(&base, &running.socket);
    base
}

/// A client acting as the administrator: its requests go over the agent's Unix socket (as the
/// CLI's do; this test process runs as root or as the agent's own user), whatever the URL's
/// host says. `url` is the agent's base URL or any URL under it.
pub fn admin(url: &str) -> reqwest::Client {
    admin_with(url, Some(Duration::from_secs(30)))
}

/// [`admin`] with an optional overall timeout (`None` for requests that outlive 30 s).
pub fn admin_with(url: &str, timeout: Option<Duration>) -> reqwest::Client {
    let socket = SOCKETS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .iter()
        .find(|(base, _)| url.starts_with(base.as_str()))
        .map(|(_, s)| s.clone())
        .unwrap_or_else(|| panic!("no agent socket registered for {url}"));
    let mut b = reqwest::Client::builder().unix_socket(socket);
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build().unwrap()
}

/// Polls `f` until it returns Some, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The installed list as (name, status).
pub async fn statuses(base: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = admin(base)
        .get(format!("{base}/api/apps/installed"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub async fn status_of(base: &str, app: &str) -> Option<String> {
    statuses(base)
        .await
        .into_iter()
        .find(|(n, _)| n == app)
        .map(|(_, s)| s)
}

/// Reads `data:` payloads of an SSE response as they arrive.
pub struct SseReader {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl SseReader {
    pub async fn open(url: &str) -> SseReader {
        let resp = admin_with(url, None).get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        SseReader {
            resp,
            buf: Vec::new(),
        }
    }

    /// Next frame's data, or a `:comment` line as `Err(comment)`; None when the stream ended.
    pub async fn next(&mut self) -> Option<Result<String, String>> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..pos + 2).collect();
                let text = String::from_utf8_lossy(&block).into_owned();
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if !data.is_empty() {
                    return Some(Ok(data.join("\n")));
                }
                if let Some(c) = text.lines().find_map(|l| l.strip_prefix(':')) {
                    return Some(Err(c.to_string()));
                }
                continue;
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.buf.extend_from_slice(&c),
                _ => return None,
            }
        }
    }

    /// Next data frame parsed as JSON, skipping comments.
    pub async fn next_json(&mut self) -> Option<serde_json::Value> {
        loop {
            match self.next().await? {
                Ok(d) => return Some(serde_json::from_str(&d).unwrap()),
                Err(_) => continue,
            }
        }
    }
}

/// A real `bloud-agent serve` process.
pub struct AgentProcess {
    pub child: Child,
    pub base: String,
    /// The CLI's socket (BLOUD_SOCKET).
    pub socket: PathBuf,
}

impl AgentProcess {
    /// Starts the binary with `config_file`; `env` adds variables. Waits for /api/health.
    pub async fn start(config_file: &Path, env: &[(&str, &str)]) -> AgentProcess {
        let port = free_port();
        let socket = config_file.with_file_name(format!("agent-{port}.sock"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bloud-agent"));
        cmd.args(["serve", "--config"])
            .arg(config_file)
            .env("BLOUD_LISTEN", format!("127.0.0.1:{port}"))
            .env("BLOUD_SOCKET", &socket)
            // Warnings and errors still show when a test fails; info lines would drown them.
            .env("BLOUD_LOG", "warn")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        register(&base, &socket);
        let p = AgentProcess {
            child,
            base,
            socket,
        };
        let url = format!("{}/api/health", p.base);
        wait_for("the agent to answer /api/health", TEST_TIMEOUT, || {
            let url = url.clone();
            async move {
                match client().get(&url).send().await {
                    Ok(r) if r.status() == 200 => Some(()),
                    _ => None,
                }
            }
        })
        .await;
        p
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to 10 s for the exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn addr_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// Writes `<dirs>/agent.yaml` for a real agent in demo mode (`demo/rebuild.sh`, a 50 ms batch
/// window) plus `extra` YAML lines, and returns its path.
pub fn write_demo_config(dirs: &Dirs, extra: &str) -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo/rebuild.sh");
    let config_file = dirs.path("agent.yaml");
    std::fs::write(
        &config_file,
        format!(
            "appsDir: {}\ndataDir: {}\nroutesDir: {}\nproxyPidFile: {}\n{extra}\
             rebuild:\n  mode: command\n  command: [sh, {script}]\nqueue:\n  batchWindow: 50ms\n",
            dirs.path("apps").display(),
            dirs.path("data").display(),
            dirs.path("routes").display(),
            dirs.path("proxy.pid").display(),
        ),
    )
    .expect("write agent.yaml");
    config_file
}

/// Stops the demo apps (pids in `<dataDir>/demo/*.pid`) left behind by a failing test.
pub struct DemoCleanup(pub PathBuf);

impl Drop for DemoCleanup {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for e in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                if let Some(pid) = text
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<i32>().ok())
                {
                    // SAFETY: a pid our demo rebuild started.
                    unsafe {
                        libc::kill(pid, libc::SIGTERM);
                    }
                }
            }
        }
    }
}
