//! The operation queue: every install, uninstall and restart goes through one background worker,
//! one operation at a time.
//!
//! - The first request opens a batch window (`queue.batchWindow`); requests arriving in it join
//!   the batch. Requests arriving while a batch runs wait for the next one.
//! - Per app, the last operation wins; installs merge their choices (later keys win), uninstalls
//!   OR their `clearData`. Every caller of a merged operation gets its result.
//! - A restart queued with an install or uninstall of the same app is dropped (the install
//!   starts the app anyway; after an uninstall there is nothing to restart); a later install or
//!   uninstall replaces a queued restart.
//! - Uninstalls run before installs, restarts last, each group in arrival order.
//! - Operations are stored in SQLite before they are acknowledged, so a restart neither loses
//!   queued work nor leaves an interrupted one looking alive (see [`Queue::recover`]).
//! - Execution never depends on the caller: a client that disconnects only stops waiting.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::db::{Db, DbError, StoredOp};

/// What to do to one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    Install {
        choices: BTreeMap<String, String>,
    },
    Uninstall {
        clear_data: bool,
    },
    /// Restart the app's service (its unit, or the demo app) without a rebuild.
    Restart,
    /// Switch back to an earlier generation (its `app` is [`ROLLBACK_APP`]).
    Rollback {
        generation: u32,
    },
}

/// The queue key of rollbacks: not an app name (catalog names start with a letter).
pub const ROLLBACK_APP: &str = "@system";

impl OpKind {
    fn name(&self) -> &'static str {
        match self {
            OpKind::Install { .. } => "install",
            OpKind::Uninstall { .. } => "uninstall",
            OpKind::Restart => "restart",
            OpKind::Rollback { .. } => "rollback",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub app: String,
    pub kind: OpKind,
}

/// Result of one operation: upstream's `InstallResult` / `UninstallResult` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpResult {
    pub app: String,
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Install: the apps enabled by this transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apps_installed: Option<Vec<String>>,
    /// Uninstall: apps that lose an integration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unconfigured: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild_output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_info: Option<String>,
    /// Our addition: the rebuild whose log tells what happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild_id: Option<i64>,
}

impl OpResult {
    pub fn failure(app: &str, error: impl Into<String>) -> Self {
        OpResult {
            app: app.to_string(),
            success: false,
            error: Some(error.into()),
            ..OpResult::default()
        }
    }
}

/// Runs operations; the service's orchestrator in production, a recorder in tests.
pub trait Executor: Send + Sync + 'static {
    fn execute(&self, op: Operation) -> impl Future<Output = OpResult> + Send;
}

struct Request {
    op: Operation,
    db_id: Option<i64>,
    reply: Option<oneshot::Sender<OpResult>>,
}

/// Handle to submit operations.
#[derive(Clone)]
pub struct Queue {
    tx: mpsc::UnboundedSender<Request>,
    db: Arc<Db>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the operation queue has stopped; restart bloud-agent")]
    Stopped,
}

/// Operations that were running when the agent stopped: they are reported failed.
#[derive(Debug, Default)]
pub struct Recovered {
    pub interrupted: Vec<Operation>,
    /// Stored operations that had not started, for [`Queue::resume`].
    pub pending: Vec<(i64, Operation)>,
}

impl Queue {
    /// Starts the worker. Call [`Queue::recover`] right after, before accepting requests.
    pub fn start<E: Executor>(executor: Arc<E>, db: Arc<Db>, batch_window: Duration) -> Queue {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(worker(executor, db.clone(), rx, batch_window));
        Queue { tx, db }
    }

    /// Submits an operation; the receiver yields its result when it has run.
    pub fn submit(&self, op: Operation) -> Result<oneshot::Receiver<OpResult>, QueueError> {
        let (choices, clear) = match &op.kind {
            OpKind::Install { choices } => (choices.clone(), false),
            OpKind::Uninstall { clear_data } => (BTreeMap::new(), *clear_data),
            OpKind::Restart => (BTreeMap::new(), false),
            OpKind::Rollback { generation } => (
                BTreeMap::from([("generation".to_string(), generation.to_string())]),
                false,
            ),
        };
        let id = self.db.enqueue(&op.app, op.kind.name(), &choices, clear)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                op,
                db_id: Some(id),
                reply: Some(reply),
            })
            .map_err(|_| QueueError::Stopped)?;
        Ok(rx)
    }

    /// After a restart: operations marked running were cut short (returned, for the caller to
    /// mark their apps failed, and removed); pending ones are returned for [`Queue::resume`].
    pub fn recover(&self) -> Result<Recovered, QueueError> {
        let mut out = Recovered::default();
        let mut done = Vec::new();
        for stored in self.db.queued_ops()? {
            let Some(op) = stored_to_op(&stored) else {
                tracing::warn!(id = stored.id, kind = %stored.kind, "dropping an unknown queued operation");
                done.push(stored.id);
                continue;
            };
            if stored.state == "running" {
                done.push(stored.id);
                out.interrupted.push(op);
            } else {
                out.pending.push((stored.id, op));
            }
        }
        self.db.delete_ops(&done)?;
        Ok(out)
    }

    /// Queues stored operations again (nobody waits for their results).
    pub fn resume(&self, pending: Vec<(i64, Operation)>) -> Result<(), QueueError> {
        for (id, op) in pending {
            self.tx
                .send(Request {
                    op,
                    db_id: Some(id),
                    reply: None,
                })
                .map_err(|_| QueueError::Stopped)?;
        }
        Ok(())
    }
}

