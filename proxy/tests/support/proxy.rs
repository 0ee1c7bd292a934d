//! Starting, signalling and stopping the real `bloud-proxy` binary.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub const BIN: &str = env!("CARGO_BIN_EXE_bloud-proxy");

/// How long a debug build may take from spawn to answering `/ping`.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// A free loopback port: bind port 0, read the port, release it for the proxy to bind.
/// Another process may grab it in between; `ProxyBuilder::start` retries on a bind failure.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub web: u16,
    pub admin: u16,
}

type StaticFn = Box<dyn Fn(Ports, &Path, &Path) -> serde_json::Value + Send>;

/// Builds the temp dir (static config + routes dir) and starts the proxy.
pub struct ProxyBuilder {
    routes: Vec<(String, String)>,
    grace: String,
    watch: bool,
    trusted_ips: Vec<String>,
    custom_static: Option<StaticFn>,
    static_extra: Vec<String>,
}

impl Default for ProxyBuilder {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            grace: "10s".to_string(),
            watch: false,
            trusted_ips: Vec::new(),
            custom_static: None,
            static_extra: Vec::new(),
        }
    }
}

impl ProxyBuilder {
    /// A dynamic route file placed in the routes directory before the proxy starts.
    pub fn route_file(mut self, name: &str, yaml: impl Into<String>) -> Self {
        self.routes.push((name.to_string(), yaml.into()));
        self
    }

    pub fn grace(mut self, grace: &str) -> Self {
        self.grace = grace.to_string();
        self
    }

    pub fn watch(mut self, watch: bool) -> Self {
        self.watch = watch;
        self
    }

