//! A running Bloud system: bloud-proxy in front, bloud-agent behind it, demo apps started by the
//! agent's rebuild command. Everything is stopped on drop, including the demo apps (they run in
//! their own process group, so they would outlive the agent).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::bins::{self, Bins};
use super::client::Client;
use super::layout::{catalog_apps_with_port, Layout, Ports};
use super::process::{tail, terminate, Proc};

/// A debug build may take this long from spawn to answering.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
/// Attempts with fresh ports when a port picked as free was taken before a child bound it.
const ATTEMPTS: usize = 4;

pub struct System {
    pub layout: Layout,
    pub ports: Ports,
    bins: Bins,
    step: Duration,
    proxy: Proc,
    agent: Proc,
    /// Output of agent processes stopped by `restart_agent`.
    earlier_agents: String,
    // Last: removed after the processes are gone.
    _dir: tempfile::TempDir,
}

impl System {
    /// A system whose demo rebuild prints a log line every 20 ms.
    pub async fn start() -> anyhow::Result<System> {
        Self::start_paced(Duration::from_millis(20)).await
    }

    /// A system whose demo rebuild pauses `step` after each log line (as a real build would
    /// between its steps), so a test can tell a streamed log from one delivered at the end.
    pub async fn start_paced(step: Duration) -> anyhow::Result<System> {
        let bins = bins::locate()?;
        let dir = tempfile::Builder::new()
            .prefix("bloud-e2e-")
            .tempdir()
            .context("creating the system's temp dir")?;
        let layout = Layout::new(dir.path())?;
        let apps = catalog_apps_with_port(&super::repo_root().join("apps"))?;
        let mut last_err = None;
        for attempt in 1..=ATTEMPTS {
            let ports = layout.pick_ports(&apps)?;
            layout.write(&ports, &bins.agent)?;
            match start_processes(&bins, &layout, &ports, step).await {
                Ok((proxy, agent)) => {
                    return Ok(System {
                        layout,
                        ports,
                        bins,
                        step,
                        proxy,
                        agent,
                        earlier_agents: String::new(),
                        _dir: dir,
                    })
                }
                Err(StartError::PortTaken(e)) if attempt < ATTEMPTS => {
                    eprintln!(
                        "attempt {attempt}: a port was taken, retrying with new ports: {e:#}"
                    );
                    last_err = Some(e);
                }
                Err(StartError::PortTaken(e)) | Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("the system did not start")))
    }

    /// The URL of `path` on the proxy's web entry point (what a browser opens).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.ports.web, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.ports.admin, path)
    }

    /// The agent directly, bypassing the proxy.
    pub fn agent_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.ports.agent, path)
    }

    /// A client of the proxy, without a session.
    pub fn client(&self) -> anyhow::Result<Client> {
        Client::new(self.url(""))
    }

    pub fn app_port(&self, app: &str) -> anyhow::Result<u16> {
        self.ports
            .apps
            .get(app)
            .copied()
            .with_context(|| format!("the catalog has no app `{app}` with a port"))
    }

    pub fn routes_file(&self) -> PathBuf {
        self.layout.routes_dir.join("apps-routes.yml")
    }

    pub fn proxy_pid(&self) -> i32 {
        self.proxy.pid()
    }

    /// A `bloud-agent` command line (e.g. `install <app>`) with a clean environment.
    pub fn agent_command(&self) -> anyhow::Result<tokio::process::Command> {
        let bins = bins::locate()?;
        let mut cmd = Command::new(&bins.agent);
        clean_env(&mut cmd);
        cmd.env("NO_COLOR", "1").current_dir(&self.layout.dir);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        Ok(cmd)
    }

    /// Stops the agent (SIGTERM, as systemd would) and starts it again on the same config and
    /// state; returns once it answers directly and through the proxy.
    pub async fn restart_agent(&mut self) -> anyhow::Result<()> {
        self.agent.stop(Duration::from_secs(10));
        self.earlier_agents.push_str(&self.agent.output());
        self.agent = spawn_agent(&self.bins, &self.layout, self.step, "bloud-agent-restarted")?;
        let direct = self.agent_url("/api/health");
        wait_ready(&mut self.agent, &direct, None).await?;
        let through = self.url("/api/health");
        wait_ready(&mut self.agent, &through, None).await
    }

    /// Every log of the system, for a failure report.
    pub fn logs(&self) -> String {
        let mut out = format!(
            "===== system in {} (proxy :{}, admin :{}, agent :{}) =====\n{}\n{}{}\n",
            self.layout.dir.display(),
            self.ports.web,
            self.ports.admin,
            self.ports.agent,
            self.proxy.output(),
            self.earlier_agents,
            self.agent.output()
        );
        let demo = self.layout.data_dir.join("demo");
        if let Ok(entries) = std::fs::read_dir(&demo) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "log") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    out.push_str(&format!(
                        "----- demo app log {} -----\n{}\n",
                        p.display(),
                        tail(&text, 4000)
                    ));
                }
            }
        }
        out
    }

    /// Pids of demo apps the agent started for this system: the pid files the demo writes,
    /// kept only when the process is a `demo-app` on one of this system's ports (never someone
    /// else's process that reused the pid).
    pub fn demo_app_pids(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir(self.layout.data_dir.join("demo")) else {
            return Vec::new();
        };
        let mut pids = Vec::new();
        for e in entries.flatten() {
            if e.path().extension().is_none_or(|x| x != "pid") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let Some(pid) = text
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let ours = args.iter().any(|a| a == "demo-app")
                && args.windows(2).any(|w| {
                    w[0] == "--port"
                        && w[1]
                            .parse::<u16>()
                            .is_ok_and(|p| self.ports.apps.values().any(|q| *q == p))
                });
            if ours {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.agent.stop(Duration::from_secs(5));
        for pid in self.demo_app_pids() {
            terminate(pid);
        }
        self.proxy.stop(Duration::from_secs(5));
    }
}

enum StartError {
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

fn port_taken(output: &str) -> bool {
    let lower = output.to_lowercase();
    lower.contains("address already in use") || lower.contains("addrinuse")
}

/// Clears inherited `BLOUD_*` variables: the agent lets the environment override its config
/// file, and a developer's shell must not redirect the test system to real directories.
fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("BLOUD_") {
            cmd.env_remove(k);
        }
    }
}

