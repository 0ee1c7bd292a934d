//! Step-up: destructive and account actions need the user's password again, just before.
//!
//! Apps run same-origin inside the shell's frame, so a script in an app can use the ambient
//! session cookie. It cannot know the password, so it cannot get a step-up token:
//!
//! 1. The action answers `403 {"error", "stepUpRequired": true, "action": "<action>"}`.
//! 2. The shell asks the user for their password and sends `POST /api/auth/step-up
//!    {"password", "action"}`; the answer is `{"token", "action", "expiresIn"}`.
//! 3. The shell repeats the action with the header `X-Bloud-Step-Up: <token>`.
//!
//! A token is good once, for that action only, from that session only, for `STEP_UP_TTL`.
//! The CLI (`LocalAdmin`) needs none: its peer credentials were checked.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use super::admin_only::Caller;
use super::auth::too_many;
use super::{error, Api};
use crate::auth::session_token;
use crate::db::User;
use crate::login_limit::{Busy, LoginGuard};

pub const STEP_UP_HEADER: &str = "x-bloud-step-up";
pub const STEP_UP_TTL: Duration = Duration::from_secs(120);

/// The answer the shell recognises and turns into a password prompt.
pub fn step_up_required(action: &str, message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({
            "error": message,
            "stepUpRequired": true,
            "action": action,
        })),
    )
        .into_response()
}

/// Checks (and uses up) the request's step-up token for `action`.
pub fn require(
    api: &Api,
    headers: &HeaderMap,
    caller: &Caller,
    action: &str,
) -> Result<(), Response> {
    if *caller == Caller::Local {
        return Ok(());
    }
    let (Some(session), Some(token)) = (
        session_token(headers),
        headers.get(STEP_UP_HEADER).and_then(|v| v.to_str().ok()),
    ) else {
        return Err(step_up_required(
            action,
            "Confirm with your password to do this",
        ));
    };
    match api
        .service
        .db
        .consume_step_up(&session, action, token.trim())
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(step_up_required(
            action,
            "The password confirmation expired or was for something else; confirm again",
        )),
        Err(e) => {
            tracing::error!(error = %e, "step-up check");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to check the password confirmation",
            ))
        }
    }
}

#[derive(Deserialize)]
pub struct StepUpBody {
    #[serde(default)]
    password: String,
    #[serde(default)]
    action: String,
}

/// A wrong step-up password counts like a failed login of the account (see the backoff above).
fn wrong_password(user: &User) {
    tracing::info!(username = %user.username, "step-up refused: wrong password");
}

/// `POST /api/auth/step-up`.
pub async fn step_up(
    State(api): State<Api>,
    headers: HeaderMap,
    user: Option<Extension<User>>,
    guard: Option<Extension<Arc<LoginGuard>>>,
    body: Bytes,
) -> Response {
    // The same bounded argon2 workers and per-account backoff as the login: a script holding
    // the session must not get an unlimited password oracle (or a memory flood) here.
    let Some(Extension(guard)) = guard else {
        tracing::error!("step-up: no login guard installed");
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Step-up failed");
    };
    let Some(Extension(user)) = user else {
        return error(
            StatusCode::BAD_REQUEST,
            "Step-up is for signed-in users; the command line needs none",
        );
    };
    let Some(session) = session_token(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "Not authenticated");
    };
    let Ok(body) = serde_json::from_slice::<StepUpBody>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid request body: expected {\"password\": …, \"action\": …}",
        );
    };
    let action = body.action.trim();
    if action.is_empty() || action.len() > 200 {
        return error(
            StatusCode::BAD_REQUEST,
            "action is required: the value of \"action\" from the 403 answer",
        );
    }
    // Counted against the account (a session names it, whatever client sends it); the client
    // slot is the user's own so one user's typos never lock another's step-up.
    let client = format!("step-up:{}", user.id);
    if let Some(left) = guard.backoff.locked(&user.username, &client) {
        tracing::info!(username = %user.username, "step-up refused: too many failures");
        return too_many(left, "Too many wrong passwords; try again later");
    }
    let stored = match api.service.db.password_hash(&user.id) {
        Ok(Some(h)) => h,
        Ok(None) => return error(StatusCode::UNAUTHORIZED, "Not authenticated"),
        Err(e) => {
            tracing::error!(error = %e, "step-up");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "Step-up failed");
        }
    };
    let password = body.password;
    let ok = match guard.work.verify(Some(stored), password).await {
        Ok(ok) => ok,
        Err(Busy) => {
            return too_many(
                Duration::from_secs(1),
                "Too many password checks at once; try again in a moment",
            )
        }
    };
    if !ok {
        guard.backoff.failed(&user.username, &client);
        wrong_password(&user);
        // 403, not 401: the session itself is fine, and the shell keeps it.
        return error(StatusCode::FORBIDDEN, "Wrong password");
    }
    match api.service.db.create_step_up(&session, action, STEP_UP_TTL) {
        Ok(token) => Json(serde_json::json!({
            "token": token,
            "action": action,
            "expiresIn": STEP_UP_TTL.as_secs(),
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "step-up");
            error(StatusCode::INTERNAL_SERVER_ERROR, "Step-up failed")
        }
    }
}
