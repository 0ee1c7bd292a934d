//! The HTTP API (upstream host-agent routes and JSON shapes; documented in docs/agent.md) and
//! the web shell. One file per route group.

// Handlers bail out with a ready `Response`; boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub(crate) mod admin_only;
mod apps;
mod auth;
pub mod forward_auth;
mod history;
mod layout;
mod logs;
mod rebuilds;
mod sse;
pub mod stepup;
mod system;
mod tls;
mod users;
mod web;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::oidc;
use crate::queue::Queue;
use crate::service::Service;

/// What every handler gets.
#[derive(Clone)]
pub struct Api {
    pub service: Arc<Service>,
    pub queue: Queue,
}

/// A JSON request body as `T`, or a 400 naming the expected `shape`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    body: &axum::body::Bytes,
    shape: &str,
) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("Invalid request body ({e}); expected {shape}"),
        )
    })
}

/// `{"error": message}` with a status, upstream's error shape.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

pub fn router(api: Api) -> Router {
    // Managing apps and users: administrators and the CLI only (403 for members).
    let admin = Router::new()
        .route("/api/apps/refresh-catalog", post(apps::refresh_catalog))
        .route("/api/apps/{name}/plan-install", get(apps::plan_install))
        .route("/api/apps/{name}/plan-remove", get(apps::plan_remove))
        .route("/api/apps/{name}/logs", get(logs::app_logs))
        .route("/api/apps/{name}/install", post(apps::install))
        .route("/api/apps/{name}/uninstall", post(apps::uninstall))
        .route("/api/apps/{name}/clear-data", post(apps::clear_data))
        .route("/api/apps/{name}/restart", post(apps::restart))
        .route(
            "/api/apps/{name}/rename",
            axum::routing::patch(apps::rename),
        )
        .route("/api/rebuilds", get(rebuilds::list))
        .route("/api/rebuilds/latest", get(rebuilds::latest))
        .route("/api/rebuilds/stream", get(rebuilds::stream))
        .route("/api/rebuilds/{id}", get(rebuilds::get))
        .route("/api/rebuilds/{id}/log", get(rebuilds::log))
        // Upstream's path; here it follows the queue's rebuilds instead of starting one.
        .route("/api/system/rebuild/stream", get(rebuilds::stream))
        .route("/api/system/versions", get(history::versions))
        .route("/api/system/rollback", post(history::rollback))
        .route("/api/system/apps", get(system::apps))
        .route("/api/users", get(users::list).post(users::add))
        .route("/api/users/{id}", axum::routing::delete(users::remove))
        .route(
            "/api/users/{id}/password",
            axum::routing::put(users::set_password),
        )
        .route("/api/users/{id}/role", axum::routing::put(users::set_role))
        .route("/api/users/{id}/apps", axum::routing::put(users::set_apps))
        .route(
            oidc::CLIENTS_PATH,
            get(oidc::clients::list).post(oidc::clients::create),
        )
        .route(
            &format!("{}/{{id}}", oidc::CLIENTS_PATH),
            axum::routing::delete(oidc::clients::delete),
        )
        .route(oidc::ROTATE_PATH, post(oidc::clients::rotate))
        .route("/api/tls/redirect", axum::routing::put(tls::set_redirect))
        .route_layer(middleware::from_fn(admin_only::require_admin));

    // Every signed-in user: the catalog (read only), the installed apps they may open, their
    // layout, system status, step-up.
    let protected = Router::new()
        .route("/api/apps", get(apps::catalog))
        .route("/api/apps/", get(apps::catalog))
        .route("/api/apps/installed", get(apps::installed))
        .route("/api/apps/events", get(apps::events))
        .route("/api/apps/{name}/metadata", get(apps::metadata))
        .route("/api/apps/{name}/icon", get(apps::icon))
        .route("/api/user/layout", get(layout::get).put(layout::put))
        .route("/api/system/status", get(system::status))
        .route("/api/system/status/stream", get(system::status_stream))
        .route("/api/system/storage", get(system::storage))
        .route("/api/auth/step-up", post(stepup::step_up))
        .merge(admin)
        .route_layer(middleware::from_fn_with_state(
            api.service.clone(),
            crate::auth::require_session,
        ));

    let public = Router::new()
        .route("/api/health", get(system::health))
        .route("/api/tls/ca.crt", get(tls::ca_pem))
        .route("/api/tls/ca.der", get(tls::ca_der))
        .route("/api/tls/status", get(tls::status))
        .route("/api/setup/status", get(auth::setup_status))
        .route("/api/setup/create-user", post(auth::create_user))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/me", get(auth::me))
        .route("/auth/logout", post(auth::logout_redirect))
        .route("/api", get(system::api_not_found))
        .route("/api/{*rest}", axum::routing::any(system::api_not_found))
        .route("/embed", axum::routing::any(web::embed_not_installed))
        .route(
            "/embed/{*rest}",
            axum::routing::any(web::embed_not_installed),
        );

    // The proxy's forwardAuth check for app routes (its own state: the session cache).
    let forward = forward_auth::ForwardAuth::new(api.service.clone());
    let forward_auth = Router::new()
        .route(forward_auth::PATH, axum::routing::any(forward_auth::check))
        .route(
            &format!("{}/{{app}}", forward_auth::PATH),
            axum::routing::any(forward_auth::check_app),
        )
        .with_state(forward);

    // The OpenID Connect provider's public endpoints (their own state: the provider). Each
    // authenticates its own way: the session cookie, client secrets, bearer tokens.
    let provider = Router::new()
        .route(oidc::DISCOVERY_PATH, get(oidc::discovery::configuration))
        .route(oidc::JWKS_PATH, get(oidc::discovery::jwks))
        .route(oidc::AUTHORIZE_PATH, get(oidc::authorize::authorize))
        .route(oidc::TOKEN_PATH, post(oidc::token::token))
        .route(
            oidc::USERINFO_PATH,
            get(oidc::userinfo::userinfo).post(oidc::userinfo::userinfo),
        )
        .route(oidc::END_SESSION_PATH, get(oidc::end_session::end_session))
        .with_state(api.service.oidc.clone());

    protected
        .merge(public)
        .merge(forward_auth)
        .merge(provider)
        .fallback(web::shell)
        .with_state(api)
}
