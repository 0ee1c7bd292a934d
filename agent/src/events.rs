//! Event hub behind the SSE streams: the installed-apps snapshot (`/api/apps/events`) and the
//! rebuild log (`/api/rebuilds/stream`).
//!
//! The rebuild stream replays the running rebuild from its first line to a client that connects
//! late (the install page usually opens after the rebuild started), then follows it live.
//! Backlog and subscription are taken under one lock, so a client sees every line exactly once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

/// Upstream's `RebuildEvent`, plus the id of the rebuild it belongs to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RebuildEvent {
    /// `output`, `error` or `complete`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    pub rebuild_id: i64,
}

/// Lines of one rebuild kept for late subscribers; past this, the replay starts with a note.
const BACKLOG_LIMIT: usize = 20_000;

#[derive(Default)]
struct Live {
    backlog: VecDeque<Arc<str>>,
    dropped: usize,
}

pub struct Events {
    apps_tx: broadcast::Sender<Arc<str>>,
    rebuild_tx: broadcast::Sender<Arc<str>>,
    live: Mutex<Live>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        Events {
            apps_tx: broadcast::channel(64).0,
            rebuild_tx: broadcast::channel(4096).0,
            live: Mutex::new(Live::default()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a new installed-apps snapshot (JSON array) to every `/api/apps/events` client.
    pub fn publish_apps(&self, snapshot_json: String) {
        // No receivers is fine: nobody is watching.
        let _ = self.apps_tx.send(Arc::from(snapshot_json));
    }

    pub fn subscribe_apps(&self) -> broadcast::Receiver<Arc<str>> {
        self.apps_tx.subscribe()
    }

    /// Starts a new rebuild's stream: the previous rebuild's backlog is dropped.
    pub fn rebuild_started(&self, event: RebuildEvent) {
        let mut live = self.live();
        *live = Live::default();
        Self::push(&mut live, &self.rebuild_tx, &event);
    }

    pub fn rebuild_event(&self, event: RebuildEvent) {
        let mut live = self.live();
        Self::push(&mut live, &self.rebuild_tx, &event);
    }

    fn push(live: &mut Live, tx: &broadcast::Sender<Arc<str>>, event: &RebuildEvent) {
        let json: Arc<str> = match serde_json::to_string(event) {
            Ok(s) => Arc::from(s),
            Err(_) => return,
        };
        if live.backlog.len() >= BACKLOG_LIMIT {
            live.backlog.pop_front();
            live.dropped += 1;
        }
        live.backlog.push_back(json.clone());
        let _ = tx.send(json);
    }

    /// The current (or last) rebuild's events so far, and a receiver for what follows.
    pub fn subscribe_rebuilds(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let live = self.live();
        let rx = self.rebuild_tx.subscribe();
        let mut backlog = Vec::with_capacity(live.backlog.len() + 1);
        if live.dropped > 0 {
            let note = RebuildEvent {
                kind: "output",
                message: format!(
                    "[{} earlier lines omitted; the full log is at /api/rebuilds/<id>/log]",
                    live.dropped
                ),
                success: None,
                rebuild_id: 0,
            };
            if let Ok(s) = serde_json::to_string(&note) {
                backlog.push(Arc::from(s));
            }
        }
        backlog.extend(live.backlog.iter().cloned());
        (backlog, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &'static str, msg: &str, id: i64) -> RebuildEvent {
        RebuildEvent {
            kind,
            message: msg.into(),
            success: None,
            rebuild_id: id,
        }
    }

    #[test]
    fn a_huge_rebuild_keeps_the_last_lines_and_says_how_many_were_dropped() {
        let events = Events::new();
        events.rebuild_started(ev("output", "Running: x", 1));
        for i in 0..BACKLOG_LIMIT + 10 {
            events.rebuild_event(ev("output", &format!("line {i}"), 1));
        }
        let (backlog, _) = events.subscribe_rebuilds();
        assert_eq!(backlog.len(), BACKLOG_LIMIT + 1);
        assert!(
            backlog[0].contains("11 earlier lines omitted"),
            "{}",
            backlog[0]
        );
        assert!(backlog[1].contains("\"line 10\""), "{}", backlog[1]);
    }

    #[tokio::test]
    async fn late_subscribers_get_the_backlog_then_live_events() {
        let events = Events::new();
        events.rebuild_started(ev("output", "Running: x", 1));
        events.rebuild_event(ev("output", "line 1", 1));
        let (backlog, mut rx) = events.subscribe_rebuilds();
        assert_eq!(backlog.len(), 2);
        assert!(backlog[1].contains("line 1"));
        events.rebuild_event(ev("output", "line 2", 1));
        let next = rx.recv().await.unwrap();
        assert!(next.contains("line 2") && next.contains("\"rebuildId\":1"));
        // A new rebuild starts from a clean backlog.
        events.rebuild_started(ev("output", "Running: y", 2));
        let (backlog, _) = events.subscribe_rebuilds();
        assert_eq!(backlog.len(), 1);
        assert!(backlog[0].contains("Running: y"));
    }
}
