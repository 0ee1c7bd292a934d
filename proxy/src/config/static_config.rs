//! The static configuration file: the subset of Traefik's static keys that Bloud uses.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{yaml, Problem, YamlDuration};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticConfig {
    #[serde(default)]
    pub entry_points: BTreeMap<String, EntryPoint>,
    #[serde(default)]
    pub providers: Providers,
    pub ping: Option<Ping>,
    pub metrics: Option<Metrics>,
    pub api: Option<Api>,
    pub access_log: Option<AccessLog>,
    pub log: Option<Log>,
    pub pid_file: Option<PathBuf>,
    pub life_cycle: Option<LifeCycle>,
    pub servers_transport: Option<ServersTransport>,
    /// Worker threads per entry point (bloud extension; default 1).
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPoint {
    pub address: String,
    pub forwarded_headers: Option<ForwardedHeaders>,
    pub transport: Option<EntryPointTransport>,
    pub http: Option<EntryPointHttp>,
}

/// `entryPoints.<n>.transport`: timeouts (Traefik's names) and the connection cap (ours).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointTransport {
    pub responding_timeouts: Option<RespondingTimeouts>,
    /// Open client connections at most (bloud extension); the default comes from the fd limit.
    pub max_connections: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RespondingTimeouts {
    /// The whole request header block must arrive within it (one deadline from the first byte's
    /// connection, not per read); also the longest pause between two reads of a request body.
    pub read_timeout: Option<YamlDuration>,
    /// The longest pause of one write to the client.
    pub write_timeout: Option<YamlDuration>,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Option<YamlDuration>,
}

/// `entryPoints.<n>.http`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointHttp {
    /// Request line plus header fields, in bytes; larger requests get 431.
    pub max_header_bytes: Option<usize>,
    /// Traefik's `http.tls`: its presence makes the entry point HTTPS (certificates come from
    /// the dynamic files' `tls` section). `tls:` with no value counts as present.
    #[serde(default, deserialize_with = "present_even_if_null")]
    pub tls: Option<EntryPointTls>,
}

/// `entryPoints.<n>.http.tls`. Traefik's ACME and per-router keys (`certResolver`, `domains`,
/// `options`) are not supported, so only an empty map (or `{}`/null) is accepted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointTls {}

fn present_even_if_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<EntryPointTls>, D::Error> {
    Ok(Some(
        Option::<EntryPointTls>::deserialize(d)?.unwrap_or_default(),
    ))
}

