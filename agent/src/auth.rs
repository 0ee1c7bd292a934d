//! Local accounts and the session gate.
//!
//! - Passwords: argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), PHC strings in SQLite.
//! - Sessions: 32 random bytes, hex, in the `bloud_session` cookie (HttpOnly, SameSite=Lax,
//!   Path=/, 7 days; `Secure` when `publicUrl` is https).
//! - No trust by address: over TCP every protected request needs a session, whatever its peer
//!   address or headers (app containers share the host's network, so loopback proves nothing).
//!   The CLI uses the Unix socket instead (`crate::socket`), whose requests carry [`LocalAdmin`].
//! - Never fails open: any error while checking a session is a refusal.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::db::{DbError, User};
use crate::service::Service;

pub const SESSION_COOKIE: &str = "bloud_session";
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Request extension: the request came over the agent's Unix socket from a peer whose
/// credentials (`SO_PEERCRED`) were accepted (root, the agent's own uid, or the admin group).
/// Such a request acts as an administrator without a session; TCP requests never carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAdmin {
    pub uid: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Constant-time comparison inside argon2; a malformed stored hash never verifies.
pub fn verify_password(stored_hash: &str, password: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Upstream's rules: 3–30 characters of `[A-Za-z0-9_]`.
pub fn validate_username(username: &str) -> Result<(), &'static str> {
    let n = username.chars().count();
    if !(3..=30).contains(&n) {
        return Err("Username must be between 3 and 30 characters");
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err("Username can only contain letters, numbers, and underscores");
    }
    Ok(())
}

pub fn validate_password(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < 8 {
        return Err("Password must be at least 8 characters");
    }
    if password.len() > 1024 {
        return Err("Password must be at most 1024 bytes");
    }
    Ok(())
}

/// The session token from the `Cookie` header(s), if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

pub fn session_cookie(token: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        SESSION_TTL.as_secs()
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static("bloud_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// The user of the request's session: `Ok(None)` without a (valid) session.
pub fn current_user(service: &Service, headers: &HeaderMap) -> Result<Option<User>, DbError> {
    match session_token(headers) {
        Some(token) => service.db.session_user(&token),
        None => Ok(None),
    }
}

/// The answer when the session store cannot be read: refuse (never fail open).
pub fn session_lookup_failed(e: DbError) -> Response {
    tracing::error!(error = %e, "session lookup failed");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Failed to validate session",
    )
}

/// Middleware for the protected API: a live session, or a request from the CLI socket.
pub async fn require_session(
    State(service): State<Arc<Service>>,
    mut req: Request,
    next: Next,
) -> Response {
    let had_cookie = session_token(req.headers()).is_some();
    let socket_admin = req.extensions().get::<LocalAdmin>().is_some();
    match current_user(&service, req.headers()) {
        // A session names the user (per-user endpoints need one).
        Ok(Some(user)) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        // Accepted by the socket's peer check (never set on TCP requests).
        _ if socket_admin => next.run(req).await,
        Err(e) => session_lookup_failed(e),
        Ok(None) if had_cookie => {
            drain_body(req).await;
            let mut resp = json_error(StatusCode::UNAUTHORIZED, "Session expired");
            resp.headers_mut()
                .insert(header::SET_COOKIE, clear_session_cookie());
            resp
        }
        Ok(None) => {
            drain_body(req).await;
            json_error(StatusCode::UNAUTHORIZED, "Not authenticated")
        }
    }
}

/// Reads (and drops) a refused request's small body before answering. A response sent while the
/// body is still unread makes the server close the connection; the proxy may already be reusing
/// that pooled connection for the next request, which then fails with 502.
pub async fn drain_body(req: Request) {
    const LIMIT: usize = 64 * 1024;
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        axum::body::to_bytes(req.into_body(), LIMIT),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn cookies() {
        let h = headers(&[("cookie", "a=1; bloud_session=abc; b=2")]);
        assert_eq!(session_token(&h).as_deref(), Some("abc"));
        assert_eq!(
            session_token(&headers(&[("cookie", "bloud_session=")])),
            None
        );
        let c = session_cookie("abc", false);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"));
        assert!(!c.contains("Secure"));
    }

    #[test]
    fn username_and_password_rules() {
        assert!(validate_username("al").is_err());
        assert!(validate_username("alice_1").is_ok());
        assert!(validate_username("alice smith").is_err());
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
    }
}
