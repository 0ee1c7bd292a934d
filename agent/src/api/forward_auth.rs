//! `/api/auth/forward[/<app>]`: the forward-auth endpoint bloud-proxy's `forwardAuth` middleware
//! asks before an app request goes upstream (the generated `<app>-auth` middleware).
//!
//! - A live `bloud_session` answers 200 with the user's identity in [`IDENTITY_HEADERS`]; the
//!   proxy copies exactly those into the app's request (deleting any client-sent copy first).
//! - Without one: a browser navigation (`Sec-Fetch-Mode: navigate`, or `Accept` naming
//!   `text/html`) gets 302 to the shell's `/login?next=<X-Forwarded-Uri>` (only a same-origin
//!   path is kept as `next`), anything else 401. The proxy hands either to the client as is.
//! - Never fails open: a database error is a 500, which the proxy passes on (the app is not
//!   reached).
//! - Sessions found valid are cached for [`CACHE_TTL`] (at most [`CACHE_CAPACITY`] entries),
//!   keyed by the SHA-256 of the token, so a logout or an expiry is honoured by app routes at
//!   most [`CACHE_TTL`] late. Misses are not cached: a flood of made-up tokens cannot push real
//!   sessions out, and a new login is seen at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::session_token;
use crate::db::{DbError, Role, User};
use crate::service::Service;

/// Where the endpoint is mounted (`/api/auth/forward` and `/api/auth/forward/<app>`).
pub const PATH: &str = "/api/auth/forward";

/// How long a valid session is answered from memory.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Most sessions kept in memory (one per signed-in browser; a home has a handful).
pub const CACHE_CAPACITY: usize = 4096;

/// Identity headers of the 200 answer, in the order they are set. The generated middleware
/// lists the same names in `authResponseHeaders`.
pub const IDENTITY_HEADERS: [&str; 4] = [
    "Remote-User",
    "Remote-Name",
    "Remote-Groups",
    "X-Bloud-User",
];

/// The request headers this endpoint reads (the generated `authRequestHeaders`); the proxy adds
/// its `X-Forwarded-*` set on top.
pub const REQUEST_HEADERS: [&str; 3] = ["Cookie", "Accept", "Sec-Fetch-Mode"];

/// State of the endpoint: the service (database) and the session cache.
#[derive(Clone)]
pub struct ForwardAuth {
    service: Arc<Service>,
    cache: Arc<SessionCache>,
}

impl ForwardAuth {
    pub fn new(service: Arc<Service>) -> Self {
        ForwardAuth {
            service,
            cache: Arc::new(SessionCache::new(CACHE_TTL, CACHE_CAPACITY)),
        }
    }
}

/// Valid sessions seen recently, by token digest.
pub struct SessionCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], (User, Instant)>>,
}

impl SessionCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        SessionCache {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The user of `token`, from memory when seen valid less than the TTL ago, else from
    /// `lookup` (whose valid answers are remembered).
    pub fn user<E>(
        &self,
        token: &str,
        now: Instant,
        lookup: impl FnOnce(&str) -> Result<Option<User>, E>,
    ) -> Result<Option<User>, E> {
        let key = Self::key(token);
        if let Ok(entries) = self.entries.lock() {
            if let Some((user, at)) = entries.get(&key) {
                if now.saturating_duration_since(*at) < self.ttl {
                    return Ok(Some(user.clone()));
                }
            }
        }
        let found = lookup(token)?;
        if let (Some(user), Ok(mut entries)) = (&found, self.entries.lock()) {
            if entries.len() >= self.capacity {
                let ttl = self.ttl;
                entries.retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
                if entries.len() >= self.capacity {
                    // Still full of live entries: start over rather than grow without bound.
                    entries.clear();
                }
            }
            entries.insert(key, (user.clone(), now));
        }
        Ok(found)
    }
}