impl EntryPoint {
    /// Whether the entry point serves HTTPS (`http.tls` is set).
    pub fn is_tls(&self) -> bool {
        self.http.as_ref().is_some_and(|h| h.tls.is_some())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardedHeaders {
    #[serde(default, rename = "trustedIPs")]
    pub trusted_ips: Vec<String>,
    /// Trust every peer (Traefik's `insecure`).
    #[serde(default)]
    pub insecure: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Providers {
    pub file: Option<FileProvider>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileProvider {
    pub directory: Option<PathBuf>,
    pub filename: Option<PathBuf>,
    #[serde(default)]
    pub watch: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ping {
    pub entry_point: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metrics {
    pub prometheus: Option<Prometheus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Prometheus {
    pub entry_point: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Api {
    pub entry_point: Option<String>,
    /// Accepted for compatibility with upstream's file; there is no dashboard.
    pub dashboard: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    #[default]
    Common,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessLog {
    #[serde(default)]
    pub file_path: String,
    #[serde(default)]
    pub format: AccessLogFormat,
    /// Lines kept in memory while the writer is busy; beyond that lines are dropped and counted.
    pub buffering_size: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Log {
    pub level: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LifeCycle {
    pub grace_time_out: Option<YamlDuration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServersTransport {
    pub forwarding_timeouts: Option<ForwardingTimeouts>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardingTimeouts {
    pub dial_timeout: Option<YamlDuration>,
    /// Longest wait for the upstream's response header once the request is sent (the body
    /// after it is not limited: SSE and long downloads keep streaming). `0s` waits forever.
    pub response_header_timeout: Option<YamlDuration>,
    pub idle_conn_timeout: Option<YamlDuration>,
}

/// Default grace period on SIGTERM (Traefik's default is 10 s).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

impl StaticConfig {
    /// Reads and parses the static file, returning warnings alongside the value.
    pub fn load(path: &Path) -> Result<(StaticConfig, Vec<Problem>), Problem> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problem::error(path, None, format!("cannot read static configuration: {e}"))
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<(StaticConfig, Vec<Problem>), Problem> {
        let cfg: StaticConfig =
            yaml::parse(text).map_err(|e| Problem::error(path, e.line, e.to_string()))?;
        let warnings = cfg.check(path)?;
        Ok((cfg, warnings))
    }

    /// Consistency checks that serde cannot express; returns warnings or the first error.
    fn check(&self, path: &Path) -> Result<Vec<Problem>, Problem> {
        let mut warnings = Vec::new();
        if self.entry_points.is_empty() {
            return Err(Problem::error(
                path,
                None,
                "entryPoints: at least one entry point is needed, e.g. `web: { address: \":80\" }`",
            ));
        }
        for (name, ep) in &self.entry_points {
            parse_listen_address(&ep.address).map_err(|e| {
                Problem::error(path, None, format!("entryPoints.{name}.address: {e}"))
            })?;
            if ep.transport.as_ref().and_then(|t| t.max_connections) == Some(0) {
                return Err(Problem::error(
                    path,
                    None,
                    format!("entryPoints.{name}.transport.maxConnections: must be at least 1"),
                ));
            }
            if let Some(n) = ep.http.as_ref().and_then(|h| h.max_header_bytes) {
                if n < 1024 {
                    return Err(Problem::error(
                        path,
                        None,
                        format!("entryPoints.{name}.http.maxHeaderBytes: {n} is too small for any browser request; use at least 1024 (default 32768)"),
                    ));
                }
            }
            if let Some(fh) = &ep.forwarded_headers {
                for ip in &fh.trusted_ips {
                    crate::ipnet::IpNet::parse(ip).map_err(|e| {
                        Problem::error(
                            path,
                            None,
                            format!("entryPoints.{name}.forwardedHeaders.trustedIPs: {e}"),
                        )
                    })?;
                }
            }
        }
        let check_ep = |key: &str, ep: &Option<String>| -> Result<(), Problem> {
            if let Some(ep) = ep {
                if !self.entry_points.contains_key(ep) {
                    return Err(Problem::error(
                        path,
                        None,
                        format!(
                            "{key}: no entry point named {ep:?} (defined: {})",
                            self.entry_point_names()
                        ),
                    ));
                }
            }
            Ok(())
        };
        if let Some(ping) = &self.ping {
            check_ep("ping.entryPoint", &ping.entry_point)?;
        }
        if let Some(Metrics {
            prometheus: Some(p),
        }) = &self.metrics
        {
            check_ep("metrics.prometheus.entryPoint", &p.entry_point)?;
        }
        if let Some(api) = &self.api {
            check_ep("api.entryPoint", &api.entry_point)?;
            if api.dashboard == Some(true) {
                warnings.push(Problem::warning(
                    path,
                    None,
                    "api.dashboard: bloud-proxy has no dashboard; the JSON API stays available",
                ));
            }
        }
        match &self.providers.file {
            Some(FileProvider {
                directory: Some(_),
                filename: Some(_),
                ..
            }) => {
                return Err(Problem::error(
                    path,
                    None,
                    "providers.file: set either directory or filename, not both",
                ))
            }
            Some(FileProvider {
                directory: None,
                filename: None,
                ..
            }) => {
                return Err(Problem::error(
                    path,
                    None,
                    "providers.file: set directory (all *.yml/*.yaml in it) or filename",
                ))
            }
            _ => {}
        }
        if let Some(level) = self.log.as_ref().and_then(|l| l.level.as_deref()) {
            if log_level_filter(level).is_none() {
                return Err(Problem::error(
                    path,
                    None,
                    format!("log.level: unknown level {level:?} (use debug, info, warn, error)"),
                ));
            }
        }
        if self.threads == Some(0) {
            return Err(Problem::error(path, None, "threads: must be at least 1"));
        }
        Ok(warnings)
    }

    fn entry_point_names(&self) -> String {
        self.entry_points
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn grace_period(&self) -> Duration {
        self.life_cycle
            .as_ref()
            .and_then(|l| l.grace_time_out)
            .map(|d| d.0)
            .unwrap_or(DEFAULT_GRACE)
    }

    pub fn threads(&self) -> usize {
        self.threads.unwrap_or(1)
    }

    /// Entry point that serves the Prometheus endpoint, if metrics are on.
    pub fn metrics_entry_point(&self) -> Option<&str> {
        let p = self.metrics.as_ref()?.prometheus.as_ref()?;
        Some(
            p.entry_point
                .as_deref()
                .unwrap_or(self.default_internal_entry_point()),
        )
    }

    /// Entry point that serves the JSON API directly, if one is named.
    pub fn api_entry_point(&self) -> Option<&str> {
        self.api.as_ref()?.entry_point.as_deref()
    }

    pub fn ping_entry_point(&self) -> Option<&str> {
        let p = self.ping.as_ref()?;
        Some(
            p.entry_point
                .as_deref()
                .unwrap_or(self.default_internal_entry_point()),
        )
    }

    /// Traefik puts internal endpoints on an entry point called `traefik`; fall back to the first
    /// entry point when there is none of that name.
    fn default_internal_entry_point(&self) -> &str {
        if self.entry_points.contains_key("traefik") {
            "traefik"
        } else {
            self.entry_points
                .keys()
                .next()
                .map(String::as_str)
                .unwrap_or("web")
        }
    }

    /// Entry points that carry user routers without an explicit `entryPoints` list: every entry
    /// point except those reserved for the admin endpoints (metrics/api), so that app routes never
    /// appear on the loopback admin port by accident.
    pub fn default_entry_points(&self) -> Vec<String> {
        let admin: Vec<&str> = [self.metrics_entry_point(), self.api_entry_point()]
            .into_iter()
            .flatten()
            .filter(|ep| Some(*ep) != self.ping_entry_point())
            .collect();
        let names: Vec<String> = self
            .entry_points
            .keys()
            .filter(|n| !admin.contains(&n.as_str()))
            .cloned()
            .collect();
        if names.is_empty() {
            self.entry_points.keys().cloned().collect()
        } else {
            names
        }
    }

    /// Directory or single file holding the dynamic configuration.
    pub fn dynamic_source(&self) -> Option<crate::config::file_provider::Source> {
        let f = self.providers.file.as_ref()?;
        if let Some(d) = &f.directory {
            return Some(crate::config::file_provider::Source::Directory(d.clone()));
        }
        f.filename
            .as_ref()
            .map(|p| crate::config::file_provider::Source::File(p.clone()))
    }

    pub fn watch(&self) -> bool {
        self.providers.file.as_ref().is_some_and(|f| f.watch)
    }
}

/// Maps a Traefik log level to a tracing filter directive.
pub fn log_level_filter(level: &str) -> Option<&'static str> {
    match level.to_ascii_lowercase().as_str() {
        "trace" => Some("trace"),
        "debug" => Some("debug"),
        "info" => Some("info"),
        "warn" | "warning" => Some("warn"),
        "error" | "fatal" | "panic" => Some("error"),
        _ => None,
    }
}

/// Turns Traefik's `:80` / `host:port` / `[v6]:port` into a socket address string for Pingora.
pub fn parse_listen_address(address: &str) -> Result<SocketAddr, String> {
    let a = address.trim();
    let full = if let Some(port) = a.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else {
        a.to_string()
    };
    // Traefik allows a "/tcp" suffix on addresses.
    let full = full.strip_suffix("/tcp").unwrap_or(&full).to_string();
    full.parse::<SocketAddr>().map_err(|_| {
        format!("{address:?} is not a listen address; use \":80\", \"127.0.0.1:8082\" or \"[::1]:8082\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_static_file_loads_with_dashboard_warning() {
        let Some(dir) = bloud_testkit::upstream_fixtures(
            "traefik",
            "upstream_static_file_loads_with_dashboard_warning",
        ) else {
            return;
        };
        let path = dir.join("traefik.yml");
        let (cfg, warnings) = StaticConfig::load(&path).expect("upstream traefik.yml must load");
        assert_eq!(cfg.entry_points["web"].address, ":8080");
        assert_eq!(
            parse_listen_address(&cfg.entry_points["web"].address).ok(),
            "0.0.0.0:8080".parse().ok()
        );
        assert_eq!(cfg.ping_entry_point(), Some("web"));
        assert!(cfg.watch());
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].message.contains("no dashboard"),
            "{}",
            warnings[0]
        );
        assert_eq!(cfg.grace_period(), DEFAULT_GRACE);
    }

    /// The shape of a Traefik static file as Bloud's upstream writes it (our own text): entry
    /// point on :8080, the file provider watching a directory, `api.dashboard: true`.
    #[test]
    fn traefik_style_file_loads_with_dashboard_warning() {
        let text = "entryPoints:\n  web:\n    address: \":8080\"\napi:\n  dashboard: true\nping:\n  entryPoint: web\nproviders:\n  file:\n    directory: /etc/traefik/dynamic\n    watch: true\nlog:\n  level: INFO\n";
        let (cfg, warnings) = StaticConfig::parse(Path::new("traefik.yml"), text).expect("loads");
        assert_eq!(
            parse_listen_address(&cfg.entry_points["web"].address).ok(),
            "0.0.0.0:8080".parse().ok()
        );
        assert!(cfg.watch());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].message.contains("no dashboard"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn design_example_loads() {
        let text = r#"
entryPoints:
  web:   { address: ":80", forwardedHeaders: { trustedIPs: ["10.0.0.0/8"] } }
  admin: { address: "127.0.0.1:8082" }
providers:
  file: { directory: /var/lib/bloud/routes, watch: true }
ping:    { entryPoint: web }
metrics: { prometheus: { entryPoint: admin } }
api:     { entryPoint: admin }
accessLog: { filePath: "", format: json }
log:     { level: info }
pidFile: /run/bloud-proxy/bloud-proxy.pid
lifeCycle: { graceTimeOut: 3s }
"#;
        let (cfg, warnings) = StaticConfig::parse(Path::new("s.yml"), text).expect("loads");
        assert!(warnings.is_empty());
        assert_eq!(cfg.grace_period(), Duration::from_secs(3));
        assert_eq!(cfg.metrics_entry_point(), Some("admin"));
        assert_eq!(cfg.default_entry_points(), vec!["web".to_string()]);
        assert_eq!(
            cfg.access_log.map(|a| a.format),
            Some(AccessLogFormat::Json)
        );
    }

    #[test]
    fn unknown_key_names_its_path() {
        let text = "entryPoints:\n  web:\n    address: \":80\"\n    adress2: x\n";
        let err = StaticConfig::parse(Path::new("s.yml"), text).expect_err("unknown key");
        assert!(err.message.contains("entryPoints.web"), "{}", err.message);
        assert!(err.message.contains("adress2"), "{}", err.message);
        assert_eq!(err.line, Some(4));
    }

    #[test]
    fn missing_entry_point_reference_is_an_error() {
        let text = "entryPoints:\n  web: { address: \":80\" }\nping: { entryPoint: admin }\n";
        let err = StaticConfig::parse(Path::new("s.yml"), text).expect_err("bad ref");
        assert!(err.message.contains("ping.entryPoint"), "{}", err.message);
    }
}
