//! Health and the API's own 404.

use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::Json;

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
