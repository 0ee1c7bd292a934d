//! Loading the dynamic configuration into a new route table and swapping it in: on SIGHUP and,
//! with `watch: true`, on changes in the route directory (debounced). A failed load keeps the
//! previous table, logs each problem with its file and counts a failure.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::file_provider::{self, MergedConfig, Source};
use crate::config::static_config::StaticConfig;
use crate::config::{Problem, Problems};
use crate::metrics::Metrics;
use crate::service::Internal;
use crate::state::{ReloadReport, Shared};
use crate::table::{BuildOptions, RouteTable};

/// Quiet time after the last file event before reloading (editors and atomic writers produce
/// bursts of create/write/rename events).
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Why a reload was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Signal,
    FileChange,
}

/// Build options derived from the static configuration.
pub fn build_options(cfg: &StaticConfig, metrics: Arc<Metrics>, generation: u64) -> BuildOptions {
    let mut internal = Vec::new();
    if let Some(ep) = cfg.ping_entry_point() {
        internal.push((ep.to_string(), Internal::Ping));
    }
    if let Some(ep) = cfg.metrics_entry_point() {
        internal.push((ep.to_string(), Internal::Prometheus));
    }
    if let Some(ep) = cfg.api_entry_point() {
        internal.push((ep.to_string(), Internal::Api));
    }
    // The admin entry point answers /ping as well, for loopback health probes.
    for ep in [cfg.metrics_entry_point(), cfg.api_entry_point()]
        .into_iter()
        .flatten()
    {
        if !internal
            .iter()
            .any(|(e, i)| e == ep && *i == Internal::Ping)
        {
            internal.push((ep.to_string(), Internal::Ping));
        }
    }
    BuildOptions {
        entry_points: cfg.entry_points.keys().cloned().collect(),
        default_entry_points: cfg.default_entry_points(),
        internal,
        generation,
        metrics,
    }
}

/// Reads every dynamic file and compiles a table (no side effects on the live state).
pub fn load_table(cfg: &StaticConfig, opts: &BuildOptions) -> Result<RouteTable, Problems> {
    let merged = match cfg.dynamic_source() {
        Some(source) => file_provider::load(&source),
        None => MergedConfig::default(),
    };
    RouteTable::build(&merged, opts)
}

/// Performs loads and swaps tables.
pub struct Reloader {
    pub config: Arc<StaticConfig>,
    pub shared: Arc<Shared>,
    pub runtime: tokio::runtime::Handle,
}

impl Reloader {
    /// Loads and, when valid, swaps in a new table. Returns whether the new table is live.
    pub fn reload(&self, trigger: Trigger) -> bool {
        let generation = self.shared.next_generation.fetch_add(1, Ordering::Relaxed);
        let opts = build_options(&self.config, self.shared.metrics.clone(), generation);
        let now = unix_now();
        match load_table(&self.config, &opts) {
            Ok(table) => {
                for w in &table.warnings {
                    tracing::warn!(file = %w.file.display(), "{w}");
                }
                let warnings = table.warnings.clone();
                let routers = table.routers.len();
                crate::health_check::spawn_for_table(&self.runtime, &table);
                self.shared.table.store(Arc::new(table));
                self.shared.metrics.record_reload(true, generation);
                self.shared.set_reload_report(ReloadReport {
                    ok: true,
                    at: now,
                    generation,
                    problems: warnings,
                });
                tracing::info!(?trigger, generation, routers, "route table loaded");
                true
            }
            Err(problems) => {
                for p in problems.errors() {
                    tracing::error!(file = %p.file.display(), line = p.line, ?trigger, "configuration rejected, keeping the previous routes: {p}");
                }
                self.shared.metrics.record_reload(false, generation);
                self.shared.set_reload_report(ReloadReport {
                    ok: false,
                    at: now,
                    generation: self.shared.table.load().generation,
                    problems: problems.0,
                });
                false
            }
        }
    }

    /// Consumes reload triggers forever, coalescing bursts.
    pub async fn run(self: Arc<Self>, mut triggers: mpsc::UnboundedReceiver<Trigger>) {
        while let Some(first) = triggers.recv().await {
            let mut trigger = first;
            // Wait for a quiet period so one atomic write (tmp + rename) is one reload.
            loop {
                match tokio::time::timeout(DEBOUNCE, triggers.recv()).await {
                    Ok(Some(t)) => {
                        if t == Trigger::Signal {
                            trigger = t;
                        }
                    }
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let me = self.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || me.reload(trigger)).await {
                tracing::error!(error = %e, "reload task failed");
            }
        }
    }
}

/// Starts watching the dynamic configuration source; events become `FileChange` triggers.
/// The returned watcher must be kept alive.
pub fn watch(
    source: &Source,
    triggers: mpsc::UnboundedSender<Trigger>,
) -> Result<notify::RecommendedWatcher, Problem> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let (dir, only): (PathBuf, Option<std::ffi::OsString>) = match source {
        Source::Directory(d) => (d.clone(), None),
        Source::File(f) => (
            f.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            f.file_name().map(|n| n.to_os_string()),
        ),
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        let relevant = event.paths.is_empty()
            || event.paths.iter().any(|p| {
                let name = p.file_name();
                match &only {
                    Some(want) => name == Some(want.as_os_str()),
                    None => name
                        .and_then(|n| n.to_str())
                        .is_some_and(file_provider::is_config_file_name),
                }
            });
        if relevant {
            let _ = triggers.send(Trigger::FileChange);
        }
    })
    .map_err(|e| Problem::error(&dir, None, format!("cannot watch for changes: {e}")))?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| Problem::error(&dir, None, format!("cannot watch for changes: {e}")))?;
    Ok(watcher)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
