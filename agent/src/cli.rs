//! Command line: `serve`, the `install`/`uninstall` client of the agent's Unix socket, and the
//! demo helpers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{keys_help, Config};

const ABOUT: &str = "Bloud's host agent: app catalog, install plans, the operation queue, \
NixOS rebuilds, proxy routes, health checks, and the API and web shell on loopback.";

#[derive(Debug, Parser)]
#[command(name = "bloud-agent", version, about = ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent (API and shell on `listen`, 127.0.0.1:3000 by default).
    Serve {
        /// YAML config file; without it, defaults and BLOUD_* variables are used.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Install a catalog app through the running agent and wait for the result, printing the
    /// rebuild log as it runs. Talks to the agent over its Unix socket (setting `socket`):
    /// root, the agent's user and members of `adminGroup` (bloud-admin) may, without a login.
    Install {
        /// App name, as in the catalog (e.g. miniflux).
        app: String,
        /// Pick the app for an integration: --choice database=postgres (repeatable).
        #[arg(long = "choice", value_name = "INTEGRATION=APP", value_parser = parse_choice)]
        choices: Vec<(String, String)>,
        #[command(flatten)]
        target: Target,
    },
    /// Uninstall an app through the running agent and wait for the result.
    Uninstall {
        app: String,
        /// Also delete the app's data directory (<dataDir>/<app>).
        #[arg(long)]
        clear_data: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Demo mode: a tiny web app standing in for a real one (used by demo-rebuild).
    DemoApp {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        name: String,
        /// The demo rebuild's directory that owns this app (how it finds its apps again).
        #[arg(long)]
        run_dir: Option<PathBuf>,
    },
    /// Demo mode: the rebuild command. Starts a demo app on the catalog port of every enabled
    /// app in apps-state.json and stops the others (reads the BLOUD_* variables the agent sets).
    DemoRebuild {
        /// A rollback to this generation: the agent has already written its app set; the demo
        /// only says so and brings the demo apps in line, as the root helper does on NixOS.
        #[arg(long)]
        rollback: Option<u32>,
    },
    /// Demo mode: stops every demo app started for a demo rebuild directory
    /// (`<dataDir>/demo`), waiting until they have exited. `scripts/run` calls it on exit.
    DemoStop {
        #[arg(long)]
        run_dir: PathBuf,
    },
    /// Root side of a rebuild (run by `bloud-rebuild`): reads the agent's app list once
    /// (refusing symlinks anywhere on its path, FIFOs, hard links and big files), accepts only
    /// names of the catalog, and prints the Nix module enabling them. Errors name the line,
    /// never its content. A missing list prints a module with no apps.
    AppsNix {
        /// Catalog directory (the Nix store copy, not the agent's).
        #[arg(long)]
        catalog: PathBuf,
        /// The agent's apps.list (absolute path).
        #[arg(long)]
        list: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct Target {
    /// The agent's Unix socket (default: `socket` from --config, BLOUD_SOCKET, else
    /// <dataDir>/agent.sock).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// The agent's config file, to find its socket (default /etc/bloud/agent.yaml if present).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// The config file NixOS writes; the CLI reads it when no --config is given.
pub const SYSTEM_CONFIG: &str = "/etc/bloud/agent.yaml";

fn parse_choice(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not INTEGRATION=APP"))
}

/// Parses argv, with the config key table appended to `--help`.
pub fn parse() -> Cli {
    let help = format!(
        "Config keys (YAML file; each also a BLOUD_* environment variable, which wins):\n{}\n\
         Relative paths are relative to the working directory.\n\n\
         Examples:\n  bloud-agent serve --config /etc/bloud/agent.yaml\n  \
         bloud-agent serve --config demo/agent.yaml     # demo mode, from the repository root\n  \
         bloud-agent install miniflux\n  bloud-agent uninstall miniflux --clear-data",
        keys_help()
    );
    let matches = Cli::command()
        .after_long_help(help.clone())
        .mut_subcommand("serve", |c| c.after_long_help(help))
        .get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

impl Target {
    pub fn socket_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(socket) = &self.socket {
            return Ok(socket.clone());
        }
        let system = std::path::Path::new(SYSTEM_CONFIG);
        let file = match &self.config {
            Some(c) => Some(c.as_path()),
            None if system.is_file() => Some(system),
            None => None,
        };
        Ok(Config::load(file)?.socket)
    }
}

/// The CLI's HTTP client: every request goes over the agent's Unix socket (the URL's host only
/// fills the Host header).
pub struct AgentClient {
    socket: PathBuf,
    http: reqwest::Client,
}

const BASE: &str = "http://localhost";

impl AgentClient {
    pub fn new(socket: PathBuf) -> anyhow::Result<AgentClient> {
        let http = reqwest::Client::builder()
            .unix_socket(socket.clone())
            .build()?;
        Ok(AgentClient { socket, http })
    }

    /// What went wrong reaching the socket, and what to do about it.
    fn unreachable(&self, e: &reqwest::Error) -> anyhow::Error {
        let path = self.socket.display();
        let mut source: Option<&dyn std::error::Error> = Some(e);
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
                        "permission denied on bloud-agent's socket {path}: run as root or add your \
                         user to the agent's admin group (bloud-admin by default), then log in again"
                    ),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                        anyhow::anyhow!(
                            "no bloud-agent listening on {path}: is it running (bloud-agent serve)? \
                             Otherwise pass its socket with --socket or its config with --config"
                        )
                    }
                    _ => anyhow::anyhow!("cannot reach bloud-agent on {path}: {io}"),
                };
            }
            source = err.source();
        }
        anyhow::anyhow!("cannot reach bloud-agent on {path}: {e}")
    }
}

