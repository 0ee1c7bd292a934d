//! The files of a test system, written the way an operator would set up a box (docs/proxy.md
//! and docs/agent.md, scripts/run): the proxy's static config and
//! routes directory with the base routes, the agent's config in demo `command` rebuild mode, and a
//! copy of the catalog whose app ports are free ports of this machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::ports::free_ports;

/// Ports of one attempt to start a system.
#[derive(Debug, Clone)]
pub struct Ports {
    pub web: u16,
    pub admin: u16,
    pub agent: u16,
    /// App name -> the port its demo app listens on.
    pub apps: BTreeMap<String, u16>,
}

pub struct Layout {
    pub dir: PathBuf,
    pub routes_dir: PathBuf,
    pub data_dir: PathBuf,
    pub apps_dir: PathBuf,
    pub log_dir: PathBuf,
    pub proxy_config: PathBuf,
    pub agent_config: PathBuf,
    pub pid_file: PathBuf,
    pub web_dir: PathBuf,
}

/// The catalog apps that have a `port:` (the ones the demo starts a web app for).
pub fn catalog_apps_with_port(catalog: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(catalog)
        .with_context(|| format!("reading the catalog {}", catalog.display()))?
    {
        let entry = entry.with_context(|| format!("reading {}", catalog.display()))?;
        let meta = entry.path().join("metadata.yaml");
        if !meta.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&meta)
            .with_context(|| format!("reading {}", meta.display()))?;
        if top_level_port(&text).is_some() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn top_level_port(text: &str) -> Option<u16> {
    text.lines()
        .find_map(|l| l.strip_prefix("port:"))
        .and_then(|v| v.split('#').next())
        .and_then(|v| v.trim().parse().ok())
}

impl Layout {
    pub fn new(dir: &Path) -> anyhow::Result<Layout> {
        let layout = Layout {
            dir: dir.to_path_buf(),
            routes_dir: dir.join("routes"),
            data_dir: dir.join("data"),
            apps_dir: dir.join("apps"),
            log_dir: dir.join("log"),
            proxy_config: dir.join("proxy.yml"),
            agent_config: dir.join("agent.yaml"),
            pid_file: dir.join("bloud-proxy.pid"),
            web_dir: super::repo_root().join("web").join("dist"),
        };
        for d in [&layout.routes_dir, &layout.data_dir, &layout.log_dir] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(layout)
    }

    /// Picks free ports for the proxy, its admin entry point, the agent and every catalog app.
    pub fn pick_ports(&self, apps: &[String]) -> anyhow::Result<Ports> {
        let mut ports = free_ports(3 + apps.len())?.into_iter();
        let mut next = || ports.next().context("free_ports returned too few ports");
        Ok(Ports {
            web: next()?,
            admin: next()?,
            agent: next()?,
            apps: apps
                .iter()
                .map(|a| Ok((a.clone(), next()?)))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    /// Writes every file for `ports` (again on each retry: the ports are in them).
    pub fn write(&self, ports: &Ports, agent_exe: &Path) -> anyhow::Result<()> {
        self.write_catalog(ports)?;
        self.write_base_routes(ports)?;
        self.write_proxy_config(ports)?;
        self.write_agent_config(ports, agent_exe)
    }

    /// Copies the repository's catalog; each app's `port:` (and its own upstream URLs in
    /// `traefikConfig`) becomes the free port picked for it, so tests running at the same time,
    /// or a real service on 3080/8096, never collide with the demo apps.
    fn write_catalog(&self, ports: &Ports) -> anyhow::Result<()> {
        let source = super::repo_root().join("apps");
        if self.apps_dir.exists() {
            std::fs::remove_dir_all(&self.apps_dir)
                .with_context(|| format!("removing {}", self.apps_dir.display()))?;
        }
        for entry in std::fs::read_dir(&source)
            .with_context(|| format!("reading the catalog {}", source.display()))?
        {
            let entry = entry.with_context(|| format!("reading {}", source.display()))?;
            let from = entry.path();
            if !from.join("metadata.yaml").is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let to = self.apps_dir.join(&name);
            std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
            for file in
                std::fs::read_dir(&from).with_context(|| format!("reading {}", from.display()))?
            {
                let file = file.with_context(|| format!("reading {}", from.display()))?;
                if !file.path().is_file() {
                    continue;
                }
                let dest = to.join(file.file_name());
                if file.file_name() == "metadata.yaml" {
                    let text = std::fs::read_to_string(file.path())
                        .with_context(|| format!("reading {}", file.path().display()))?;
                    let text = match (top_level_port(&text), ports.apps.get(&name)) {
                        (Some(old), Some(new)) => with_port(&text, old, *new),
                        _ => text,
                    };
                    std::fs::write(&dest, text)
                        .with_context(|| format!("writing {}", dest.display()))?;
                } else {
                    std::fs::copy(file.path(), &dest).with_context(|| {
                        format!("copying {} to {}", file.path().display(), dest.display())
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The repository's base routes with the agent's port instead of 3000.
    fn write_base_routes(&self, ports: &Ports) -> anyhow::Result<()> {
        let source = super::repo_root().join("config/routes/base.yml");
        let text = std::fs::read_to_string(&source)
            .with_context(|| format!("reading {}", source.display()))?;
        let default_agent = "http://127.0.0.1:3000";
        if !text.contains(default_agent) {
            bail!(
                "{} no longer points the host-agent service at {default_agent}; update the e2e \
                 harness (tests/support/layout.rs) to the new base routes",
                source.display()
            );
        }
        let text = text.replace(default_agent, &format!("http://127.0.0.1:{}", ports.agent));
        let dest = self.routes_dir.join("base.yml");
        std::fs::write(&dest, text).with_context(|| format!("writing {}", dest.display()))
    }

    fn write_proxy_config(&self, ports: &Ports) -> anyhow::Result<()> {
        // watch: false, so a routes change reaches the proxy only through the agent's SIGHUP.
        let text = format!(
            "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\", forwardedHeaders: {{ trustedIPs: [] }} }}\n  \
             admin: {{ address: \"127.0.0.1:{admin}\" }}\n\
             providers:\n  file: {{ directory: \"{routes}\", watch: false }}\n\
             ping: {{ entryPoint: web }}\n\
             metrics: {{ prometheus: {{ entryPoint: admin }} }}\n\
             api: {{ entryPoint: admin }}\n\
             accessLog: {{ filePath: \"{access}\", format: json }}\n\
             log: {{ level: info }}\n\
             pidFile: \"{pid}\"\n\
             lifeCycle: {{ graceTimeOut: 2s }}\n",
            web = ports.web,
            admin = ports.admin,
            routes = self.routes_dir.display(),
            access = self.log_dir.join("access.log").display(),
            pid = self.pid_file.display(),
        );
        std::fs::write(&self.proxy_config, text)
            .with_context(|| format!("writing {}", self.proxy_config.display()))
    }

    /// The agent's Unix socket (the CLI's way in).
    pub fn agent_socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    fn write_agent_config(&self, ports: &Ports, agent_exe: &Path) -> anyhow::Result<()> {
        let text = format!(
            "listen: 127.0.0.1:{agent}\n\
             appsDir: \"{apps}\"\n\
             dataDir: \"{data}\"\n\
             routesDir: \"{routes}\"\n\
             proxyPidFile: \"{pid}\"\n\
             webDir: \"{web_dir}\"\n\
             publicUrl: \"http://127.0.0.1:{web}\"\n\
             rebuild:\n  mode: command\n  command: [\"{exe}\", demo-rebuild]\n\
             queue:\n  batchWindow: 200ms\n\
             socket: \"{socket}\"\n",
            agent = ports.agent,
            apps = self.apps_dir.display(),
            data = self.data_dir.display(),
            routes = self.routes_dir.display(),
            pid = self.pid_file.display(),
            web_dir = self.web_dir.display(),
            web = ports.web,
            exe = agent_exe.display(),
            socket = self.agent_socket().display(),
        );
        std::fs::write(&self.agent_config, text)
            .with_context(|| format!("writing {}", self.agent_config.display()))
    }
}

/// `text` with the top-level `port: old` and `127.0.0.1:old` URLs moved to `new`.
fn with_port(text: &str, old: u16, new: u16) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("port:") {
                format!("port: {new}")
            } else {
                l.replace(&format!("127.0.0.1:{old}"), &format!("127.0.0.1:{new}"))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
