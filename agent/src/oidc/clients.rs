//! Registering relying parties: [`register`] and [`remove`] are what an app's install and
//! uninstall call; `POST|GET /api/oidc/clients` and `DELETE /api/oidc/clients/{id}` expose them
//! to administrators and the CLI. The secret is generated (or given, 32+ characters), returned
//! once, and stored only as its SHA-256.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::api::admin_only::Caller;
use crate::api::{stepup, Api};
use crate::db::{random_hex, token_digest, Db, DbError, OidcClient};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Default: a random id.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub name: String,
    /// The catalog app the client belongs to: only users who may open it may sign in.
    #[serde(default)]
    pub app: Option<String>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Default: 32 random bytes, hex.
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// A registered client with its secret, shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    #[serde(flatten)]
    pub client: OidcClient,
    pub client_secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// An exact-match redirect URI: absolute http(s), no fragment (RFC 6749 3.1.2).
fn check_uri(uri: &str) -> Result<(), ClientError> {
    let scheme_ok = uri.starts_with("https://") || uri.starts_with("http://");
    let host_ok = uri
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?']).next())
        .is_some_and(|h| !h.is_empty() && !h.contains('@'));
    if !scheme_ok || !host_ok || uri.contains('#') || uri.chars().any(char::is_whitespace) {
        return Err(ClientError::Invalid(format!(
            "`{uri}` is not an absolute http(s) URL without a fragment"
        )));
    }
    Ok(())
}

/// Checks a registration without storing anything.
pub fn check(new: &NewClient) -> Result<(), ClientError> {
    if let Some(id) = &new.client_id {
        let id_ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !id_ok {
            return Err(ClientError::Invalid(
                "client_id: 1 to 64 letters, digits, `-`, `_` or `.`".into(),
            ));
        }
    }
    if new.redirect_uris.is_empty() {
        return Err(ClientError::Invalid(
            "redirect_uris: at least one is needed".into(),
        ));
    }
    for uri in new
        .redirect_uris
        .iter()
        .chain(&new.post_logout_redirect_uris)
    {
        check_uri(uri)?;
    }
    if new
        .client_secret
        .as_ref()
        .is_some_and(|s| s.len() < 32 || !s.is_ascii())
    {
        return Err(ClientError::Invalid(
            "client_secret: at least 32 ASCII characters".into(),
        ));
    }
    Ok(())
}

pub fn register(db: &Db, new: NewClient) -> Result<Registered, ClientError> {
    check(&new)?;
    let client_id = new.client_id.unwrap_or_else(|| random_hex(16));
    let secret = new.client_secret.unwrap_or_else(|| random_hex(32));
    let client = OidcClient {
        name: if new.name.is_empty() {
            client_id.clone()
        } else {
            new.name
        },
        client_id,
        app: new.app,
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        secret_digest: token_digest(&secret),
        created_at: String::new(),
    };
    db.put_oidc_client(&client)?;
    tracing::info!(client = %client.client_id, "OIDC client registered");
    let stored = db.oidc_client(&client.client_id)?.unwrap_or(client);
    Ok(Registered {
        client: stored,
        client_secret: secret,
    })
}

/// Whether `user` may sign in to `client`: any user for a client without an app, otherwise
/// the users who may open the app (admins, and members given access).
pub fn may_sign_in(db: &Db, client: &OidcClient, user: &crate::db::User) -> Result<bool, DbError> {
    match &client.app {
        Some(app) => db.user_may_open(user, app),
        None => Ok(true),
    }
}

/// Removes a client, its codes and its tokens. False when it did not exist.
pub fn remove(db: &Db, client_id: &str) -> Result<bool, DbError> {
    let removed = db.delete_oidc_client(client_id)?;
    if removed {
        tracing::info!(client = %client_id, "OIDC client removed");
    }
    Ok(removed)
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "OIDC clients");
    crate::api::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Failed to update OIDC clients",
    )
}

pub async fn create(
    State(api): State<Api>,
    headers: HeaderMap,
    caller: Caller,
    body: axum::body::Bytes,
) -> Response {
    let new = match serde_json::from_slice::<NewClient>(&body) {
        Ok(n) => n,
        Err(e) => {
            return crate::api::error(StatusCode::BAD_REQUEST, format!("Invalid client: {e}"))
        }
    };
    // Input first, so a 400 does not use up the step-up token.
    if let Err(ClientError::Invalid(m)) = check(&new) {
        return crate::api::error(StatusCode::BAD_REQUEST, m);
    }
    // A client learns the identity of whoever signs in at its redirect URI: confirm the
    // password first, so a script holding only the admin's cookie cannot add one.
    if let Err(r) = stepup::require(&api, &headers, &caller, "oidc.clients.add") {
        return r;
    }
    match register(&api.service.db, new) {
        Ok(r) => (StatusCode::CREATED, Json(r)).into_response(),
        Err(ClientError::Invalid(m)) => crate::api::error(StatusCode::BAD_REQUEST, m),
        Err(ClientError::Db(e)) => failed(e),
    }
}

pub async fn list(State(api): State<Api>) -> Response {
    match api.service.db.oidc_clients() {
        Ok(c) => Json(c).into_response(),
        Err(e) => failed(e),
    }
}

pub async fn delete(
    State(api): State<Api>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let action = format!("oidc.clients.remove:{id}");
    if let Err(r) = stepup::require(&api, &headers, &caller, &action) {
        return r;
    }
    match remove(&api.service.db, &id) {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => crate::api::error(StatusCode::NOT_FOUND, "No such OIDC client"),
        Err(e) => failed(e),
    }
}

/// `POST /api/oidc/keys/rotate`: a new signing key; the old one stays published until the ID
/// tokens it signed expire.
pub async fn rotate(State(api): State<Api>, headers: HeaderMap, caller: Caller) -> Response {
    if let Err(r) = stepup::require(&api, &headers, &caller, "oidc.keys.rotate") {
        return r;
    }
    let service = api.service.clone();
    let result = tokio::task::spawn_blocking(move || {
        let oidc = &service.oidc;
        oidc.keys.rotate(&service.db, oidc.clock.now())
    })
    .await;
    match result {
        Ok(Ok(kid)) => Json(serde_json::json!({ "kid": kid })).into_response(),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}
