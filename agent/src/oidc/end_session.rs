//! `GET /api/oidc/end_session` (RP-initiated logout): ends the shell session and goes back to
//! the client's registered `post_logout_redirect_uri`, or to the shell.
//!
//! It needs an `id_token_hint` this provider signed for the signed-in user: a plain link from
//! another site cannot sign the user out (there is no confirmation page to ask instead).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::authorize::parse_params;
use super::*;

#[derive(Deserialize)]
struct Hint {
    sub: String,
    aud: String,
}

fn refused(message: &str) -> Response {
    no_store(
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("Sign-out request refused: {message}\n"),
        )
            .into_response(),
    )
}

/// The subject and client of an ID token we signed (expired ones too: a hint is often old).
fn read_hint(p: &Provider, token: &str) -> Option<Hint> {
    let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
    let key = p.keys.verifying_key(&kid)?;
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.validate_aud = false;
    v.set_issuer(&[&p.issuer]);
    v.set_required_spec_claims(&["sub", "aud", "iss"]);
    jsonwebtoken::decode::<Hint>(token, &key, &v)
        .ok()
        .map(|d| d.claims)
}

pub async fn end_session(
    State(p): State<Arc<Provider>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = match parse_params(raw.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(m) => return refused(&m),
    };
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(hint) = get("id_token_hint") else {
        return refused("id_token_hint is required");
    };
    let Some(hint) = read_hint(&p, hint) else {
        return refused("id_token_hint is not an ID token from this Bloud");
    };
    if get("client_id").is_some_and(|c| c != hint.aud) {
        return refused("client_id does not match the id_token_hint");
    }
    let location = match get("post_logout_redirect_uri") {
        None => "/".to_string(),
        Some(uri) => {
            let client = match p.db().oidc_client(&hint.aud) {
                Ok(Some(c)) => c,
                Ok(None) => return refused("the client no longer exists"),
                Err(e) => return server_error(e),
            };
            if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
                return refused("post_logout_redirect_uri is not registered for this client");
            }
            match get("state") {
                Some(s) => with_query(uri, &[("state", s)]),
                None => uri.to_string(),
            }
        }
    };
    // End the session only if it is the hint's user's (someone else's stays signed in).
    let mut ended = false;
    if let Some(token) = crate::auth::session_token(&headers) {
        match p.db().session_user(&token) {
            Ok(Some(user)) if user.id == hint.sub => {
                if let Err(e) = p.db().delete_session(&token) {
                    return server_error(e);
                }
                ended = true;
                tracing::info!(user = %user.username, client = %hint.aud, "signed out by an app");
            }
            Ok(_) => {}
            Err(e) => return server_error(e),
        }
    }
    let mut resp = no_store(StatusCode::FOUND.into_response());
    if ended {
        resp.headers_mut()
            .insert(header::SET_COOKIE, crate::auth::clear_session_cookie());
    }
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
            resp
        }
        Err(_) => refused("the redirect address is invalid"),
    }
}
