//! Cross-site request forgery guard for every state-changing request (POST, PUT, PATCH,
//! DELETE), login and setup included.
//!
//! - `Content-Type: application/json` or 415. A page on another site can only send a "simple"
//!   request without asking first (form encodings and `text/plain`); JSON needs a CORS
//!   preflight, which the agent never grants.
//! - When the request says where it comes from (`Origin`, `Sec-Fetch-Site`), it must be the same
//!   origin or 403: `Origin`'s host:port equals the `Host` header or the `publicUrl`'s, and
//!   `Sec-Fetch-Site` is `same-origin` or `none` (typed in by the user). Clients that send
//!   neither (the CLI, scripts) are not browsers, so no other site can make them send anything.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// What the guard needs to know: the origin users open.
#[derive(Debug, Clone)]
pub struct Origins {
    /// `host:port` of `publicUrl` (port filled in from its scheme).
    public: Option<String>,
}

impl Origins {
    pub fn new(public_url: &str) -> Origins {
        Origins {
            public: origin_authority(public_url),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotJson,
    CrossOrigin,
}

impl Refusal {
    fn response(self) -> Response {
        let (status, message) = match self {
            Refusal::NotJson => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "State-changing requests need Content-Type: application/json",
            ),
            Refusal::CrossOrigin => (
                StatusCode::FORBIDDEN,
                "Cross-origin request refused: use Bloud from its own address",
            ),
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The decision for one request.
pub fn check(method: &Method, headers: &HeaderMap, origins: &Origins) -> Result<(), Refusal> {
    if !changes_state(method) {
        return Ok(());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Refusal::NotJson);
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("").trim();
        if !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none")) {
            return Err(Refusal::CrossOrigin);
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let scheme = origin.split("://").next().unwrap_or("");
        let Some(from) = origin_authority(origin) else {
            // `null` (sandboxed frames, file: pages) and garbage.
            return Err(Refusal::CrossOrigin);
        };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| authority(h, default_port(scheme)?));
        let same = host.as_deref() == Some(from.as_str())
            || origins.public.as_deref() == Some(from.as_str());
        if !same {
            return Err(Refusal::CrossOrigin);
        }
    }
    Ok(())
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `host:port` (lowercase, port always present) of an origin or URL like `http://h[:p][/…]`.
fn origin_authority(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let port = default_port(scheme)?;
    let auth = rest.split(['/', '?', '#']).next()?;
    if auth.contains('@') {
        return None;
    }
    authority(auth, port)
}

/// Normalises `host[:port]` (a `Host` header or an origin's authority).
fn authority(auth: &str, default_port: u16) -> Option<String> {
    let auth = auth.trim();
    let (host, port) = if let Some(rest) = auth.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse::<u16>().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (format!("[{h}]"), port)
    } else {
        match auth.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse::<u16>().ok()?),
            None => (auth.to_string(), default_port),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    Some(format!("{}:{port}", host.to_ascii_lowercase()))
}

/// The middleware: refuses before any handler (or the session check) runs.
pub async fn guard(State(origins): State<Arc<Origins>>, req: Request, next: Next) -> Response {
    // The proxy's forward-auth check changes nothing and is asked with the app request's own
    // method and headers when `preserveRequestMethod` is set (a form POST to an app).
    if req.uri().path().starts_with(crate::api::forward_auth::PATH) {
        return next.run(req).await;
    }
    // Relying parties post forms to the token endpoint (and may post to userinfo) from their
    // servers. Neither reads a cookie: a client secret or a bearer token is the credential, so
    // another site cannot make a browser use the user's session there.
    if matches!(
        req.uri().path(),
        crate::oidc::TOKEN_PATH | crate::oidc::USERINFO_PATH
    ) {
        return next.run(req).await;
    }
    match check(req.method(), req.headers(), &origins) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            tracing::info!(
                method = %req.method(),
                path = %req.uri().path(),
                ?refusal,
                "state-changing request refused"
            );
            crate::auth::drain_body(req).await;
            refusal.response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const JSON: (&str, &str) = ("content-type", "application/json");

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn state_changing_requests_need_json_and_the_same_origin() {
        use Refusal::*;
        let origins = Origins::new("http://bloud.local");
        let host = ("host", "192.168.1.5:8080");
        type Case<'a> = (Method, &'a [(&'a str, &'a str)], Result<(), Refusal>);
        let table: &[Case] = &[
            // Reading never needs either.
            (Method::GET, &[], Ok(())),
            (Method::GET, &[("origin", "http://evil.example")], Ok(())),
            // The CLI and scripts: JSON, no browser headers.
            (Method::POST, &[JSON], Ok(())),
            (
                Method::POST,
                &[("content-type", "application/json; charset=utf-8")],
                Ok(()),
            ),
            (
                Method::DELETE,
                &[("content-type", "Application/JSON")],
                Ok(()),
            ),
            // Simple requests a foreign page can send without a preflight.
            (Method::POST, &[], Err(NotJson)),
            (
                Method::POST,
                &[("content-type", "text/plain")],
                Err(NotJson),
            ),
            (
                Method::PUT,
                &[("content-type", "application/x-www-form-urlencoded")],
                Err(NotJson),
            ),
            (
                Method::PATCH,
                &[("content-type", "multipart/form-data; boundary=x")],
                Err(NotJson),
            ),
            (
                Method::POST,
                &[("content-type", "application/jsonp")],
                Err(NotJson),
            ),
            // The shell, through the proxy: Origin equals Host.
            (
                Method::POST,
                &[JSON, host, ("origin", "http://192.168.1.5:8080")],
                Ok(()),
            ),
            (
                Method::POST,
                &[
                    JSON,
                    ("host", "bloud.local"),
                    ("origin", "http://bloud.local"),
                ],
                Ok(()),
            ),
            (
                Method::POST,
                &[
                    JSON,
                    ("host", "bloud.local:80"),
                    ("origin", "http://BLOUD.local"),
                ],
                Ok(()),
            ),
            (
                Method::POST,
                &[
                    JSON,
                    ("host", "[::1]:3000"),
                    ("origin", "http://[::1]:3000"),
                ],
                Ok(()),
            ),
            // …or the configured publicUrl, whatever Host says.
            (
                Method::POST,
                &[JSON, host, ("origin", "http://bloud.local")],
                Ok(()),
            ),
            (
                Method::POST,
                &[JSON, host, ("origin", "http://bloud.local:80")],
                Ok(()),
            ),
            // Another site, another port, another scheme, opaque origins.
            (
                Method::POST,
                &[JSON, host, ("origin", "http://evil.example")],
                Err(CrossOrigin),
            ),
            (
                Method::POST,
                &[JSON, host, ("origin", "http://192.168.1.5:9000")],
                Err(CrossOrigin),
            ),
            (
                Method::POST,
                &[
                    JSON,
                    ("host", "bloud.local:80"),
                    ("origin", "https://bloud.local"),
                ],
                Err(CrossOrigin),
            ),
            // TLS ended at the proxy: a Host without a port takes the origin scheme's.
            (
                Method::POST,
                &[
                    JSON,
                    ("host", "bloud.local"),
                    ("origin", "https://bloud.local"),
                ],
                Ok(()),
            ),
            (
                Method::POST,
                &[JSON, host, ("origin", "null")],
                Err(CrossOrigin),
            ),
            (
                Method::POST,
                &[JSON, host, ("origin", "http://user@192.168.1.5:8080")],
                Err(CrossOrigin),
            ),
            (
                Method::POST,
                &[JSON, ("origin", "http://192.168.1.5:8080")],
                Err(CrossOrigin),
            ),
            // Fetch metadata.
            (
                Method::POST,
                &[JSON, ("sec-fetch-site", "same-origin")],
                Ok(()),
            ),
            (Method::POST, &[JSON, ("sec-fetch-site", "none")], Ok(())),
            (
                Method::POST,
                &[JSON, ("sec-fetch-site", "same-site")],
                Err(CrossOrigin),
            ),
            (
                Method::POST,
                &[JSON, ("sec-fetch-site", "cross-site")],
                Err(CrossOrigin),
            ),
            (
                Method::POST,
                &[
                    JSON,
                    host,
                    ("origin", "http://192.168.1.5:8080"),
                    ("sec-fetch-site", "cross-site"),
                ],
                Err(CrossOrigin),
            ),
            // Content type is checked first: a cross-site form post is a 415.
            (
                Method::POST,
                &[
                    ("content-type", "text/plain"),
                    ("origin", "http://evil.example"),
                ],
                Err(NotJson),
            ),
        ];
        for (method, pairs, want) in table {
            assert_eq!(
                check(method, &headers(pairs), &origins),
                *want,
                "{method} {pairs:?}"
            );
        }
    }

    #[test]
    fn authorities_are_normalised() {
        assert_eq!(
            origin_authority("https://Bloud.Local/x").as_deref(),
            Some("bloud.local:443")
        );
        assert_eq!(origin_authority("http://h:81").as_deref(), Some("h:81"));
        assert_eq!(origin_authority("ftp://h"), None);
        assert_eq!(origin_authority("http://"), None);
        assert_eq!(authority("h:notaport", 80), None);
    }
}