async fn start_processes(
    bins: &Bins,
    layout: &Layout,
    ports: &Ports,
    step: Duration,
) -> Result<(Proc, Proc), StartError> {
    let _ = std::fs::remove_file(&layout.pid_file);
    let mut cmd = Command::new(&bins.proxy);
    cmd.arg("--config").arg(&layout.proxy_config);
    clean_env(&mut cmd);
    cmd.env("NO_COLOR", "1");
    let mut proxy = Proc::spawn("bloud-proxy", cmd, &layout.log_dir).map_err(StartError::Other)?;
    let ping = format!("http://127.0.0.1:{}/ping", ports.web);
    if let Err(e) = wait_ready(&mut proxy, &ping, Some(&layout.pid_file)).await {
        return Err(classify(e, &proxy));
    }

    let mut agent = spawn_agent(bins, layout, step, "bloud-agent").map_err(StartError::Other)?;
    let health = format!("http://127.0.0.1:{}/api/health", ports.agent);
    if let Err(e) = wait_ready(&mut agent, &health, None).await {
        let err = classify(e, &agent);
        drop(agent);
        let err = match err {
            StartError::PortTaken(e) => StartError::PortTaken(e),
            StartError::Other(e) => StartError::Other(e.context(proxy.output())),
        };
        return Err(err);
    }
    // The agent reaches the proxy's routes: the shell's API answers through the proxy.
    let through = format!("http://127.0.0.1:{}/api/health", ports.web);
    if let Err(e) = wait_ready(&mut agent, &through, None).await {
        return Err(StartError::Other(e.context(format!(
            "the agent answers directly but not through the proxy (base routes in {})\n{}\n{}",
            layout.routes_dir.display(),
            proxy.output(),
            agent.output()
        ))));
    }
    Ok((proxy, agent))
}

fn spawn_agent(
    bins: &Bins,
    layout: &Layout,
    step: Duration,
    name: &'static str,
) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(&bins.agent);
    cmd.arg("serve").arg("--config").arg(&layout.agent_config);
    clean_env(&mut cmd);
    // The demo rebuild pauses between log lines to look like a build; keep tests quick.
    cmd.env("BLOUD_DEMO_STEP_MS", step.as_millis().to_string())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .current_dir(&layout.dir);
    Proc::spawn(name, cmd, &layout.log_dir)
}

fn classify(e: anyhow::Error, proc: &Proc) -> StartError {
    let output = proc.output();
    let e = e.context(output.clone());
    if port_taken(&output) {
        StartError::PortTaken(e)
    } else {
        StartError::Other(e)
    }
}

/// Waits until `url` answers 200 (and `pid_file` exists, when given) while `proc` runs.
async fn wait_ready(proc: &mut Proc, url: &str, pid_file: Option<&Path>) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .context("building the readiness client")?;
    let started = Instant::now();
    loop {
        if let Some(status) = proc.exited() {
            bail!("{} exited during startup with {status}", proc.name);
        }
        let last = match client.get(url).send().await {
            Ok(resp) if resp.status().as_u16() == 200 => {
                if pid_file.is_none_or(|p| p.is_file()) {
                    return Ok(());
                }
                "answers, but has not written its pid file yet".to_string()
            }
            Ok(resp) => format!("HTTP {}", resp.status()),
            Err(e) => e.to_string(),
        };
        if started.elapsed() > STARTUP_LIMIT {
            bail!(
                "{} did not answer 200 on {url} within {STARTUP_LIMIT:?} (last: {last})",
                proc.name
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
