//! `/api/apps…`: catalog, installed apps and their event stream, plans, install and uninstall.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::admin_only::Caller;
use super::{error, sse, stepup, Api};
use crate::db::{DbResult, InstalledApp};
use crate::plan;
use crate::queue::{OpKind, OpResult, Operation};

pub async fn catalog(State(api): State<Api>) -> Json<serde_json::Value> {
    let catalog = api.service.catalog();
    let apps: Vec<_> = catalog
        .store_apps()
        .map(|app| with_data_location(&api, app))
        .collect();
    Json(serde_json::json!({ "apps": apps }))
}

/// The catalog entry plus `dataLocation`, where the app keeps its data on this host
/// (`<dataDir>/<name>`, what clear-data deletes), for the shell's app detail page.
fn with_data_location(api: &Api, app: &crate::catalog::AppMeta) -> serde_json::Value {
    let mut value = serde_json::to_value(app).unwrap_or_default();
    if let serde_json::Value::Object(map) = &mut value {
        let dir = api.service.config.data_dir.join(&app.name);
        map.insert(
            "dataLocation".into(),
            serde_json::Value::String(dir.display().to_string()),
        );
    }
    value
}

/// The installed apps this caller may see: all for admins, the ones they may open for members.
fn visible_apps(api: &Api, caller: &Caller) -> DbResult<Vec<InstalledApp>> {
    let apps = api.service.db.list_apps()?;
    let Some(member) = caller.member() else {
        return Ok(apps);
    };
    let access = api.service.db.app_access(&member.id)?;
    Ok(apps
        .into_iter()
        .filter(|a| access.contains(&a.name))
        .collect())
}

pub async fn installed(State(api): State<Api>, caller: Caller) -> Response {
    match visible_apps(&api, &caller) {
        Ok(apps) => Json(apps).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot list installed apps");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to get installed apps",
            )
        }
    }
}

/// Who an open stream is for, read again at every change: a session that ended (logout,
/// password reset, user removed) closes the stream, and a new role changes what it shows.
fn current_caller(api: &Api, session: Option<&str>, at_connect: &Caller) -> Option<Caller> {
    if *at_connect == Caller::Local {
        return Some(Caller::Local);
    }
    match api.service.db.session_user(session?) {
        Ok(Some(user)) => Some(Caller::from_user(user)),
        _ => None,
    }
}

fn snapshot(api: &Api, caller: &Caller) -> Option<String> {
    visible_apps(api, caller)
        .ok()
        .and_then(|apps| serde_json::to_string(&apps).ok())
}

/// The installed list on connect, then after every change (a member's, filtered, is read
/// again for them).
pub async fn events(State(api): State<Api>, headers: HeaderMap, caller: Caller) -> Response {
    let rx = api.service.events.subscribe_apps();
    let session = crate::auth::session_token(&headers);
    let first = snapshot(&api, &caller).unwrap_or_else(|| "[]".to_string());
    let live = stream::unfold(rx, move |mut rx| {
        let (api, session, at_connect) = (api.clone(), session.clone(), caller.clone());
        async move {
            loop {
                let event = rx.recv().await;
                if matches!(event, Err(RecvError::Closed)) {
                    return None;
                }
                let caller = current_caller(&api, session.as_deref(), &at_connect)?;
                match event {
                    Ok(json) if caller.member().is_none() => return Some((sse::frame(&json), rx)),
                    // Snapshots supersede each other: after a lag, send the current one.
                    _ => {
                        if let Some(json) = snapshot(&api, &caller) {
                            return Some((sse::frame(&json), rx));
                        }
                    }
                }
            }
        }
    });
    sse::respond(stream::once(async move { sse::frame(&first) }).chain(live))
}

pub async fn refresh_catalog(State(api): State<Api>) -> Json<serde_json::Value> {
    let errors = api.service.refresh_catalog();
    if let Err(e) = api.service.regenerate_routes() {
        tracing::warn!(error = %e, "routes not updated after the catalog refresh");
    }
    Json(serde_json::json!({ "status": "catalog refreshed", "errors": errors }))
}