fn stored_to_op(s: &StoredOp) -> Option<Operation> {
    let kind = match s.kind.as_str() {
        "install" => OpKind::Install {
            choices: s.choices.clone(),
        },
        "uninstall" => OpKind::Uninstall {
            clear_data: s.clear_data,
        },
        "restart" => OpKind::Restart,
        "rollback" => OpKind::Rollback {
            generation: s.choices.get("generation")?.parse().ok()?,
        },
        _ => return None,
    };
    Some(Operation {
        app: s.app.clone(),
        kind,
    })
}

/// One app's merged requests in a batch.
struct Merged {
    op: Operation,
    db_ids: Vec<i64>,
    replies: Vec<oneshot::Sender<OpResult>>,
    arrival: usize,
}

/// Merges a batch per app and orders it: uninstalls first, then installs, then restarts, then a
/// rollback (the last word: it sets the whole app set), by first arrival.
fn plan_batch(batch: Vec<Request>) -> Vec<Merged> {
    let mut by_app: BTreeMap<String, Merged> = BTreeMap::new();
    for (i, req) in batch.into_iter().enumerate() {
        let entry = by_app.entry(req.op.app.clone()).or_insert_with(|| Merged {
            op: req.op.clone(),
            db_ids: Vec::new(),
            replies: Vec::new(),
            arrival: i,
        });
        entry.op.kind = match (&entry.op.kind, req.op.kind) {
            (OpKind::Install { choices: old }, OpKind::Install { choices: new }) => {
                let mut merged = old.clone();
                merged.extend(new);
                OpKind::Install { choices: merged }
            }
            (OpKind::Uninstall { clear_data: a }, OpKind::Uninstall { clear_data: b }) => {
                OpKind::Uninstall {
                    clear_data: *a || b,
                }
            }
            (kept @ (OpKind::Install { .. } | OpKind::Uninstall { .. }), OpKind::Restart) => {
                kept.clone()
            }
            (_, last) => last,
        };
        entry.db_ids.extend(req.db_id);
        entry.replies.extend(req.reply);
    }
    let mut ops: Vec<Merged> = by_app.into_values().collect();
    ops.sort_by_key(|m| {
        let group = match m.op.kind {
            OpKind::Uninstall { .. } => 0,
            OpKind::Install { .. } => 1,
            OpKind::Restart => 2,
            OpKind::Rollback { .. } => 3,
        };
        (group, m.arrival)
    });
    ops
}

