//! The box's OpenID Connect provider (docs/sso.md): apps sign users in with their Bloud
//! account. Issuer = `publicUrl`; the shell's `bloud_session` is the login, with no consent
//! screen. Authorization code flow with PKCE (S256 only), opaque access and refresh tokens
//! stored as digests, RS256 ID tokens signed with keys generated at first start.
//!
//! One file per endpoint; `keys` holds the signing keys, `clients` registration.

// Handlers bail out with a ready `Response`; boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod app_clients;
pub mod authorize;
pub mod claims;
pub mod clients;
pub mod discovery;
pub mod end_session;
pub mod keys;
pub mod pkce;
pub mod token;
pub mod userinfo;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::db::Db;

/// Endpoint paths (under the issuer). The proxy sends `/api/*` and `/` to the agent.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const AUTHORIZE_PATH: &str = "/api/oidc/authorize";
pub const TOKEN_PATH: &str = "/api/oidc/token";
pub const USERINFO_PATH: &str = "/api/oidc/userinfo";
pub const JWKS_PATH: &str = "/api/oidc/jwks";
pub const END_SESSION_PATH: &str = "/api/oidc/end_session";
pub const CLIENTS_PATH: &str = "/api/oidc/clients";
pub const ROTATE_PATH: &str = "/api/oidc/keys/rotate";

/// Paths of the provider that a relying party's pages send the browser to; an embedded
/// app's rewriting must leave them alone.
pub const PROVIDER_BROWSER_PATHS: [&str; 3] = [AUTHORIZE_PATH, END_SESSION_PATH, DISCOVERY_PATH];

/// An authorization code is good for this long (and once).
pub const CODE_TTL: Duration = Duration::from_secs(60);
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);
pub const ID_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Refresh tokens are bound to the shell session too, which ends sooner (7 days).
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The provider's time. Code and token lifetimes are checked against it; `advance` moves it
/// forward so expiry can be shown without waiting (the service tests do).
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp() + self.offset.load(Ordering::Relaxed)
    }

    pub fn advance(&self, by: Duration) {
        self.offset
            .fetch_add(by.as_secs() as i64, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("OpenID Connect signing key: {0}")]
    Key(String),
}

/// The provider's state, shared by its endpoints.
pub struct Provider {
    /// `publicUrl` without a trailing slash.
    pub issuer: String,
    pub clock: Clock,
    pub keys: keys::Keys,
    db: Arc<Db>,
}

impl Provider {
    /// Loads the signing keys, generating the first one when there is none.
    pub fn open(public_url: &str, db: Arc<Db>) -> Result<Provider, OidcError> {
        let clock = Clock::default();
        let keys = keys::Keys::load_or_create(&db, clock.now())?;
        Ok(Provider {
            issuer: public_url.trim_end_matches('/').to_string(),
            clock,
            keys,
            db,
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// An OAuth error body (RFC 6749 section 5.2) with `Cache-Control: no-store`.
pub(crate) fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    no_store(
        (
            status,
            Json(serde_json::json!({ "error": code, "error_description": description })),
        )
            .into_response(),
    )
}

pub(crate) fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

pub(crate) fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "OpenID Connect provider");
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "The provider could not complete the request",
    )
}

/// `base?k=v&…` (or `&` when `base` has a query already), values form-encoded.
pub(crate) fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", ser.finish())
}
