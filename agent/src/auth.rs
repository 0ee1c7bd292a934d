//! Local accounts and the session gate.
//!
//! - Passwords: argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), PHC strings in SQLite.
//! - Sessions: 32 random bytes, hex, in the `bloud_session` cookie (HttpOnly, SameSite=Lax,
//!   Path=/, 7 days; `Secure` when `publicUrl` is https).
//! - Loopback trust (the CLI's `bloud-agent install`): a request skips the session check only when
//!   its TCP peer is loopback **and** it carries no forwarding header. The proxy always adds one,
//!   so a browser behind the proxy on the same machine still needs a session; a header can never
//!   make a remote request local (upstream trusted `X-Forwarded-For: 127.0.0.1` from anyone).
//!   Stricter still: browser-only headers (`Origin`, `Sec-Fetch-*`) or a non-loopback `Host`
//!   also cancel the trust, so a web page cannot use a local browser to reach the API.
//! - Never fails open: any error while checking a session is a refusal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
// Headers that show a request came through a proxy (or pretends to). The list bloud-proxy
// strips from untrusted clients: whatever the proxy lets through marks the request as forwarded.
use bloud_common::forwarding::HEADERS as FORWARDING_HEADERS;

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

/// Headers only browsers send. A browser on the Bloud box itself also has a loopback peer: a
/// page from any site could otherwise make it call the API "locally" (cross-site request, or
/// DNS rebinding). Command-line clients send none of these.
const BROWSER_HEADERS: &[&str] = &[
    "origin",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
];

/// Loopback TCP peer, no forwarding header, no browser header, and a loopback `Host`.
pub fn is_local_request(peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    let Some(peer) = peer else { return false };
    peer.ip().to_canonical().is_loopback()
        && !FORWARDING_HEADERS.iter().any(|h| headers.contains_key(*h))
        && !BROWSER_HEADERS.iter().any(|h| headers.contains_key(*h))
        && headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_none_or(is_loopback_host)
}

/// `127.0.0.1[:port]`, `[::1][:port]`, `localhost[:port]` (a rebinding attacker's name is not).
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
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

/// Middleware for the protected API: local requests pass, others need a live session.
pub async fn require_session(
    State(service): State<Arc<Service>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let local = is_local_request(peer, req.headers());
    let had_cookie = session_token(req.headers()).is_some();
    match current_user(&service, req.headers()) {
        // A session names the user, local or not (per-user endpoints need one).
        Ok(Some(user)) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        // Local requests pass without a user, as the administrator (the CLI).
        _ if local => {
            req.extensions_mut().insert(LocalAdmin { uid: 0 });
            next.run(req).await
        }
        Err(e) => session_lookup_failed(e),
        Ok(None) if had_cookie => {
            let mut resp = json_error(StatusCode::UNAUTHORIZED, "Session expired");
            resp.headers_mut()
                .insert(header::SET_COOKIE, clear_session_cookie());
            resp
        }
        Ok(None) => json_error(StatusCode::UNAUTHORIZED, "Not authenticated"),
    }
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
    fn only_a_loopback_peer_without_forwarding_headers_is_local() {
        let lo: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let lo6: SocketAddr = "[::1]:5555".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5555".parse().unwrap();
        let lan: SocketAddr = "192.168.1.20:5555".parse().unwrap();
        assert!(is_local_request(Some(lo), &headers(&[])));
        assert!(is_local_request(Some(lo6), &headers(&[])));
        assert!(is_local_request(Some(mapped), &headers(&[])));
        assert!(!is_local_request(Some(lan), &headers(&[])));
        // Headers never make a request local, and their presence makes a loopback one remote.
        assert!(!is_local_request(
            Some(lan),
            &headers(&[("x-forwarded-for", "127.0.0.1")])
        ));
        // Headers the proxy itself sets (stripPrefix's removed prefix, the client's port) mark a
        // request as forwarded too.
        for h in [
            "x-forwarded-for",
            "x-real-ip",
            "true-client-ip",
            "forwarded",
            "cf-connecting-ip",
            "x-forwarded-prefix",
            "x-forwarded-port",
        ] {
            assert!(
                !is_local_request(Some(lo), &headers(&[(h, "127.0.0.1")])),
                "{h}"
            );
        }
        assert!(!is_local_request(None, &headers(&[])));
        // Browser requests on the box itself are not the CLI.
        for h in ["origin", "sec-fetch-site"] {
            assert!(!is_local_request(Some(lo), &headers(&[(h, "x")])), "{h}");
        }
        // Host names: loopback ones only (DNS rebinding uses the attacker's name).
        for ok in [
            "127.0.0.1:3000",
            "localhost",
            "LOCALHOST:3000",
            "[::1]:3000",
            "127.0.0.2",
        ] {
            assert!(
                is_local_request(Some(lo), &headers(&[("host", ok)])),
                "{ok}"
            );
        }
        for bad in ["evil.example:3000", "bloud.local", "192.168.1.2:3000"] {
            assert!(
                !is_local_request(Some(lo), &headers(&[("host", bad)])),
                "{bad}"
            );
        }
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
