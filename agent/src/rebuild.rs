//! Runs a rebuild (`nixos-rebuild switch` or the configured command), streaming stdout and stderr
//! line by line to the SSE hub and to `<dataDir>/rebuilds/<id>.log`, and recording it in the
//! database. A rebuild is never bound to an HTTP request and has no timeout: a NixOS switch that
//! downloads for ten minutes is normal.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::config::RebuildMode;
use crate::db::Db;
use crate::events::{Events, RebuildEvent};

/// nixos-rebuild by absolute path: systemd gives services a bare PATH.
pub const NIXOS_REBUILD: &str = "/run/current-system/sw/bin/nixos-rebuild";
/// PATH for the rebuild, so nixos-rebuild finds `nix` (upstream lesson: exit 127 otherwise).
pub const NIXOS_PATH: &str = "/run/current-system/sw/bin:/run/wrappers/bin";

/// Rebuild logs kept on disk (and listed by the API); older ones are deleted.
pub const KEEP_REBUILDS: usize = 200;

/// Output kept in memory for the install result; the full log is on disk.
const TAIL_LINES: usize = 400;

/// The result of one rebuild.
#[derive(Debug, Clone)]
pub struct RebuildOutcome {
    pub id: i64,
    pub success: bool,
    pub exit_code: Option<i32>,
    /// Why it failed (`exit status 1`, `cannot start …`).
    pub error: Option<String>,
    /// The last lines of output.
    pub tail: Vec<String>,
    pub duration: Duration,
}

/// Extra environment for the rebuild process (command mode scripts read it).
#[derive(Debug, Clone, Default)]
pub struct RebuildEnv {
    pub vars: Vec<(String, String)>,
}

pub struct Rebuilder {
    mode: RebuildMode,
    log_dir: PathBuf,
    env: RebuildEnv,
    db: Arc<Db>,
    events: Arc<Events>,
}

impl Rebuilder {
    pub fn new(
        mode: RebuildMode,
        log_dir: PathBuf,
        env: RebuildEnv,
        db: Arc<Db>,
        events: Arc<Events>,
    ) -> Self {
        Rebuilder {
            mode,
            log_dir,
            env,
            db,
            events,
        }
    }

    /// The argv this rebuilder runs.
    pub fn argv(&self) -> Vec<String> {
        match &self.mode {
            RebuildMode::Nixos { flake, target } => vec![
                NIXOS_REBUILD.to_string(),
                "switch".to_string(),
                "--flake".to_string(),
                format!("path:{}#{}", flake.display(), target),
            ],
            RebuildMode::Command { argv } => argv.clone(),
        }
    }

    /// The argv of a rollback to `generation`: the rebuild command (the same privileged path,
    /// `sudo bloud-rebuild` on NixOS) with `--rollback <n>`. None in `nixos` mode, where the
    /// agent runs nixos-rebuild itself and has no helper to switch an older generation.
    pub fn rollback_argv(&self, generation: u32) -> Option<Vec<String>> {
        match &self.mode {
            RebuildMode::Nixos { .. } => None,
            RebuildMode::Command { argv } => {
                let mut argv = argv.clone();
                argv.push("--rollback".into());
                argv.push(generation.to_string());
                Some(argv)
            }
        }
    }

    fn event(&self, id: i64, kind: &'static str, message: String, success: Option<bool>) {
        let ev = RebuildEvent {
            kind,
            message,
            success,
            rebuild_id: id,
        };
        self.events.rebuild_event(ev);
    }

    /// Runs one rebuild to the end. `summary` names what it is for (`install miniflux`).
    pub async fn run(&self, summary: &str) -> RebuildOutcome {
        self.run_argv(summary, self.argv()).await
    }

