//! Agent configuration: a YAML file (DESIGN.md "bloud-agent contract"), every key overridable by
//! a `BLOUD_<UPPER_SNAKE>` environment variable (the environment wins; an empty variable counts
//! as unset, as upstream). Unknown keys are errors naming their key path and line, so a typo does
//! not silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bloud_common::yaml::line;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::yaml;

/// How the agent applies a new app set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildMode {
    /// `nixos-rebuild switch --flake path:<flake>#<target>`.
    Nixos { flake: PathBuf, target: String },
    /// An argv run instead (tests, development, the demo).
    Command { argv: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub apps_dir: PathBuf,
    pub data_dir: PathBuf,
    pub routes_dir: PathBuf,
    pub proxy_pid_file: PathBuf,
    pub web_dir: PathBuf,
    pub public_url: String,
    pub rebuild: RebuildMode,
    /// `rebuild.systemProfile`: None lists the agent's own generations (demo mode).
    pub system_profile: Option<PathBuf>,
    pub batch_window: Duration,
    /// The CLI's Unix socket (docs/agent.md "Authentication").
    pub socket: PathBuf,
    /// Group whose members may use the socket (besides root and the agent's own user).
    pub admin_group: String,
    pub login: LoginLimits,
    /// Apps whose routes skip Bloud's login (`publicApps`); everything else needs a session.
    pub public_apps: Vec<String>,
}

/// Failed-login backoff: after `max_failures` failures within `window`, an account (or a client)
/// gets 429 until the window has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub max_failures: u32,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            max_failures: 5,
            window: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}{line}: {key}: {message}", line = line.map(|l| format!(":{l}")).unwrap_or_default())]
    Key {
        file: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
}

/// One configurable key: its path in the YAML file and its environment variable.
struct Key {
    path: &'static [&'static str],
    env: &'static str,
    help: &'static str,
}

const KEYS: &[Key] = &[
    Key { path: &["listen"], env: "BLOUD_LISTEN", help: "address of the API and shell (default 127.0.0.1:3000)" },
    Key { path: &["appsDir"], env: "BLOUD_APPS_DIR", help: "catalog directory, apps/<name>/metadata.yaml (default ./apps)" },
    Key { path: &["dataDir"], env: "BLOUD_DATA_DIR", help: "SQLite database, nix/, rebuild logs (default /var/lib/bloud)" },
    Key { path: &["routesDir"], env: "BLOUD_ROUTES_DIR", help: "the proxy's route directory; apps-routes.yml is written here (default /var/lib/bloud/routes)" },
    Key { path: &["proxyPidFile"], env: "BLOUD_PROXY_PID_FILE", help: "bloud-proxy's pid file, sent SIGHUP after a routes change (default /run/bloud-proxy/bloud-proxy.pid); empty: no signal, the proxy's file watch reloads" },
    Key { path: &["webDir"], env: "BLOUD_WEB_DIR", help: "built web shell served at / (default ./web/dist)" },
    Key { path: &["publicUrl"], env: "BLOUD_PUBLIC_URL", help: "URL users open, forwarded to apps (default http://bloud.local)" },
    Key { path: &["rebuild", "mode"], env: "BLOUD_REBUILD_MODE", help: "nixos | command (default nixos)" },
    Key { path: &["rebuild", "flake"], env: "BLOUD_REBUILD_FLAKE", help: "nixos mode: flake directory (default /var/lib/bloud/flake)" },
    Key { path: &["rebuild", "target"], env: "BLOUD_REBUILD_TARGET", help: "nixos mode: nixosConfigurations name (default bloud)" },
    Key { path: &["rebuild", "command"], env: "BLOUD_REBUILD_COMMAND", help: "command mode: argv (YAML list; in the environment a JSON list or space-separated words)" },
    Key { path: &["rebuild", "systemProfile"], env: "BLOUD_REBUILD_SYSTEM_PROFILE", help: "NixOS system profile whose generations the history lists and rollbacks switch (the NixOS module sets /nix/var/nix/profiles/system); empty (default): the agent's own records, rollbacks simulated (demo)" },
    Key { path: &["publicApps"], env: "BLOUD_PUBLIC_APPS", help: "apps reachable without signing in to Bloud (YAML list; in the environment a JSON list or space/comma-separated names; default none)" },
    Key { path: &["queue", "batchWindow"], env: "BLOUD_QUEUE_BATCH_WINDOW", help: "how long the queue collects requests before running them (default 5s)" },
    Key { path: &["socket"], env: "BLOUD_SOCKET", help: "Unix socket of the CLI (install/uninstall), mode 0660 (default <dataDir>/agent.sock)" },
    Key { path: &["adminGroup"], env: "BLOUD_ADMIN_GROUP", help: "group whose members may use the socket, besides root and the agent's user (default bloud-admin)" },
    Key { path: &["login", "maxFailures"], env: "BLOUD_LOGIN_MAX_FAILURES", help: "failed logins per account and per client before 429 (default 5)" },
    Key { path: &["login", "window"], env: "BLOUD_LOGIN_WINDOW", help: "how long failed logins count and a locked account or client waits (default 5m)" },
];

