//! Health, host usage, and the API's own 404.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, StreamExt};

use super::{sse, Api};
use crate::system_stats::{self, Usage};

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Unknown `/api/…` paths: JSON 404, never the shell's HTML.
pub async fn api_not_found(uri: Uri) -> Response {
    super::error(
        StatusCode::NOT_FOUND,
        format!("no API endpoint {}", uri.path()),
    )
}

async fn usage(api: &Api) -> Usage {
    let disk = system_stats::storage(&api.service.config.data_dir)
        .map(|s| s.percentage)
        .unwrap_or(0);
    let bytes = system_stats::memory_bytes();
    Usage {
        cpu: system_stats::cpu_percent(Duration::from_millis(250)).await,
        memory: system_stats::memory_percent(),
        disk,
        temperature: crate::app_usage::temperature(),
        memory_used: bytes.map(|b| b.0),
        memory_total: bytes.map(|b| b.1),
    }
}

/// `{"cpu","memory","disk"}` in percent (disk: the filesystem of `dataDir`).
pub async fn status(State(api): State<Api>) -> Json<Usage> {
    Json(usage(&api).await)
}

/// The same, every 2 s, as SSE.
pub async fn status_stream(State(api): State<Api>) -> Response {
    let frames = stream::unfold((api, true), |(api, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_millis(1750)).await;
        }
        let json = serde_json::to_string(&usage(&api).await).unwrap_or_default();
        Some((sse::frame(&json), (api, false)))
    });
    sse::respond(frames.boxed())
}

/// `{"apps": [AppUsage]}`: memory and storage per installed app (administrators).
pub async fn apps(State(api): State<Api>) -> Response {
    let list = match api.service.db.list_apps() {
        Ok(l) => l,
        Err(e) => return super::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let data_dir = api.service.config.data_dir.clone();
    // Walking data directories is blocking file I/O.
    let usage = tokio::task::spawn_blocking(move || {
        list.iter()
            .map(|a| crate::app_usage::app_usage(&data_dir, &a.name, &a.display_name))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    Json(serde_json::json!({ "apps": usage })).into_response()
}

/// Bytes used and free on the filesystem holding `dataDir` (upstream reported `/`).
pub async fn storage(State(api): State<Api>) -> Response {
    match system_stats::storage(&api.service.config.data_dir) {
        Ok(s) => Json(s).into_response(),
        Err(e) => super::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read disk usage: {e}"),
        ),
    }
}
