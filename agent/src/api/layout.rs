//! `/api/user/layout`: the signed-in user's home grid (upstream's `GridElement` list). Needs a
//! user: a local CLI request passes the gate but has none, so it gets 401 (as upstream).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::{error, Api};
use crate::db::User;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridElement {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub col: u32,
    pub row: u32,
    pub colspan: u32,
    pub rowspan: u32,
}

/// Upstream also stored `{"elements":[…],"widgetConfigs":…}`; both read back as the list.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    List(Vec<GridElement>),
    Legacy { elements: Vec<GridElement> },
}

pub async fn get(State(api): State<Api>, user: Option<Extension<User>>) -> Response {
    let Some(Extension(user)) = user else {
        return error(StatusCode::UNAUTHORIZED, "not authenticated");
    };
    match api.service.db.user_layout(&user.id) {
        Ok(Some(text)) => match serde_json::from_str::<Stored>(&text) {
            Ok(Stored::List(l)) | Ok(Stored::Legacy { elements: l }) => Json(l).into_response(),
            Err(_) => Json(Vec::<GridElement>::new()).into_response(),
        },
        Ok(None) => error(StatusCode::UNAUTHORIZED, "not authenticated"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub async fn put(State(api): State<Api>, user: Option<Extension<User>>, body: Bytes) -> Response {
    let Some(Extension(user)) = user else {
        return error(StatusCode::UNAUTHORIZED, "not authenticated");
    };
    let layout: Vec<GridElement> = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid layout: {e}")),
    };
    if layout
        .iter()
        .any(|g| !(g.kind == "app" || g.kind == "widget") || g.col == 0 || g.row == 0)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid layout: type is app or widget; col and row start at 1",
        );
    }
    let json = serde_json::to_string(&layout).unwrap_or_else(|_| "[]".into());
    match api.service.db.set_user_layout(&user.id, &json) {
        Ok(_) => Json(serde_json::json!({ "status": "saved" })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