/// Text for `--help`: every key with its variable.
pub fn keys_help() -> String {
    let mut out = String::new();
    for k in KEYS {
        out.push_str(&format!(
            "  {:<20} {:<26} {}\n",
            k.path.join("."),
            k.env,
            k.help
        ));
    }
    out
}

/// The file's keys, as written. Values keep their line for errors found after parsing (a bad
/// address, an unknown rebuild mode). `deny_unknown_fields` turns a typo into an error naming the
/// key path instead of a silent default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileConfig {
    listen: Option<Spanned<String>>,
    apps_dir: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    routes_dir: Option<Spanned<String>>,
    proxy_pid_file: Option<Spanned<String>>,
    web_dir: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
    rebuild: Option<RebuildSection>,
    queue: Option<QueueSection>,
    socket: Option<Spanned<String>>,
    admin_group: Option<Spanned<String>>,
    login: Option<LoginSection>,
    public_apps: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LoginSection {
    max_failures: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RebuildSection {
    mode: Option<Spanned<String>>,
    flake: Option<Spanned<String>>,
    target: Option<Spanned<String>>,
    command: Option<Spanned<Vec<String>>>,
    system_profile: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct QueueSection {
    batch_window: Option<Spanned<String>>,
}

impl FileConfig {
    /// The file's value of a string key of [`KEYS`], with its line.
    fn string(&self, path: &[&str]) -> Option<(String, Option<usize>)> {
        let v = match path {
            ["listen"] => self.listen.as_ref(),
            ["appsDir"] => self.apps_dir.as_ref(),
            ["dataDir"] => self.data_dir.as_ref(),
            ["routesDir"] => self.routes_dir.as_ref(),
            ["proxyPidFile"] => self.proxy_pid_file.as_ref(),
            ["webDir"] => self.web_dir.as_ref(),
            ["publicUrl"] => self.public_url.as_ref(),
            ["rebuild", "mode"] => self.rebuild.as_ref()?.mode.as_ref(),
            ["rebuild", "flake"] => self.rebuild.as_ref()?.flake.as_ref(),
            ["rebuild", "target"] => self.rebuild.as_ref()?.target.as_ref(),
            ["rebuild", "systemProfile"] => self.rebuild.as_ref()?.system_profile.as_ref(),
            ["queue", "batchWindow"] => self.queue.as_ref()?.batch_window.as_ref(),
            ["socket"] => self.socket.as_ref(),
            ["adminGroup"] => self.admin_group.as_ref(),
            ["login", "maxFailures"] => self.login.as_ref()?.max_failures.as_ref(),
            ["login", "window"] => self.login.as_ref()?.window.as_ref(),
            _ => None,
        }?;
        Some((v.value.clone(), line(&v.referenced)))
    }
}

impl Config {
    /// Reads `file` (when given) and applies the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, |name| std::env::var(name).ok())
    }

    /// Like [`Config::load`] with an explicit environment (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (text, name) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                (text, path.display().to_string())
            }
            None => (String::new(), "<no config file>".to_string()),
        };
        Self::parse(&text, &name, env)
    }

    /// Parses YAML `text` (from `file`, for messages) and applies `env`.
    pub fn parse(
        text: &str,
        file: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let doc: FileConfig = yaml::parse(text)
            .map_err(|e| {
                if e.path.is_empty() {
                    ConfigError::Parse {
                        file: file.to_string(),
                        message: e.to_string(),
                    }
                } else {
                    ConfigError::Key {
                        file: file.to_string(),
                        line: e.line,
                        // A `Spanned` value is read as a map with a `value` entry, which shows
                        // up in the path (`listen.value`); no key of this file is named `value`.
                        key: e.path.replace(".value", ""),
                        message: e.message,
                    }
                }
            })?
            .unwrap_or_default();
        Reader {
            file,
            doc: &doc,
            env: &env,
        }
        .build()
    }
}

