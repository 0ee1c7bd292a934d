//! `/api/users…`: accounts, roles and per-app access, for administrators (the router puts
//! these behind `require_admin`). Every change needs a step-up (see `stepup`), bound to the
//! action and, for changes to one user, to that user's id.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::admin_only::Caller;
use super::{error, parse, stepup, Api};
use crate::auth::{hash_password, session_token, validate_password, validate_username};
use crate::db::{AdminChange, Role};

fn internal(e: impl std::fmt::Display, what: &'static str) -> Response {
    tracing::error!(error = %e, "{what}");
    error(StatusCode::INTERNAL_SERVER_ERROR, what)
}

async fn hash(password: String) -> Result<String, Response> {
    match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => Err(internal(e, "Failed to hash the password")),
        Err(e) => Err(internal(e, "Failed to hash the password")),
    }
}

/// Every name must be a catalog app (a typo would otherwise grant nothing, silently).
fn checked_apps(api: &Api, apps: Vec<String>) -> Result<BTreeSet<String>, Response> {
    let catalog = api.service.catalog();
    let apps: BTreeSet<String> = apps.into_iter().map(|a| a.trim().to_string()).collect();
    if let Some(unknown) = apps.iter().find(|a| !catalog.contains(a)) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("Unknown app: {unknown}; use names from GET /api/apps"),
        ));
    }
    Ok(apps)
}

fn admin_change(result: AdminChange, done: serde_json::Value) -> Response {
    match result {
        AdminChange::Done => Json(done).into_response(),
        AdminChange::NotFound => error(StatusCode::NOT_FOUND, "User not found"),
        AdminChange::LastAdmin => error(
            StatusCode::CONFLICT,
            "This is the last administrator; make another user an admin first",
        ),
    }
}

/// `GET /api/users`.
pub async fn list(State(api): State<Api>) -> Response {
    match api.service.db.list_users() {
        Ok(users) => Json(users).into_response(),
        Err(e) => internal(e, "Failed to list users"),
    }
}

#[derive(Deserialize)]
pub struct NewUser {
    username: String,
    password: String,
    #[serde(default = "member")]
    role: Role,
    #[serde(default)]
    apps: Vec<String>,
}

fn member() -> Role {
    Role::Member
}

/// `POST /api/users`.
pub async fn add(
    State(api): State<Api>,
    headers: HeaderMap,
    caller: Caller,
    body: Bytes,
) -> Response {
    let new: NewUser = match parse(
        &body,
        r#"{"username", "password", "role": "admin"|"member", "apps": [...]}"#,
    ) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Err(m) = validate_username(&new.username) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    if let Err(m) = validate_password(&new.password) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    let apps = match checked_apps(&api, new.apps) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(r) = stepup::require(&api, &headers, &caller, "users.add") {
        return r;
    }
    let hash = match hash(new.password).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let user = match api.service.db.create_user(&new.username, &hash, new.role) {
        Ok(Some(u)) => u,
        Ok(None) => return error(StatusCode::CONFLICT, "That username is taken"),
        Err(e) => return internal(e, "Failed to create the user"),
    };
    if let Err(e) = api.service.db.set_app_access(&user.id, &apps) {
        return internal(e, "User created, but their app access was not saved");
    }
    tracing::info!(username = %user.username, role = user.role.as_str(), "user added");
    (StatusCode::CREATED, Json(user)).into_response()
}

/// `DELETE /api/users/{id}`: their sessions end with them.
pub async fn remove(
    State(api): State<Api>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = stepup::require(&api, &headers, &caller, &format!("users.remove:{id}")) {
        return r;
    }
    match api.service.db.delete_user(&id) {
        Ok(change) => {
            if change == AdminChange::Done {
                tracing::info!(user = %id, "user removed");
            }
            admin_change(change, serde_json::json!({ "status": "removed", "id": id }))
        }
        Err(e) => internal(e, "Failed to remove the user"),
    }
}

#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
}

/// `PUT /api/users/{id}/password`: the user's sessions end (but the admin's own, when they
/// set their own password).
pub async fn set_password(
    State(api): State<Api>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let new: NewPassword = match parse(&body, r#"{"password"}"#) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Err(m) = validate_password(&new.password) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    if let Err(r) = stepup::require(&api, &headers, &caller, &format!("users.password:{id}")) {
        return r;
    }
    let hash = match hash(new.password).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let keep = session_token(&headers);
    match api.service.db.set_password(&id, &hash, keep.as_deref()) {
        Ok(true) => {
            tracing::info!(user = %id, "password reset");
            Json(serde_json::json!({ "status": "password set", "id": id })).into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "User not found"),
        Err(e) => internal(e, "Failed to set the password"),
    }
}

#[derive(Deserialize)]
pub struct NewRole {
    role: Role,
}

/// `PUT /api/users/{id}/role`.
pub async fn set_role(
    State(api): State<Api>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let new: NewRole = match parse(&body, r#"{"role": "admin"|"member"}"#) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Err(r) = stepup::require(&api, &headers, &caller, &format!("users.role:{id}")) {
        return r;
    }
    match api.service.db.set_role(&id, new.role) {
        Ok(change) => admin_change(
            change,
            serde_json::json!({ "status": "role set", "id": id, "role": new.role }),
        ),
        Err(e) => internal(e, "Failed to change the role"),
    }
}

#[derive(Deserialize)]
pub struct NewAccess {
    apps: Vec<String>,
}

/// `PUT /api/users/{id}/apps`: the apps a member may open (replaces the list).
pub async fn set_apps(
    State(api): State<Api>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let new: NewAccess = match parse(&body, r#"{"apps": ["<app name>", ...]}"#) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let apps = match checked_apps(&api, new.apps) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(r) = stepup::require(&api, &headers, &caller, &format!("users.apps:{id}")) {
        return r;
    }
    match api.service.db.set_app_access(&id, &apps) {
        Ok(true) => {
            // Members' installed lists change with their access.
            api.service.notify_apps();
            Json(serde_json::json!({ "status": "access set", "id": id, "apps": apps }))
                .into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "User not found"),
        Err(e) => internal(e, "Failed to change app access"),
    }
}
