//! `/api/rebuilds…`: the rebuild log list, one rebuild with its log, and the live stream.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::{error, sse, Api};
use crate::db::RebuildRecord;

const LIST_LIMIT: usize = 100;

pub async fn list(State(api): State<Api>) -> Response {
    match api.service.db.list_rebuilds(LIST_LIMIT) {
        Ok(list) => Json(serde_json::json!({ "rebuilds": list })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn with_log(record: RebuildRecord) -> Response {
    let log = tokio::fs::read(&record.log_path)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut v = serde_json::to_value(&record).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("log".into(), serde_json::Value::String(log));
    }
    Json(v).into_response()
}

pub async fn latest(State(api): State<Api>) -> Response {
    match api.service.db.list_rebuilds(1) {
        Ok(mut list) => match list.pop() {
            Some(r) => with_log(r).await,
            None => error(StatusCode::NOT_FOUND, "no rebuild has run yet"),
        },
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn find(api: &Api, id: &str) -> Result<RebuildRecord, Response> {
    let id: i64 = id.parse().map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            format!("`{id}` is not a rebuild id"),
        )
    })?;
    match api.service.db.get_rebuild(id) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(error(StatusCode::NOT_FOUND, format!("no rebuild {id}"))),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// Metadata and the whole log (`log` field).
pub async fn get(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match find(&api, &id) {
        Ok(r) => with_log(r).await,
        Err(resp) => resp,
    }
}

/// The log as plain text.
pub async fn log(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let record = match find(&api, &id) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match tokio::fs::read(&record.log_path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response(),
        Err(e) => error(
            StatusCode::NOT_FOUND,
            format!("log of rebuild {} is not readable: {e}", record.id),
        ),
    }
}

/// `RebuildEvent` frames: the current rebuild from its first line, then live, across rebuilds.
pub async fn stream(State(api): State<Api>) -> Response {
    let (backlog, rx) = api.service.events.subscribe_rebuilds();
    let replay = stream::iter(backlog.into_iter().map(|f| sse::frame(&f)));
    let live = stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(frame) => Some((sse::frame(&frame), rx)),
            Err(RecvError::Lagged(n)) => {
                let note = serde_json::json!({
                    "type": "output",
                    "message": format!("[{n} lines skipped: this client was too slow]"),
                    "rebuildId": 0,
                });
                Some((sse::frame(&note.to_string()), rx))
            }
            Err(RecvError::Closed) => None,
        }
    });
    sse::respond(replay.chain(live))
}