    /// [`Rebuilder::run`] with another argv (a rollback), logged and streamed the same way.
    pub async fn run_argv(&self, summary: &str, argv: Vec<String>) -> RebuildOutcome {
        let started = Instant::now();
        if let Err(e) = std::fs::create_dir_all(&self.log_dir) {
            tracing::error!(dir = %self.log_dir.display(), error = %e, "cannot create the rebuild log directory");
        }
        let record = match self.db.start_rebuild(summary, &self.log_dir) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot record the rebuild");
                return RebuildOutcome {
                    id: 0,
                    success: false,
                    exit_code: None,
                    error: Some(e.to_string()),
                    tail: Vec::new(),
                    duration: started.elapsed(),
                };
            }
        };
        let id = record.id;
        let header = format!("Running: {}", argv.join(" "));
        tracing::info!(rebuild = id, summary, command = %argv.join(" "), "rebuild started");
        self.events.rebuild_started(RebuildEvent {
            kind: "output",
            message: header.clone(),
            success: None,
            rebuild_id: id,
        });

        let mut log = match tokio::fs::File::create(&record.log_path).await {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::error!(path = %record.log_path.display(), error = %e, "cannot create the rebuild log; streaming only");
                None
            }
        };
        let mut tail: VecDeque<String> = VecDeque::new();
        let mut lines: i64 = 0;
        let mut keep = |line: String| {
            lines += 1;
            if tail.len() >= TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.clone());
            let mut bytes = line.into_bytes();
            bytes.push(b'\n');
            bytes
        };
        let bytes = keep(header);
        write_log(&mut log, &bytes).await;

        let (exit_code, error) = match self.spawn(&argv, id) {
            Err(e) => {
                let msg = format!(
                    "cannot start `{}`: {e}",
                    argv.first().map(String::as_str).unwrap_or("")
                );
                let bytes = keep(msg.clone());
                write_log(&mut log, &bytes).await;
                self.event(id, "error", msg.clone(), None);
                (None, Some(msg))
            }
            Ok((mut child, mut rx)) => {
                while let Some((_is_err, line)) = rx.recv().await {
                    let bytes = keep(line.clone());
                    write_log(&mut log, &bytes).await;
                    self.event(id, "output", line, None);
                }
                match child.wait().await {
                    Ok(status) if status.success() => (status.code(), None),
                    Ok(status) => (status.code(), Some(describe_exit(status))),
                    Err(e) => (None, Some(format!("cannot wait for the rebuild: {e}"))),
                }
            }
        };
        let success = error.is_none();
        let duration = started.elapsed();
        let status = if success { "success" } else { "failed" };
        if let Err(e) = self
            .db
            .finish_rebuild(id, status, exit_code, error.as_deref(), lines)
        {
            tracing::error!(error = %e, "cannot record the rebuild result");
        }
        if let Some(f) = log.as_mut() {
            let _ = f.flush().await;
        }
        match self.db.prune_rebuilds(KEEP_REBUILDS) {
            Ok(old) => {
                for path in old {
                    let _ = tokio::fs::remove_file(path).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot prune old rebuild logs"),
        }
        match &error {
            None => {
                tracing::info!(
                    rebuild = id,
                    secs = duration.as_secs_f64(),
                    "rebuild succeeded"
                );
                self.event(
                    id,
                    "complete",
                    format!(
                        "Rebuild completed successfully in {:.1}s",
                        duration.as_secs_f64()
                    ),
                    Some(true),
                );
            }
            Some(err) => {
                tracing::warn!(rebuild = id, error = %err, "rebuild failed");
                self.event(id, "error", format!("Rebuild failed: {err}"), None);
                self.event(
                    id,
                    "complete",
                    format!("Rebuild failed: {err}"),
                    Some(false),
                );
            }
        }
        RebuildOutcome {
            id,
            success,
            exit_code,
            error,
            tail: tail.into(),
            duration,
        }
    }

    /// Starts the process; lines of stdout and stderr arrive on the channel as they are printed.
    fn spawn(
        &self,
        argv: &[String],
        id: i64,
    ) -> std::io::Result<(tokio::process::Child, mpsc::Receiver<(bool, String)>)> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty rebuild command"))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("BLOUD_REBUILD_ID", id.to_string());
        if let RebuildMode::Nixos { .. } = self.mode {
            // Keeps nixos-rebuild from re-executing a copy of itself built from the flake.
            cmd.env("_NIXOS_REBUILD_REEXEC", "1")
                .env("PATH", NIXOS_PATH);
        }
        for (k, v) in &self.env.vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let (tx, rx) = mpsc::channel(1024);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(out, false, tx.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(err, true, tx));
        }
        Ok((child, rx))
    }
}

async fn write_log(log: &mut Option<tokio::fs::File>, bytes: &[u8]) {
    if let Some(f) = log.as_mut() {
        if let Err(e) = f.write_all(bytes).await {
            tracing::warn!(error = %e, "cannot append to the rebuild log");
        }
    }
}

/// Reads lines (tolerating invalid UTF-8 and a missing final newline) until EOF.
async fn forward_lines<R: tokio::io::AsyncRead + Unpin>(
    reader: R,
    is_err: bool,
    tx: mpsc::Sender<(bool, String)>,
) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) => break,
            Ok(_) => {
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                if tx.send((is_err, line)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = tx
                    .send((true, format!("[reading output failed: {e}]")))
                    .await;
                break;
            }
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended abnormally".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rebuilder(dir: &std::path::Path, argv: &[&str]) -> (Rebuilder, Arc<Events>, Arc<Db>) {
        let db = Arc::new(Db::open(&dir.join("bloud.db")).unwrap());
        let events = Arc::new(Events::new());
        let r = Rebuilder::new(
            RebuildMode::Command {
                argv: argv.iter().map(|s| s.to_string()).collect(),
            },
            dir.join("rebuilds"),
            RebuildEnv::default(),
            db.clone(),
            events.clone(),
        );
        (r, events, db)
    }

    #[tokio::test]
    async fn streams_both_outputs_and_keeps_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (r, events, db) = rebuilder(
            dir.path(),
            &["sh", "-c", "echo one; echo two >&2; printf 'three'; exit 3"],
        );
        let out = r.run("install x").await;
        assert!(!out.success);
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.error.as_deref(), Some("exit status 3"));
        let log =
            std::fs::read_to_string(dir.path().join(format!("rebuilds/{}.log", out.id))).unwrap();
        for l in ["one", "two", "three"] {
            assert!(log.lines().any(|x| x == l), "{log}");
        }
        let (backlog, _) = events.subscribe_rebuilds();
        let last = backlog.last().unwrap();
        assert!(
            last.contains("\"complete\"") && last.contains("\"success\":false"),
            "{last}"
        );
        let rec = db.get_rebuild(out.id).unwrap().unwrap();
        assert_eq!(rec.status, "failed");
        assert_eq!(rec.lines, 4);
    }

    #[tokio::test]
    async fn a_missing_program_is_a_failed_rebuild_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (r, _, _) = rebuilder(dir.path(), &["/nonexistent/rebuild"]);
        let out = r.run("install x").await;
        assert!(!out.success);
        assert!(out.error.unwrap().contains("cannot start"));
    }

    #[test]
    fn nixos_mode_uses_absolute_paths_and_a_path_flake() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, _, _) = rebuilder(dir.path(), &["x"]);
        r.mode = RebuildMode::Nixos {
            flake: "/var/lib/bloud/flake".into(),
            target: "bloud".into(),
        };
        assert_eq!(
            r.argv(),
            [
                "/run/current-system/sw/bin/nixos-rebuild",
                "switch",
                "--flake",
                "path:/var/lib/bloud/flake#bloud"
            ]
        );
    }
}
