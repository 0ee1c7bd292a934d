//! Agent configuration: a YAML file (DESIGN.md "bloud-agent contract"), every key overridable by
//! a `BLOUD_<UPPER_SNAKE>` environment variable (the environment wins; an empty variable counts
//! as unset, as upstream). Unknown keys are errors naming their key path and line, so a typo does
//! not silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::{Mapping, Value};

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
    pub batch_window: Duration,
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
    Key { path: &["proxyPidFile"], env: "BLOUD_PROXY_PID_FILE", help: "bloud-proxy's pid file, sent SIGHUP after a routes change (default /run/bloud-proxy/bloud-proxy.pid)" },
    Key { path: &["webDir"], env: "BLOUD_WEB_DIR", help: "built web shell served at / (default ./web/dist)" },
    Key { path: &["publicUrl"], env: "BLOUD_PUBLIC_URL", help: "URL users open, forwarded to apps (default http://bloud.local)" },
    Key { path: &["rebuild", "mode"], env: "BLOUD_REBUILD_MODE", help: "nixos | command (default nixos)" },
    Key { path: &["rebuild", "flake"], env: "BLOUD_REBUILD_FLAKE", help: "nixos mode: flake directory (default /var/lib/bloud/flake)" },
    Key { path: &["rebuild", "target"], env: "BLOUD_REBUILD_TARGET", help: "nixos mode: nixosConfigurations name (default bloud)" },
    Key { path: &["rebuild", "command"], env: "BLOUD_REBUILD_COMMAND", help: "command mode: argv (YAML list; in the environment a JSON list or space-separated words)" },
    Key { path: &["queue", "batchWindow"], env: "BLOUD_QUEUE_BATCH_WINDOW", help: "how long the queue collects requests before running them (default 5s)" },
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
        let doc: Value = if text.trim().is_empty() {
            Value::Mapping(Mapping::new())
        } else {
            serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
                file: file.to_string(),
                message: e.to_string(),
            })?
        };
        let doc = match doc {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            _ => {
                return Err(ConfigError::Parse {
                    file: file.to_string(),
                    message: "the config must be a mapping of keys (listen, appsDir, …)".into(),
                })
            }
        };
        let mut reader = Reader {
            file,
            text,
            doc: &doc,
            env: &env,
        };
        reader.check_unknown(&doc, &[])?;
        reader.build()
    }
}

struct Reader<'a, E: Fn(&str) -> Option<String>> {
    file: &'a str,
    text: &'a str,
    doc: &'a Mapping,
    env: &'a E,
}

/// A value found for a key: from the file or from the environment.
enum Found {
    File(Value),
    Env(String),
}