fn plan_error(e: plan::PlanError) -> Response {
    match e {
        plan::PlanError::UnknownApp(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        other => error(StatusCode::BAD_REQUEST, other.to_string()),
    }
}

pub async fn plan_install(State(api): State<Api>, Path(name): Path<String>) -> Response {
    let installed = match api.service.installed() {
        Ok(i) => i,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let catalog = api.service.catalog();
    match plan::plan_install(&catalog, &installed, &name) {
        Ok(mut p) => {
            if let Some(meta) = catalog.get(&name) {
                let public = api.service.config.public_apps.contains(&name);
                p.sign_in = plan::sign_in(meta, public);
            }
            Json(p).into_response()
        }
        Err(e) => plan_error(e),
    }
}

pub async fn plan_remove(State(api): State<Api>, Path(name): Path<String>) -> Response {
    let installed = match api.service.installed() {
        Ok(i) => i,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match plan::plan_remove(&api.service.catalog(), &installed, &name) {
        Ok(p) => Json(p).into_response(),
        Err(e) => plan_error(e),
    }
}

pub async fn metadata(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match api.service.catalog().get(&name) {
        Some(app) => Json(with_data_location(&api, app)).into_response(),
        None => error(StatusCode::NOT_FOUND, "app not found"),
    }
}

pub async fn icon(State(api): State<Api>, Path(name): Path<String>) -> Response {
    let Some(path) = api.service.catalog().icon_path(&name) else {
        return (StatusCode::NOT_FOUND, "icon not found").into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read icon");
            (StatusCode::NOT_FOUND, "icon not found").into_response()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstallBody {
    #[serde(default)]
    choices: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UninstallBody {
    #[serde(default)]
    clear_data: bool,
}

#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    /// `wait=false`: answer 202 once queued instead of waiting for the result.
    pub(super) wait: Option<bool>,
}

/// An empty body means "no options" (upstream parsed the body only when one was sent).
fn parse_body<T: Default + serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("invalid request body: {e}"),
        )
    })
}

pub(super) async fn run(api: &Api, op: Operation, wait: bool) -> Response {
    let app = op.app.clone();
    let rx = match api.queue.submit(op) {
        Ok(rx) => rx,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if !wait {
        return (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "app": app, "queued": true })),
        )
            .into_response();
    }
    // Dropping this future (client gone) only stops the waiting: the queue runs the operation.
    match rx.await {
        Ok(result) => result_response(result),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the operation queue stopped before finishing; see the agent's log",
        ),
    }
}

fn result_response(result: OpResult) -> Response {
    let status = if result.success {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, Json(result)).into_response()
}

pub async fn install(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<WaitQuery>,
    body: Bytes,
) -> Response {
    let body: InstallBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !api.service.catalog().contains(&name) {
        return error(StatusCode::NOT_FOUND, format!("unknown app: {name}"));
    }
    let op = Operation {
        app: name,
        kind: OpKind::Install {
            choices: body.choices,
        },
    };
    run(&api, op, q.wait.unwrap_or(true)).await
}

pub async fn uninstall(
    State(api): State<Api>,
    headers: HeaderMap,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<WaitQuery>,
    body: Bytes,
) -> Response {
    let body: UninstallBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    // Deleting data cannot be undone: it needs the password again.
    if body.clear_data {
        let action = format!("apps.uninstall-data:{name}");
        if let Err(r) = stepup::require(&api, &headers, &caller, &action) {
            return r;
        }
    }
    // Not installed yet may still be fine: an install of it can be waiting in the same batch.
    match api.service.db.get_app(&name) {
        Ok(None) if !api.service.catalog().contains(&name) => {
            return error(StatusCode::NOT_FOUND, format!("app not installed: {name}"))
        }
        Ok(_) => {}
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let op = Operation {
        app: name,
        kind: OpKind::Uninstall {
            clear_data: body.clear_data,
        },
    };
    run(&api, op, q.wait.unwrap_or(true)).await
}

/// Restarts an installed app's service, queued like installs; answers when it has restarted.
pub async fn restart(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Response {
    match api.service.db.get_app(&name) {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("app not installed: {name}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let op = Operation {
        app: name,
        kind: OpKind::Restart,
    };
    run(&api, op, q.wait.unwrap_or(true)).await
}

/// Installed: a queued uninstall with `clearData`. Not installed: deletes `<dataDir>/<app>`.
pub async fn clear_data(
    State(api): State<Api>,
    headers: HeaderMap,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    if !api.service.catalog().contains(&name) {
        return error(StatusCode::NOT_FOUND, "app not found in catalog");
    }
    if let Err(r) = stepup::require(&api, &headers, &caller, &format!("apps.clear-data:{name}")) {
        return r;
    }
    match api.service.db.get_app(&name) {
        Ok(Some(_)) => {
            let op = Operation {
                app: name,
                kind: OpKind::Uninstall { clear_data: true },
            };
            run(&api, op, true).await
        }
        Ok(None) => {
            crate::orchestrator::clear_app_data(&api.service, &name);
            Json(serde_json::json!({ "status": "data cleared", "app": name })).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenameBody {
    #[serde(default)]
    display_name: String,
}

pub async fn rename(State(api): State<Api>, Path(name): Path<String>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<RenameBody>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid request body");
    };
    let display_name = body.display_name.trim();
    if display_name.is_empty() {
        return error(StatusCode::BAD_REQUEST, "displayName is required");
    }
    match api.service.db.rename_app(&name, display_name) {
        Ok(true) => {
            api.service.notify_apps();
            Json(serde_json::json!({
                "status": "renamed",
                "app": name,
                "displayName": display_name,
            }))
            .into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, format!("app not found: {name}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
