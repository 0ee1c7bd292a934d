//! `GET|POST /api/oidc/userinfo` with `Authorization: Bearer <access token>`: the user's claims.
//! A token is refused once it expires or once the shell session it was issued under ends
//! (logout, password reset, the user deleted).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::claims::user_claims;
use super::*;
use crate::db::token_digest;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn refused(error: &'static str) -> Response {
    let mut resp = no_store(StatusCode::UNAUTHORIZED.into_response());
    let challenge = format!("Bearer realm=\"bloud\", error=\"{error}\"");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

pub async fn userinfo(State(p): State<Arc<Provider>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return refused("invalid_request");
    };
    match p
        .db()
        .access_token_user(&token_digest(token), p.clock.now())
    {
        Ok(Some((user, scope))) => no_store(Json(user_claims(&user, &scope)).into_response()),
        Ok(None) => refused("invalid_token"),
        Err(e) => server_error(e),
    }
}