struct Reader<'a, E: Fn(&str) -> Option<String>> {
    file: &'a str,
    doc: &'a FileConfig,
    env: &'a E,
}

/// A value found for a key, with the line it is written on when it comes from the file.
struct Found {
    value: String,
    line: Option<usize>,
}

impl<E: Fn(&str) -> Option<String>> Reader<'_, E> {
    fn err(&self, key: &str, line: Option<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            file: self.file.to_string(),
            line,
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn env(&self, path: &[&str]) -> Option<String> {
        let key = KEYS.iter().find(|k| k.path == path)?;
        (self.env)(key.env).filter(|v| !v.is_empty())
    }

    /// The environment's value, else the file's, else `default`.
    fn string(&self, path: &[&str], default: &str) -> Found {
        if let Some(value) = self.env(path) {
            return Found { value, line: None };
        }
        match self.doc.string(path) {
            Some((value, line)) => Found { value, line },
            None => Found {
                value: default.to_string(),
                line: None,
            },
        }
    }

    fn build(&self) -> Result<Config, ConfigError> {
        let listen_s = self.string(&["listen"], "127.0.0.1:3000");
        let listen: SocketAddr = listen_s.value.parse().map_err(|_| {
            self.err(
                "listen",
                listen_s.line,
                format!("`{}` is not an address like 127.0.0.1:3000", listen_s.value),
            )
        })?;
        let data_dir = PathBuf::from(self.string(&["dataDir"], "/var/lib/bloud").value);
        let routes_default = data_dir.join("routes").display().to_string();
        let mode = self.string(&["rebuild", "mode"], "nixos");
        let rebuild = match mode.value.as_str() {
            "nixos" => RebuildMode::Nixos {
                flake: PathBuf::from(
                    self.string(&["rebuild", "flake"], "/var/lib/bloud/flake")
                        .value,
                ),
                target: self.string(&["rebuild", "target"], "bloud").value,
            },
            "command" => {
                let (argv, line) = self.command()?;
                if argv.is_empty() {
                    return Err(self.err(
                        "rebuild.command",
                        line.or(mode.line),
                        "mode `command` needs a non-empty argv, e.g. [./demo/rebuild.sh]",
                    ));
                }
                RebuildMode::Command { argv }
            }
            other => {
                return Err(self.err(
                    "rebuild.mode",
                    mode.line,
                    format!("`{other}` is not a rebuild mode; use nixos or command"),
                ))
            }
        };
        let window = self.string(&["queue", "batchWindow"], "5s");
        let batch_window = parse_duration(&window.value).ok_or_else(|| {
            self.err(
                "queue.batchWindow",
                window.line,
                format!("`{}` is not a duration like 5s, 500ms or 1m", window.value),
            )
        })?;
        let public_url = self.string(&["publicUrl"], "http://bloud.local");
        if !(public_url.value.starts_with("http://") || public_url.value.starts_with("https://")) {
            return Err(self.err(
                "publicUrl",
                public_url.line,
                format!("`{}` must start with http:// or https://", public_url.value),
            ));
        }
        let socket = self.string(&["socket"], "");
        let socket = if socket.value.is_empty() {
            data_dir.join("agent.sock")
        } else {
            PathBuf::from(socket.value)
        };
        let login = self.login()?;
        Ok(Config {
            listen,
            socket,
            admin_group: self.string(&["adminGroup"], "bloud-admin").value,
            login,
            apps_dir: PathBuf::from(self.string(&["appsDir"], "./apps").value),
            routes_dir: PathBuf::from(self.string(&["routesDir"], &routes_default).value),
            proxy_pid_file: PathBuf::from(
                self.string(&["proxyPidFile"], "/run/bloud-proxy/bloud-proxy.pid")
                    .value,
            ),
            web_dir: PathBuf::from(self.string(&["webDir"], "./web/dist").value),
            data_dir,
            public_url: public_url.value,
            rebuild,
            system_profile: Some(self.string(&["rebuild", "systemProfile"], "").value)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            batch_window,
            public_apps: self.public_apps()?,
        })
    }

    fn login(&self) -> Result<LoginLimits, ConfigError> {
        let defaults = LoginLimits::default();
        let max = self.string(
            &["login", "maxFailures"],
            &defaults.max_failures.to_string(),
        );
        let max_failures = max
            .value
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                self.err(
                    "login.maxFailures",
                    max.line,
                    format!("`{}` is not a whole number of at least 1", max.value),
                )
            })?;
        let window = self.string(&["login", "window"], "5m");
        let window_d = parse_duration(&window.value)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                self.err(
                    "login.window",
                    window.line,
                    format!("`{}` is not a duration like 5m, 30s or 1h", window.value),
                )
            })?;
        Ok(LoginLimits {
            max_failures,
            window: window_d,
        })
    }

    /// `publicApps`: the environment's list (JSON or words), else the file's.
    fn public_apps(&self) -> Result<Vec<String>, ConfigError> {
        let mut apps = match self.env(&["publicApps"]) {
            Some(s) if s.trim_start().starts_with('[') => serde_json::from_str::<Vec<String>>(&s)
                .map_err(|e| {
                self.err(
                    "publicApps",
                    None,
                    format!("BLOUD_PUBLIC_APPS is not a JSON list of app names: {e}"),
                )
            })?,
            Some(s) => s
                .split([',', ' ', '\t', '\n'])
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
            None => self.doc.public_apps.clone().unwrap_or_default(),
        };
        apps.sort();
        apps.dedup();
        Ok(apps)
    }

    /// The rebuild argv and the line it is written on.
    fn command(&self) -> Result<(Vec<String>, Option<usize>), ConfigError> {
        if let Some(s) = self.env(&["rebuild", "command"]) {
            if s.trim_start().starts_with('[') {
                let argv = serde_json::from_str::<Vec<String>>(&s).map_err(|e| {
                    self.err(
                        "rebuild.command",
                        None,
                        format!("BLOUD_REBUILD_COMMAND is not a JSON list of strings: {e}"),
                    )
                })?;
                return Ok((argv, None));
            }
            return Ok((s.split_whitespace().map(str::to_string).collect(), None));
        }
        let command = self.doc.rebuild.as_ref().and_then(|r| r.command.as_ref());
        Ok(match command {
            Some(c) => (c.value.clone(), line(&c.referenced)),
            None => (Vec::new(), None),
        })
    }
}