/// `GET|POST|… /api/auth/forward/{app}`: the app is the router's, so absolute-path routers
/// (e.g. `/openid`) are checked for the right app too.
pub async fn check_app(
    State(fa): State<ForwardAuth>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Response {
    decide(&fa, Some(&app), &headers)
}

/// `/api/auth/forward`: the app is taken from an `/embed/<app>/…` `X-Forwarded-Uri`, if any.
pub async fn check(State(fa): State<ForwardAuth>, headers: HeaderMap) -> Response {
    let uri = forwarded_uri(&headers);
    let app = uri
        .strip_prefix("/embed/")
        .map(|rest| rest.split(['/', '?']).next().unwrap_or(""))
        .filter(|a| !a.is_empty());
    decide(&fa, app, &headers)
}

fn decide(fa: &ForwardAuth, app: Option<&str>, headers: &HeaderMap) -> Response {
    let user = match session_token(headers) {
        Some(token) => fa
            .cache
            .user(&token, Instant::now(), |t| fa.service.db.session_user(t)),
        None => Ok(None),
    };
    match user {
        Ok(Some(user)) => match may_open(&fa.service, &user, app) {
            Ok(true) => allow(&user),
            Ok(false) => plain(StatusCode::FORBIDDEN, "You may not open this app.\n"),
            Err(e) => refuse_on_error(e),
        },
        Ok(None) => sign_in(headers),
        Err(e) => refuse_on_error(e),
    }
}

/// The per-app decision, in one place: admins open every app, members the apps an admin gave
/// them (`Db::user_may_open`, which reads the role again, so the cached user cannot widen
/// access). A check that names no app (a bare `/api/auth/forward` for a URI outside
/// `/embed/<app>/`) is for admins only.
fn may_open(service: &Service, user: &User, app: Option<&str>) -> Result<bool, DbError> {
    match app {
        Some(app) => service.db.user_may_open(user, app),
        None => Ok(user.role == Role::Admin),
    }
}

/// The role named in `Remote-Groups`.
fn role_of(user: &User) -> &'static str {
    user.role.as_str()
}

fn allow(user: &User) -> Response {
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    // Usernames are `[A-Za-z0-9_]`, always a valid header value; refuse rather than guess.
    let Ok(name) = HeaderValue::from_str(&user.username) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "Invalid username.\n");
    };
    let role = HeaderValue::from_static(role_of(user));
    for (name_str, value) in IDENTITY_HEADERS.iter().zip([&name, &name, &role, &name]) {
        // `from_bytes` lowercases the display-case constants.
        if let Ok(n) = HeaderName::from_bytes(name_str.as_bytes()) {
            h.insert(n, value.clone());
        }
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn refuse_on_error(e: DbError) -> Response {
    tracing::error!(error = %e, "forward auth: session lookup failed; refusing");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Bloud could not check your session.\n",
    )
}

