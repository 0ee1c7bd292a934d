//! `GET /.well-known/openid-configuration` and `GET /api/oidc/jwks`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::*;

pub async fn configuration(State(p): State<Arc<Provider>>) -> Response {
    Json(serde_json::json!({
        "issuer": p.issuer,
        "authorization_endpoint": p.url(AUTHORIZE_PATH),
        "token_endpoint": p.url(TOKEN_PATH),
        "userinfo_endpoint": p.url(USERINFO_PATH),
        "jwks_uri": p.url(JWKS_PATH),
        "end_session_endpoint": p.url(END_SESSION_PATH),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "groups", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "preferred_username", "name", "groups"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    }))
    .into_response()
}

pub async fn jwks(State(p): State<Arc<Provider>>) -> Response {
    Json(p.keys.jwks(p.clock.now())).into_response()
}