async fn worker<E: Executor>(
    executor: Arc<E>,
    db: Arc<Db>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    window: Duration,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(req)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            batch.push(req);
        }
        let ops = plan_batch(batch);
        tracing::info!(
            operations = ops.len(),
            order = %ops.iter().map(|m| format!("{} {}", m.op.kind.name(), m.op.app)).collect::<Vec<_>>().join(", "),
            "running a batch"
        );
        for merged in ops {
            if let Err(e) = db.set_ops_state(&merged.db_ids, "running") {
                tracing::error!(error = %e, "cannot mark the operation running");
            }
            // Its own task: a panic in one operation fails it, not the queue.
            let exec = executor.clone();
            let op = merged.op.clone();
            let result = match tokio::spawn(async move { exec.execute(op).await }).await {
                Ok(r) => r,
                Err(e) => OpResult::failure(&merged.op.app, format!("internal error: {e}")),
            };
            if let Err(e) = db.delete_ops(&merged.db_ids) {
                tracing::error!(error = %e, "cannot remove the finished operation from the queue");
            }
            for reply in merged.replies {
                // The caller may have gone away; the operation ran regardless.
                let _ = reply.send(result.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        ran: Mutex<Vec<Operation>>,
    }

    impl Executor for Recorder {
        fn execute(&self, op: Operation) -> impl Future<Output = OpResult> + Send {
            self.ran.lock().unwrap().push(op.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                OpResult {
                    app: op.app,
                    success: true,
                    ..OpResult::default()
                }
            }
        }
    }

    fn install(app: &str, choices: &[(&str, &str)]) -> Operation {
        Operation {
            app: app.into(),
            kind: OpKind::Install {
                choices: choices
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        }
    }

    fn uninstall(app: &str, clear_data: bool) -> Operation {
        Operation {
            app: app.into(),
            kind: OpKind::Uninstall { clear_data },
        }
    }

    fn setup(window: Duration) -> (tempfile::TempDir, Arc<Recorder>, Queue) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("q.db")).unwrap());
        let rec = Arc::new(Recorder::default());
        let q = Queue::start(rec.clone(), db, window);
        (dir, rec, q)
    }

    #[tokio::test]
    async fn batch_dedups_per_app_and_runs_uninstalls_first() {
        let (_d, rec, q) = setup(Duration::from_millis(300));
        let r1 = q
            .submit(install("radarr", &[("downloadClient", "qbittorrent")]))
            .unwrap();
        let r2 = q.submit(install("miniflux", &[])).unwrap();
        let r3 = q.submit(uninstall("jellyfin", false)).unwrap();
        let r4 = q
            .submit(install("radarr", &[("indexer", "prowlarr")]))
            .unwrap();
        let r5 = q.submit(uninstall("jellyfin", true)).unwrap();
        let r6 = q.submit(install("sonarr", &[])).unwrap();
        let r7 = q.submit(uninstall("sonarr", false)).unwrap();
        for r in [r1, r2, r3, r4, r5, r6, r7] {
            assert!(
                tokio::time::timeout(Duration::from_secs(5), r)
                    .await
                    .unwrap()
                    .unwrap()
                    .success
            );
        }
        let ran = rec.ran.lock().unwrap().clone();
        assert_eq!(
            ran,
            vec![
                uninstall("jellyfin", true),
                // Last operation wins: sonarr's install was superseded by its uninstall.
                uninstall("sonarr", false),
                install(
                    "radarr",
                    &[("downloadClient", "qbittorrent"), ("indexer", "prowlarr")]
                ),
                install("miniflux", &[]),
            ]
        );
    }

    fn restart(app: &str) -> Operation {
        Operation {
            app: app.into(),
            kind: OpKind::Restart,
        }
    }

    #[tokio::test]
    async fn restarts_run_last_and_yield_to_installs_and_uninstalls() {
        let (_d, rec, q) = setup(Duration::from_millis(300));
        let rs = [
            q.submit(restart("a")).unwrap(),
            q.submit(install("b", &[])).unwrap(),
            q.submit(restart("b")).unwrap(),
            q.submit(restart("c")).unwrap(),
            q.submit(uninstall("c", false)).unwrap(),
        ];
        for r in rs {
            tokio::time::timeout(Duration::from_secs(5), r)
                .await
                .unwrap()
                .unwrap();
        }
        let ran = rec.ran.lock().unwrap().clone();
        // b's install starts it anyway; c is gone after its uninstall: neither is restarted.
        assert_eq!(
            ran,
            vec![uninstall("c", false), install("b", &[]), restart("a")]
        );
    }

    #[tokio::test]
    async fn requests_during_a_batch_wait_for_the_next_window() {
        let (_d, rec, q) = setup(Duration::from_millis(100));
        let a = q.submit(install("a", &[])).unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        let b = q.submit(install("b", &[])).unwrap();
        let c = q.submit(uninstall("c", false)).unwrap();
        for r in [a, b, c] {
            tokio::time::timeout(Duration::from_secs(5), r)
                .await
                .unwrap()
                .unwrap();
        }
        // `a` ran alone: `c`'s uninstall did not jump ahead of it.
        let ran = rec.ran.lock().unwrap().clone();
        assert_eq!(
            ran,
            vec![install("a", &[]), uninstall("c", false), install("b", &[])]
        );
    }

    #[tokio::test]
    async fn stored_operations_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("q.db")).unwrap());
        let running = db.enqueue("a", "install", &BTreeMap::new(), false).unwrap();
        db.set_ops_state(&[running], "running").unwrap();
        db.enqueue("b", "uninstall", &BTreeMap::new(), true)
            .unwrap();
        let rec = Arc::new(Recorder::default());
        let q = Queue::start(rec.clone(), db.clone(), Duration::from_millis(10));
        let recovered = q.recover().unwrap();
        assert_eq!(recovered.interrupted, vec![install("a", &[])]);
        assert_eq!(recovered.pending.len(), 1);
        q.resume(recovered.pending).unwrap();
        for _ in 0..100 {
            if db.queued_ops().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(rec.ran.lock().unwrap().clone(), vec![uninstall("b", true)]);
        assert!(db.queued_ops().unwrap().is_empty());
    }
}