/// No valid session: the login page for a browser navigation, 401 for anything else.
fn sign_in(headers: &HeaderMap) -> Response {
    if !is_navigation(headers) {
        let mut resp = plain(StatusCode::UNAUTHORIZED, "Sign in to Bloud first.\n");
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Cookie realm=\"bloud\""),
        );
        return resp;
    }
    let location = match safe_return_path(forwarded_uri(headers)) {
        Some(path) => format!("/login?next={}", encode_query_value(path)),
        None => "/login".to_string(),
    };
    let mut resp = plain(StatusCode::FOUND, "");
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn forwarded_uri(headers: &HeaderMap) -> &str {
    headers
        .get("x-forwarded-uri")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A top-level or frame navigation by a browser (as opposed to `fetch`, an XHR, an image).
fn is_navigation(headers: &HeaderMap) -> bool {
    if let Some(mode) = headers.get("sec-fetch-mode").and_then(|v| v.to_str().ok()) {
        return mode.eq_ignore_ascii_case("navigate");
    }
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

/// The return path when it stays on this origin: starts with `/`, not `//` or `/\` (which
/// browsers read as another host).
pub fn safe_return_path(uri: &str) -> Option<&str> {
    (uri.starts_with('/') && !uri.starts_with("//") && !uri.starts_with("/\\")).then_some(uri)
}

/// Percent-encodes everything but unreserved characters and `/`, for a query value.
fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Request headers, expected status, expected `Location`.
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, Option<&'a str>);

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn unauthenticated_answers_table() {
        let cases: &[Case] = &[
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("x-forwarded-uri", "/embed/radarr/movies?x=1&y=2"),
                ],
                302,
                Some("/login?next=/embed/radarr/movies%3Fx%3D1%26y%3D2"),
            ),
            (
                &[
                    ("accept", "text/html,application/xhtml+xml"),
                    ("x-forwarded-uri", "/embed/a/"),
                ],
                302,
                Some("/login?next=/embed/a/"),
            ),
            // Another origin as the return path: login without one.
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("x-forwarded-uri", "//evil.example/"),
                ],
                302,
                Some("/login"),
            ),
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("x-forwarded-uri", "/\\evil.example/"),
                ],
                302,
                Some("/login"),
            ),
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("x-forwarded-uri", "http://evil.example/"),
                ],
                302,
                Some("/login"),
            ),
            (&[("sec-fetch-mode", "navigate")], 302, Some("/login")),
            // fetch() from a page accepts HTML too but is not a navigation.
            (
                &[("sec-fetch-mode", "cors"), ("accept", "text/html")],
                401,
                None,
            ),
            (&[("accept", "application/json")], 401, None),
            (&[], 401, None),
        ];
        for (h, status, location) in cases {
            let resp = sign_in(&headers(h));
            assert_eq!(resp.status().as_u16(), *status, "{h:?}");
            assert_eq!(
                resp.headers().get("location").map(|v| v.to_str().unwrap()),
                *location,
                "{h:?}"
            );
        }
    }

    #[test]
    fn identity_headers_name_the_user() {
        let resp = allow(&User {
            id: "1".into(),
            username: "alice".into(),
            role: Role::Member,
        });
        assert_eq!(resp.status(), StatusCode::OK);
        for name in ["remote-user", "remote-name", "x-bloud-user"] {
            assert_eq!(resp.headers()[name], "alice", "{name}");
        }
        assert_eq!(resp.headers()["remote-groups"], "member");
    }

    fn alice() -> User {
        User {
            id: "1".into(),
            username: "alice".into(),
            role: Role::Admin,
        }
    }

    #[test]
    fn cache_serves_valid_sessions_for_the_ttl_only() {
        let cache = SessionCache::new(Duration::from_secs(5), 8);
        let t0 = Instant::now();
        let lookups = std::cell::Cell::new(0);
        let db = |valid: bool| {
            let lookups = &lookups;
            move |_: &str| {
                lookups.set(lookups.get() + 1);
                Ok::<_, ()>(valid.then(alice))
            }
        };
        assert_eq!(cache.user("tok", t0, db(true)).unwrap(), Some(alice()));
        // Within the TTL: memory, even though the session was since deleted.
        assert_eq!(
            cache
                .user("tok", t0 + Duration::from_secs(4), db(false))
                .unwrap(),
            Some(alice())
        );
        assert_eq!(lookups.get(), 1);
        // After it: the database's answer (logged out).
        assert_eq!(
            cache
                .user("tok", t0 + Duration::from_secs(5), db(false))
                .unwrap(),
            None
        );
        assert_eq!(lookups.get(), 2);
        // Misses are not remembered.
        assert_eq!(
            cache
                .user("tok", t0 + Duration::from_secs(5), db(false))
                .unwrap(),
            None
        );
        assert_eq!(lookups.get(), 3);
        // Another token is another entry.
        assert_eq!(cache.user("other", t0, db(false)).unwrap(), None);
    }

    #[test]
    fn cache_stays_bounded_and_never_fails_open() {
        let cache = SessionCache::new(Duration::from_secs(5), 4);
        let t0 = Instant::now();
        for i in 0..100 {
            cache
                .user(&format!("t{i}"), t0, |_| Ok::<_, ()>(Some(alice())))
                .unwrap();
            assert!(cache.entries.lock().unwrap().len() <= 4);
        }
        let err = cache.user("new", t0, |_| Err("database is locked"));
        assert_eq!(err, Err("database is locked"));
    }
}