    pub fn trusted_ips(mut self, ips: &[&str]) -> Self {
        self.trusted_ips = ips.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Replaces the generated static config; the closure gets the ports, the temp dir and the
    /// routes dir and must put the web entry point on `127.0.0.1:<ports.web>` with `/ping`.
    pub fn static_config(
        mut self,
        f: impl Fn(Ports, &Path, &Path) -> serde_json::Value + Send + 'static,
    ) -> Self {
        self.custom_static = Some(Box::new(f));
        self
    }

    /// Top-level keys (a YAML mapping) set in the static config over the generated ones, e.g.
    /// `serversTransport` timeouts.
    pub fn static_yaml(mut self, yaml: &str) -> Self {
        self.static_extra.push(yaml.to_string());
        self
    }

    fn default_static(&self, ports: Ports, dir: &Path, routes: &Path) -> serde_json::Value {
        serde_json::json!({
            "entryPoints": {
                "web": {
                    "address": format!("127.0.0.1:{}", ports.web),
                    "forwardedHeaders": { "trustedIPs": self.trusted_ips },
                },
                "admin": { "address": format!("127.0.0.1:{}", ports.admin) },
            },
            "providers": { "file": { "directory": routes, "watch": self.watch } },
            "ping": { "entryPoint": "web" },
            "metrics": { "prometheus": { "entryPoint": "admin" } },
            "api": { "entryPoint": "admin" },
            "accessLog": { "filePath": dir.join("access.log"), "format": "json" },
            "log": { "level": "info" },
            "pidFile": dir.join("bloud-proxy.pid"),
            "lifeCycle": { "graceTimeOut": self.grace },
        })
    }

    pub async fn start(self) -> anyhow::Result<Proxy> {
        let dir = tempfile::Builder::new()
            .prefix("bloud-proxy-test-")
            .tempdir()
            .context("creating the proxy temp dir")?;
        let routes_dir = dir.path().join("routes");
        std::fs::create_dir(&routes_dir)
            .with_context(|| format!("creating {}", routes_dir.display()))?;
        for (name, yaml) in &self.routes {
            let path = routes_dir.join(name);
            std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        }

        let mut last_err = None;
        // A port picked by free_port can be taken before the proxy binds it: retry with new ports.
        for attempt in 0..4 {
            // Two probes can return the same port (the first is closed again before the
            // second binds); Pingora binds with SO_REUSEPORT, so both entry points would then
            // share it and requests would land on either. Seen once in CI: admin answered 404.
            let web = free_port()?;
            let mut admin = free_port()?;
            while admin == web {
                admin = free_port()?;
            }
            let ports = Ports { web, admin };
            let mut static_value = match &self.custom_static {
                Some(f) => f(ports, dir.path(), &routes_dir),
                None => self.default_static(ports, dir.path(), &routes_dir),
            };
            for extra in &self.static_extra {
                let extra: serde_json::Map<String, serde_json::Value> =
                    serde_saphyr::from_str(extra).context("static_yaml must be a YAML mapping")?;
                let serde_json::Value::Object(doc) = &mut static_value else {
                    bail!("the static config is not a mapping");
                };
                doc.extend(extra);
            }
            let config_path = dir.path().join("bloud-proxy.yml");
            let text =
                serde_saphyr::to_string(&static_value).context("serialising static config")?;
            std::fs::write(&config_path, text)
                .with_context(|| format!("writing {}", config_path.display()))?;

            let stdout_path = dir.path().join(format!("stdout-{attempt}.log"));
            let stderr_path = dir.path().join(format!("stderr-{attempt}.log"));
            let child = Command::new(BIN)
                .arg("--config")
                .arg(&config_path)
                .env("RUST_BACKTRACE", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::from(
                    File::create(&stdout_path).context("stdout log")?,
                ))
                .stderr(Stdio::from(
                    File::create(&stderr_path).context("stderr log")?,
                ))
                .spawn()
                .with_context(|| format!("spawning {BIN}"))?;
            let mut proxy = Proxy {
                child: Some(child),
                routes_dir: routes_dir.clone(),
                config_path,
                web: SocketAddr::from(([127, 0, 0, 1], ports.web)),
                admin: SocketAddr::from(([127, 0, 0, 1], ports.admin)),
                stdout_path,
                stderr_path,
                dir: None,
                show_logs_on_drop: true,
            };
            match proxy.wait_ready().await {
                Ok(()) => {
                    proxy.dir = Some(dir);
                    return Ok(proxy);
                }
                Err(e) => {
                    let logs = proxy.logs();
                    proxy.show_logs_on_drop = false;
                    drop(proxy);
                    let lower = logs.to_lowercase();
                    let port_clash =
                        lower.contains("address already in use") || lower.contains("addrinuse");
                    last_err = Some(e.context(format!("proxy output:\n{}", tail(&logs, 4000))));
                    if !port_clash {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("proxy did not start")))
    }
}

/// A running proxy process; killed (SIGKILL) on drop, its log printed for libtest to show on
/// failure.
pub struct Proxy {
    child: Option<Child>,
    pub routes_dir: PathBuf,
    pub config_path: PathBuf,
    pub web: SocketAddr,
    pub admin: SocketAddr,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    dir: Option<tempfile::TempDir>,
    show_logs_on_drop: bool,
}

impl Proxy {
    pub fn builder() -> ProxyBuilder {
        ProxyBuilder::default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.web, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// Where the static config tells the proxy to write its pid (bloud-agent reads it to SIGHUP).
    pub fn pid_file(&self) -> PathBuf {
        self.config_path.with_file_name("bloud-proxy.pid")
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = super::client()?;
        let started = Instant::now();
        let ping = self.url("/ping");
        loop {
            if let Some(status) = self.try_exit_status()? {
                bail!("bloud-proxy exited during startup with {status}");
            }
            if let Ok(resp) = client
                .get(&ping)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                if resp.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if started.elapsed() > STARTUP_LIMIT {
                bail!("bloud-proxy did not answer 200 on {ping} within {STARTUP_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exit_status(), Ok(None))
    }

    /// The JSON access log the generated static config asks for.
    pub fn access_log_path(&self) -> PathBuf {
        self.config_path.with_file_name("access.log")
    }

    fn try_exit_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => child.try_wait().context("polling the proxy process"),
            None => Ok(None),
        }
    }

    /// Everything the proxy printed so far (stdout then stderr).
    pub fn logs(&self) -> String {
        let out = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
        let err = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        format!("--- stdout ---\n{out}\n--- stderr ---\n{err}")
    }

    pub fn signal(&self, sig: i32) -> anyhow::Result<()> {
        let pid = self.pid();
        if pid <= 0 {
            bail!("no proxy process to signal");
        }
        // SAFETY: kill(2) has no memory-safety preconditions; pid is our own child.
        let rc = unsafe { libc::kill(pid, sig) };
        if rc != 0 {
            bail!(
                "kill({pid}, {sig}) failed: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    pub fn sighup(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGHUP)
    }

    /// Waits for the process to exit on its own; `None` if it is still running after `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_exit_status()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes a route file the way bloud-agent does: `<name>.tmp`, then rename over `<name>`.
    pub fn write_route_file(&self, name: &str, yaml: &str) -> anyhow::Result<()> {
        let tmp = self.routes_dir.join(format!("{name}.tmp"));
        let dst = self.routes_dir.join(name);
        std::fs::write(&tmp, yaml).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &dst)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dst.display()))?;
        Ok(())
    }

    pub async fn metrics(&self) -> anyhow::Result<String> {
        let url = self.admin_url("/metrics");
        let resp = super::client()?
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("body of {url}"))?;
        if !status.is_success() {
            bail!("GET {url} answered {status}: {}", tail(&text, 500));
        }
        Ok(text)
    }

    pub async fn admin_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let url = self.admin_url(path);
        let resp = super::client()?
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("body of {url}"))?;
        if !status.is_success() {
            bail!("GET {url} answered {status}: {}", tail(&text, 500));
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{url} is not JSON: {}", tail(&text, 500)))
    }

    /// How many reloads have succeeded and failed so far (`bloud_proxy_config_reloads_total`).
    pub async fn reload_count(&self) -> anyhow::Result<ReloadCount> {
        let text = self.metrics().await?;
        let get = |result: &str| {
            super::metric_value(
                &text,
                "bloud_proxy_config_reloads_total",
                &[&format!("result=\"{result}\"")],
            )
            .unwrap_or(0.0) as u64
        };
        Ok(ReloadCount {
            success: get("success"),
            failure: get("failure"),
        })
    }

    /// Waits until the proxy has finished at least one reload attempt after `before` was read
    /// and returns the new count, so a test can tell "rejected" from "not processed yet".
    pub async fn next_reload(
        &self,
        before: ReloadCount,
        limit: Duration,
    ) -> anyhow::Result<ReloadCount> {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.reload_count().await?;
            if now.attempts() > before.attempts() {
                return Ok(now);
            }
            if Instant::now() >= deadline {
                bail!("no reload attempt finished within {limit:?} (still {now:?})");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Peak resident set size of the proxy process (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        proc_status_kib(self.pid(), "VmRSS:")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Tests return errors rather than panic, so the log is always printed here; libtest
        // captures it and shows it only for a failed test.
        if self.show_logs_on_drop {
            eprintln!("bloud-proxy output (tail):\n{}", tail(&self.logs(), 8000));
        }
    }
}

/// Reload attempts the proxy has finished, by outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadCount {
    pub success: u64,
    pub failure: u64,
}

impl ReloadCount {
    pub fn attempts(&self) -> u64 {
        self.success + self.failure
    }
}

fn proc_status_kib(pid: i32, key: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with(key))
        .with_context(|| format!("{path} has no {key} line"))?;
    let number = line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("{path}: malformed line {line:?}"))?;
    number
        .parse::<u64>()
        .with_context(|| format!("{path}: {key} value {number:?} is not a number"))
}

/// Runs `bloud-proxy check --config <path>` and returns its output (bounded to 60 s).
pub async fn run_check(config: &Path) -> anyhow::Result<Output> {
    run_bin(&["check".as_ref(), "--config".as_ref(), config.as_os_str()]).await
}

/// Runs the binary with `args` to completion and returns its output (bounded to 60 s).
pub async fn run_bin(args: &[&std::ffi::OsStr]) -> anyhow::Result<Output> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .with_context(|| format!("bloud-proxy {args:?} did not finish within 60 s"))?
        .with_context(|| format!("running {BIN} {args:?}"))?;
    Ok(out)
}

/// Exit code, stdout and stderr of a finished run, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "exit={:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last `max` bytes of `s` (on a char boundary), for error messages.
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