impl<E: Fn(&str) -> Option<String>> Reader<'_, E> {
    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let last = key.rsplit('.').next().unwrap_or(key);
        ConfigError::Key {
            file: self.file.to_string(),
            line: line_of_key(self.text, last),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn check_unknown(&mut self, map: &Mapping, prefix: &[&str]) -> Result<(), ConfigError> {
        for (k, v) in map {
            let Some(k) = k.as_str() else {
                return Err(self.err(&prefix.join("."), "keys must be strings"));
            };
            let mut path: Vec<&str> = prefix.to_vec();
            path.push(k);
            let is_leaf = KEYS.iter().any(|key| key.path == path.as_slice());
            let is_section = KEYS
                .iter()
                .any(|key| key.path.len() > path.len() && key.path[..path.len()] == path[..]);
            if is_leaf {
                continue;
            }
            if is_section {
                match v {
                    Value::Mapping(m) => self.check_unknown(m, &path)?,
                    Value::Null => {}
                    _ => return Err(self.err(&path.join("."), "must be a mapping")),
                }
                continue;
            }
            let known: Vec<String> = KEYS
                .iter()
                .filter(|key| key.path.len() > prefix.len() && key.path[..prefix.len()] == *prefix)
                .map(|key| key.path[prefix.len()].to_string())
                .fold(Vec::new(), |mut acc, s| {
                    if !acc.contains(&s) {
                        acc.push(s);
                    }
                    acc
                });
            return Err(self.err(
                &path.join("."),
                format!("unknown key; known keys here: {}", known.join(", ")),
            ));
        }
        Ok(())
    }

    fn find(&self, path: &[&str]) -> Option<Found> {
        let key = KEYS.iter().find(|k| k.path == path)?;
        if let Some(v) = (self.env)(key.env).filter(|v| !v.is_empty()) {
            return Some(Found::Env(v));
        }
        let mut cur = self.doc;
        for (i, part) in path.iter().enumerate() {
            let v = cur.get(*part)?;
            if i + 1 == path.len() {
                return (!v.is_null()).then(|| Found::File(v.clone()));
            }
            cur = v.as_mapping()?;
        }
        None
    }

    fn string(&self, path: &[&str], default: &str) -> Result<String, ConfigError> {
        match self.find(path) {
            None => Ok(default.to_string()),
            Some(Found::Env(s)) => Ok(s),
            Some(Found::File(Value::String(s))) => Ok(s),
            Some(Found::File(Value::Number(n))) => Ok(n.to_string()),
            Some(Found::File(_)) => Err(self.err(&path.join("."), "must be a string")),
        }
    }

    fn build(&mut self) -> Result<Config, ConfigError> {
        let listen_s = self.string(&["listen"], "127.0.0.1:3000")?;
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            self.err(
                "listen",
                format!("`{listen_s}` is not an address like 127.0.0.1:3000"),
            )
        })?;
        let data_dir = PathBuf::from(self.string(&["dataDir"], "/var/lib/bloud")?);
        let routes_default = data_dir.join("routes").display().to_string();
        let mode = self.string(&["rebuild", "mode"], "nixos")?;
        let rebuild = match mode.as_str() {
            "nixos" => RebuildMode::Nixos {
                flake: PathBuf::from(self.string(&["rebuild", "flake"], "/var/lib/bloud/flake")?),
                target: self.string(&["rebuild", "target"], "bloud")?,
            },
            "command" => {
                let argv = self.command()?;
                if argv.is_empty() {
                    return Err(self.err(
                        "rebuild.command",
                        "mode `command` needs a non-empty argv, e.g. [./demo/rebuild.sh]",
                    ));
                }
                RebuildMode::Command { argv }
            }
            other => {
                return Err(self.err(
                    "rebuild.mode",
                    format!("`{other}` is not a rebuild mode; use nixos or command"),
                ))
            }
        };
        let window = self.string(&["queue", "batchWindow"], "5s")?;
        let batch_window = parse_duration(&window).ok_or_else(|| {
            self.err(
                "queue.batchWindow",
                format!("`{window}` is not a duration like 5s, 500ms or 1m"),
            )
        })?;
        let public_url = self.string(&["publicUrl"], "http://bloud.local")?;
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(self.err(
                "publicUrl",
                format!("`{public_url}` must start with http:// or https://"),
            ));
        }
        Ok(Config {
            listen,
            apps_dir: PathBuf::from(self.string(&["appsDir"], "./apps")?),
            routes_dir: PathBuf::from(self.string(&["routesDir"], &routes_default)?),
            proxy_pid_file: PathBuf::from(
                self.string(&["proxyPidFile"], "/run/bloud-proxy/bloud-proxy.pid")?,
            ),
            web_dir: PathBuf::from(self.string(&["webDir"], "./web/dist")?),
            data_dir,
            public_url,
            rebuild,
            batch_window,
        })
    }

    fn command(&self) -> Result<Vec<String>, ConfigError> {
        match self.find(&["rebuild", "command"]) {
            None => Ok(Vec::new()),
            Some(Found::Env(s)) => {
                if s.trim_start().starts_with('[') {
                    serde_json::from_str::<Vec<String>>(&s).map_err(|e| {
                        self.err(
                            "rebuild.command",
                            format!("BLOUD_REBUILD_COMMAND is not a JSON list of strings: {e}"),
                        )
                    })
                } else {
                    Ok(s.split_whitespace().map(str::to_string).collect())
                }
            }
            Some(Found::File(Value::Sequence(items))) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(self.err("rebuild.command", "every argv element must be a string")),
                })
                .collect(),
            Some(Found::File(_)) => Err(self.err(
                "rebuild.command",
                "must be a list, e.g. [./demo/rebuild.sh, --fast]",
            )),
        }
    }
}

/// First line (1-based) where `key:` starts a YAML entry; good enough for error messages.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let needle = format!("{key}:");
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&needle) || t.starts_with(&format!("\"{key}\":"))
        })
        .map(|i| i + 1)
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
        assert_eq!(
            c.rebuild,
            RebuildMode::Nixos {
                flake: "/var/lib/bloud/flake".into(),
                target: "bloud".into()
            }
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
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1 fortnight"), None);
    }
}