/// `500ms`, `5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: f64 = num.parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(text, "agent.yaml", |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_design() {
        let c = parse("", &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/bloud"));
        assert_eq!(c.routes_dir, PathBuf::from("/var/lib/bloud/routes"));
        assert_eq!(c.batch_window, Duration::from_secs(5));
        assert_eq!(c.socket, PathBuf::from("/var/lib/bloud/agent.sock"));
        assert_eq!(c.admin_group, "bloud-admin");
        assert_eq!(c.login, LoginLimits::default());
        assert_eq!(
            c.rebuild,
            RebuildMode::Nixos {
                flake: "/var/lib/bloud/flake".into(),
                target: "bloud".into()
            }
        );
    }

    #[test]
    fn an_empty_proxy_pid_file_turns_the_signal_off() {
        // The NixOS module writes `proxyPidFile: ""`: the agent may not signal the proxy there.
        let c = parse("proxyPidFile: \"\"\n", &[]).unwrap();
        assert!(c.proxy_pid_file.as_os_str().is_empty());
        let c = parse("", &[]).unwrap();
        assert_eq!(
            c.proxy_pid_file,
            PathBuf::from("/run/bloud-proxy/bloud-proxy.pid")
        );
    }

    #[test]
    fn environment_wins_over_the_file() {
        let text = "listen: 127.0.0.1:4000\nqueue:\n  batchWindow: 2s\nrebuild:\n  mode: command\n  command: [a, b]\n";
        let c = parse(
            text,
            &[
                ("BLOUD_LISTEN", "127.0.0.1:5000"),
                ("BLOUD_QUEUE_BATCH_WINDOW", "250ms"),
                ("BLOUD_REBUILD_COMMAND", r#"["sh","-c","echo hi"]"#),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 5000);
        assert_eq!(c.batch_window, Duration::from_millis(250));
        assert_eq!(
            c.rebuild,
            RebuildMode::Command {
                argv: vec!["sh".into(), "-c".into(), "echo hi".into()]
            }
        );
        // An empty variable is unset: the file's value stays.
        let c = parse(text, &[("BLOUD_LISTEN", "")]).unwrap();
        assert_eq!(c.listen.port(), 4000);
    }

    #[test]
    fn unknown_keys_are_errors_with_path_and_line() {
        let err = parse(
            "listen: 127.0.0.1:1\nrebuild:\n  mode: nixos\n  flak: /x\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("agent.yaml:4: rebuild.flak: unknown key"),
            "{err}"
        );
        assert!(err.contains("flake"), "{err}");
        let err = parse("dataDirectory: /x\n", &[]).unwrap_err().to_string();
        assert!(err.contains("dataDirectory: unknown key"), "{err}");
    }

    /// Keys whose value is a list (tested on their own).
    const LIST_KEYS: &[&[&str]] = &[&["rebuild", "command"], &["publicApps"]];

    #[test]
    fn public_apps_from_the_file_or_the_environment() {
        let c = parse("publicApps: [jellyfin, adguard-home, jellyfin]\n", &[]).unwrap();
        assert_eq!(c.public_apps, ["adguard-home", "jellyfin"]);
        assert!(
            parse("", &[]).unwrap().public_apps.is_empty(),
            "none by default"
        );
        let c = parse("publicApps: [a]\n", &[("BLOUD_PUBLIC_APPS", "b, c d")]).unwrap();
        assert_eq!(c.public_apps, ["b", "c", "d"]);
        let c = parse("", &[("BLOUD_PUBLIC_APPS", "[\"x\"]")]).unwrap();
        assert_eq!(c.public_apps, ["x"]);
        let err = parse("", &[("BLOUD_PUBLIC_APPS", "[x")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BLOUD_PUBLIC_APPS is not a JSON list"),
            "{err}"
        );
        let err = parse("publicApps: jellyfin\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("publicApps"), "{err}");
    }

    #[test]
    fn every_documented_key_is_read_from_the_file() {
        let mut text = String::new();
        for (i, k) in KEYS.iter().enumerate() {
            if LIST_KEYS.contains(&k.path) {
                continue;
            }
            match k.path {
                [key] => text.push_str(&format!("{key}: v{i}\n")),
                [section, key] => text.push_str(&format!("{section}: {{{key}: v{i}}}\n")),
                _ => unreachable!("keys are at most two deep"),
            }
        }
        // Sections repeat above; read each line alone so every key is checked.
        for (i, line) in text.lines().enumerate() {
            let doc: FileConfig = yaml::parse(line).unwrap().unwrap();
            let k = KEYS
                .iter()
                .filter(|k| !LIST_KEYS.contains(&k.path))
                .nth(i)
                .unwrap();
            assert!(
                doc.string(k.path)
                    .is_some_and(|(v, l)| v.starts_with('v') && l == Some(1)),
                "{} is documented but not read",
                k.path.join(".")
            );
        }
    }

    #[test]
    fn value_errors_point_at_the_line() {
        let err = parse("listen: 127.0.0.1:1\nqueue:\n  batchWindow: soon\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("agent.yaml:3: queue.batchWindow: `soon`"),
            "{err}"
        );
        // Type errors inside a value name the element.
        let err = parse("rebuild:\n  mode: command\n  command: [a, [b]]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("agent.yaml:3: rebuild.command[1]: "),
            "{err}"
        );
        // From the environment there is no line to name.
        let err = parse("", &[("BLOUD_LISTEN", "everywhere")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("agent.yaml: listen: `everywhere`"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = parse("queue: {batchWindow: soon}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("queue.batchWindow"), "{err}");
        let err = parse("rebuild: {mode: docker}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rebuild.mode") && err.contains("docker"),
            "{err}"
        );
        let err = parse("rebuild: {mode: command}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("rebuild.command"), "{err}");
        let err = parse("listen: everywhere\n", &[]).unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn socket_group_and_login_limits() {
        let c = parse(
            "dataDir: /d\nadminGroup: wheel\nlogin:\n  maxFailures: 3\n  window: 2s\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.socket, PathBuf::from("/d/agent.sock"));
        assert_eq!(c.admin_group, "wheel");
        assert_eq!(
            c.login,
            LoginLimits {
                max_failures: 3,
                window: Duration::from_secs(2)
            }
        );
        let c = parse("socket: /run/x.sock\n", &[("BLOUD_SOCKET", "/run/y.sock")]).unwrap();
        assert_eq!(c.socket, PathBuf::from("/run/y.sock"));
        let err = parse("login:\n  maxFailures: 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("agent.yaml:2: login.maxFailures: `0`"),
            "{err}"
        );
        let err = parse("login: {window: never}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("login.window"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1 fortnight"), None);
    }
}