/// `install` / `uninstall`: POST to the API, print the rebuild log meanwhile.
pub async fn run_operation(
    agent: &AgentClient,
    app: &str,
    install: bool,
    choices: BTreeMap<String, String>,
    clear_data: bool,
) -> anyhow::Result<bool> {
    let client = &agent.http;
    // Rebuilds up to this one are history; only newer ones are printed.
    let latest = client
        .get(format!("{BASE}/api/rebuilds/latest"))
        .send()
        .await
        .map_err(|e| agent.unreachable(&e))?;
    if latest.status() == reqwest::StatusCode::FORBIDDEN {
        let v: serde_json::Value = latest.json().await.unwrap_or_default();
        let why = v["error"].as_str().unwrap_or("refused by bloud-agent");
        anyhow::bail!("{why}");
    }
    let after: i64 = if latest.status().is_success() {
        latest
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["id"].as_i64())
            .unwrap_or(0)
    } else {
        0
    };
    let follower = tokio::spawn(follow_log(client.clone(), after));

    let (path, body) = if install {
        let body = if choices.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::json!({ "choices": choices })
        };
        ("install", body)
    } else {
        ("uninstall", serde_json::json!({ "clearData": clear_data }))
    };
    eprintln!("{path} {app}: queued; waiting for the agent…");
    let resp = client
        .post(format!("{BASE}/api/apps/{app}/{path}"))
        .json(&body)
        .send()
        .await
        .map_err(|e| agent.unreachable(&e))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    follower.abort();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    let ok = status.is_success() && v["success"].as_bool() == Some(true);
    if ok {
        let apps = v["appsInstalled"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        if install {
            println!("installed {app} (enabled: {apps}); it starts in the background");
        } else {
            println!("uninstalled {app}");
        }
    } else {
        let err = v["error"].as_str().map(str::to_string).unwrap_or(text);
        eprintln!("{path} {app} failed (HTTP {}): {err}", status.as_u16());
    }
    Ok(ok)
}

async fn follow_log(client: reqwest::Client, after: i64) {
    let Ok(mut resp) = client
        .get(format!("{BASE}/api/rebuilds/stream"))
        .send()
        .await
    else {
        return;
    };
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let Ok(ev) = serde_json::from_str::<serde_json::Value>(data.trim_start()) else {
                continue;
            };
            if ev["rebuildId"].as_i64().unwrap_or(0) <= after {
                continue;
            }
            if let Some(msg) = ev["message"].as_str() {
                eprintln!("  | {msg}");
            }
        }
    }
}
