//! `/api/setup/*` and `/api/auth/*`: first-user setup, login, logout, current user.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Deserialize;

use super::{error, Api};
use crate::auth::{
    clear_session_cookie, current_user, hash_password, session_cookie, session_token,
    validate_password, validate_username, SESSION_TTL,
};
use crate::login_limit::{client_key, Busy, LoginGuard};

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

fn setup_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "success": false, "error": message })),
    )
        .into_response()
}

/// `Secure` when the users' URL is https or this request came over HTTPS (the proxy's
/// `X-Forwarded-Proto`, see `tls::request_is_https`). Over plain HTTP a `Secure` cookie would
/// not come back and the user could not sign in.
fn secure(api: &Api, headers: &HeaderMap) -> bool {
    api.service.config.public_url.starts_with("https://") || crate::tls::request_is_https(headers)
}

pub async fn setup_status(State(api): State<Api>) -> Response {
    match api.service.db.has_users() {
        Ok(has) => Json(serde_json::json!({
            "setupRequired": !has,
            // No Authentik is needed for local accounts.
            "authentikReady": false,
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "setup status");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "setupRequired": false, "authentikReady": false })),
            )
                .into_response()
        }
    }
}

/// Creates the first user and signs them in. 409 once any user exists; concurrent calls create
/// exactly one user (the insert is conditional, see `Db::create_first_user`).
pub async fn create_user(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match api.service.db.has_users() {
        Ok(true) => return setup_error(StatusCode::CONFLICT, "Setup already completed"),
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "setup");
            return setup_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to check existing users",
            );
        }
    }
    let Ok(creds) = serde_json::from_slice::<Credentials>(&body) else {
        return setup_error(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    let https = secure(&api, &headers);
    if let Err(m) = validate_username(&creds.username) {
        return setup_error(StatusCode::BAD_REQUEST, m);
    }
    if let Err(m) = validate_password(&creds.password) {
        return setup_error(StatusCode::BAD_REQUEST, m);
    }
    let password = creds.password;
    let hash = match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "setup");
            return setup_error(StatusCode::INTERNAL_SERVER_ERROR, "Failed to create user");
        }
        Err(e) => {
            tracing::error!(error = %e, "setup");
            return setup_error(StatusCode::INTERNAL_SERVER_ERROR, "Failed to create user");
        }
    };
    let user = match api.service.db.create_first_user(&creds.username, &hash) {
        Ok(Some(u)) => u,
        Ok(None) => return setup_error(StatusCode::CONFLICT, "Setup already completed"),
        Err(e) => {
            tracing::error!(error = %e, "setup");
            return setup_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to create local user record",
            );
        }
    };
    tracing::info!(username = %user.username, "first user created");
    let mut resp = Json(serde_json::json!({
        "success": true,
        "loginUrl": "/",
        "user": user,
    }))
    .into_response();
    match api.service.db.create_session(&user.id, SESSION_TTL) {
        Ok(token) => {
            resp.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&token, https));
        }
        Err(e) => tracing::warn!(error = %e, "user created but not signed in"),
    }
    resp
}

/// Largest login body read (a 1 KiB password limit leaves plenty of room).
const LOGIN_BODY_LIMIT: usize = 8 * 1024;

pub(super) fn too_many(retry_after: Duration, message: &str) -> Response {
    let mut resp = error(StatusCode::TOO_MANY_REQUESTS, message);
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Password login, bounded by [`LoginGuard`]: a locked account or client gets 429 before any
/// password work (the same for unknown names), and at most a few argon2 checks run at once.
pub async fn login(State(api): State<Api>, req: Request) -> Response {
    let Some(guard) = req.extensions().get::<Arc<LoginGuard>>().cloned() else {
        tracing::error!("login: no login guard installed");
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Login failed");
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = client_key(peer, req.headers());
    let https = secure(&api, req.headers());
    let Ok(body) = axum::body::to_bytes(req.into_body(), LOGIN_BODY_LIMIT).await else {
        return error(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    let Ok(creds) = serde_json::from_slice::<Credentials>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    if let Some(left) = guard.backoff.locked(&creds.username, &client) {
        tracing::info!(username = %creds.username, %client, "login refused: too many failures");
        return too_many(left, "Too many failed logins; try again later");
    }
    let found = match api.service.db.user_by_name(&creds.username) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "login");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "Login failed");
        }
    };
    // Unknown users cost a hash verification too (`None`: a hash of a secret nobody knows), so
    // timing does not reveal which names exist.
    let (user, stored) = match found {
        Some((u, h)) => (Some(u), Some(h)),
        None => (None, None),
    };
    let ok = match guard.work.verify(stored, creds.password).await {
        Ok(ok) => ok,
        Err(Busy) => {
            return too_many(
                Duration::from_secs(1),
                "Too many sign-in attempts at once; try again in a moment",
            )
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        guard.backoff.failed(&creds.username, &client);
        tracing::info!(username = %creds.username, %client, "login refused");
        return error(StatusCode::UNAUTHORIZED, "Invalid username or password");
    };
    guard.backoff.succeeded(&creds.username);
    match api.service.db.create_session(&user.id, SESSION_TTL) {
        Ok(token) => {
            let mut resp = Json(&user).into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&token, https));
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "login");
            error(StatusCode::INTERNAL_SERVER_ERROR, "Login failed")
        }
    }
}

fn end_session(api: &Api, headers: &HeaderMap) {
    if let Some(token) = session_token(headers) {
        if let Err(e) = api.service.db.delete_session(&token) {
            tracing::warn!(error = %e, "logout: cannot delete the session");
        }
    }
}

pub async fn logout(State(api): State<Api>, headers: HeaderMap) -> Response {
    end_session(&api, &headers);
    let mut resp = Json(serde_json::json!({ "success": true })).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_session_cookie());
    resp
}

/// Upstream's `POST /auth/logout`: clears the session and redirects to `/`.
pub async fn logout_redirect(State(api): State<Api>, headers: HeaderMap) -> Response {
    end_session(&api, &headers);
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_session_cookie());
    resp
}

/// The session's user; no loopback shortcut here (a local CLI has no user).
pub async fn me(State(api): State<Api>, headers: HeaderMap) -> Response {
    match current_user(&api.service, &headers) {
        Ok(Some(user)) => Json(user).into_response(),
        Ok(None) => error(StatusCode::UNAUTHORIZED, "Not authenticated"),
        Err(e) => crate::auth::session_lookup_failed(e),
    }
}
